"""The context budget: the best sentences of the passages within a character budget."""

from rag.answer.excerpts import select_excerpts


def test_best_sentences_are_kept_in_passage_order_within_budget():
    passages = ["p1", "p2", "p3"]
    scores = [
        [("甲一。", 0.9), ("甲二很长的无关句子。", 0.1), ("甲三。", 0.8)],
        [("乙一。", 0.2)],
        [("丙一。", 0.85)],
    ]
    excerpts = select_excerpts(passages, scores, budget=9, max_passages=3)
    assert [e.passage for e in excerpts] == ["p1", "p3"]
    assert excerpts[0].text == "甲一。…甲三。" and excerpts[1].text == "丙一。"


def test_the_best_sentence_is_kept_even_over_budget_and_max_passages_holds():
    scores = [[("很长的句子" * 20 + "。", 0.9)], [("短。", 0.8)]]
    excerpts = select_excerpts(["a", "b"], scores, budget=10, max_passages=1)
    assert [e.passage for e in excerpts] == ["a"] and len(excerpts[0].text) > 10
