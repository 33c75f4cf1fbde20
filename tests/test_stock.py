"""The stock LangChain recipe (rag.evaluation.stock) and the item-by-item comparison (rag.evaluation.answers)."""

from __future__ import annotations

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from rag.evaluation.answers import compare_answers, run_answer_eval, write_answer_report
from rag.evaluation.retrieval import EvalItem
from rag.answer.pipeline import Answer
from rag.evaluation.stock import StockRecipe


def _chat(*replies):
    return GenericFakeChatModel(messages=iter([AIMessage(content=r) for r in replies]))


def test_stock_recipe_answers_from_split_pages_and_cites_what_it_retrieved(settings, hash_embedder):
    recipe = StockRecipe(settings, hash_embedder, _chat("去年交易额超两亿元。", "I don't know."),
                         chunk_size=300, chunk_overlap=50, k=3)
    assert len(recipe.chunks) > 20 and all(len(doc.page_content) <= 300 for _, doc in recipe.chunks)
    answer = recipe.ask("清泉村去年电商交易额是多少？")
    assert answer.text == "去年交易额超两亿元。" and not answer.abstained
    assert len(answer.citations) == len(answer.passages) == 3
    assert any("清泉村" in p.text for p in answer.passages)  # the right page was retrieved
    assert {"ttft_s", "total_s", "retrieve_s"} <= set(answer.timings)
    declined = recipe.ask("巴黎今天的天气怎么样？")
    assert declined.abstained and declined.citations == []


def test_systems_take_turns_item_by_item():
    items = [EvalItem(f"q{i}", f"问题{i}", "zh", "fact", "", [["答"]], None, None, None) for i in range(3)]
    order = []

    def system(name):
        def ask(question):
            order.append((name, question))
            return Answer(question, "答", [], [], False, question, "zh", {"ttft_s": 1.0, "total_s": 2.0})
        return ask

    reports = compare_answers(items, {"a": system("a"), "b": system("b")}, progress=False)
    assert order == [("a", "问题0"), ("b", "问题0"), ("b", "问题1"), ("a", "问题1"), ("a", "问题2"), ("b", "问题2")]
    assert reports["a"]["metrics"]["overall"]["answer_accuracy"] == 1.0 and len(reports["b"]["rows"]) == 3


def test_an_answer_report_comes_with_its_chart(tmp_path):
    items = [EvalItem("q1", "问题1", "zh", "fact", "", [["答"]], None, None, None),
             EvalItem("q2", "问题2", "zh", "unanswerable", "", [], None, None, None)]
    answer = Answer("问题", "答", [], [], False, "问题", "zh", {"ttft_s": 1.0, "total_s": 2.0})
    report = run_answer_eval(items, lambda question: answer, progress=False)
    paths = write_answer_report(report, tmp_path, "set-answers")
    assert [p.suffix for p in paths] == [".json", ".md", ".png"]  # matplotlib is a core dependency
    assert paths[2].read_bytes().startswith(b"\x89PNG") and paths[2].stat().st_size > 5_000
