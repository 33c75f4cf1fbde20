"""ask()/stream() with a scripted chat model over the real index (hash embedder)."""

from __future__ import annotations

import dataclasses

import pytest
from langchain_core.messages import AIMessage

from rag.errors import BadQuestion
from rag.answer.pipeline import Answer, Answered, Delta, Pipeline, Retrieved

from fakes import PrefixKeepingChat, scripted


@pytest.fixture
def make(seed_settings, seed_searcher):
    def build(*replies, **overrides):
        chat = scripted(*replies)
        return Pipeline(dataclasses.replace(seed_settings, **overrides), seed_searcher, chat), chat

    return build


def test_answer_with_verified_citation(make):
    pipeline, chat = make("清泉村去年交易额超两亿元[1]。")
    answer = pipeline.ask("清泉村去年电商交易额是多少？")
    assert not answer.abstained and answer.language == "zh"
    assert answer.citations and answer.citations[0].article == "山货触网 农户生活更红火"
    assert "两亿元" in answer.citations[0].quote
    assert answer.rewritten_query == "清泉村去年电商交易额是多少？"
    assert {"retrieve_s", "ttft_s", "total_s"} <= answer.timings.keys()
    system, user = chat.seen[0]
    assert "[1] 《" in user.content and "清泉村去年电商交易额是多少？" in user.content
    assert "简体中文" in user.content and "cannot" not in system.content.lower()  # no way out offered


def test_stream_yields_the_passages_then_deltas_then_the_answer(make):
    pipeline, _ = make("清泉村去年交易额超两亿元[1]。")
    events = list(pipeline.stream("清泉村去年电商交易额是多少？"))
    assert [type(e) for e in events[:2]] == [Retrieved, Delta] and isinstance(events[-1], Answered)
    assert all(isinstance(e, Delta) for e in events[1:-1])
    assert "".join(e.text for e in events[1:-1]) == "清泉村去年交易额超两亿元[1]。"
    assert events[-1].answer.citations and not events[-1].answer.abstained


def test_passages_are_reported_before_the_first_token(make):
    pipeline, chat = make("清泉村去年交易额超两亿元[1]。")
    stream = pipeline.stream("清泉村去年电商交易额是多少？")
    retrieved = next(stream)
    assert isinstance(retrieved, Retrieved) and chat.seen == []  # the LLM has not been asked yet
    assert retrieved.passages and retrieved.passages[0].article == "山货触网 农户生活更红火"
    assert retrieved.rewritten_query == "清泉村去年电商交易额是多少？"
    assert isinstance(next(stream), Delta) and len(chat.seen) == 1
    stream.close()


def test_a_refusal_by_the_gate_still_reports_the_passages_and_its_text(make):
    pipeline, chat = make("不该被问到。")
    # No word of it is in the pages ("基地" alone would be: 杨梅基地, whichever passages come back).
    events = list(pipeline.stream("火星的氧气储量是多少？"))
    assert isinstance(events[0], Retrieved) and isinstance(events[-1], Answered)
    answer = events[-1].answer
    assert answer.abstained and chat.seen == [] and "".join(e.text for e in events[1:-1]) == answer.text


def test_model_refusal_becomes_the_refusal_in_the_askers_language(make):
    pipeline, _ = make("The documents don't say.")
    answer = pipeline.ask("How much did Qingquan village sell online last year?")
    assert answer.abstained and answer.reason == "model declined"
    assert answer.text.startswith("Sorry, the documents don't say.") and "Closest articles:" in answer.text
    assert answer.citations == [] and answer.passages


def test_unsupported_answer_becomes_a_refusal(make):
    pipeline, _ = make("平阳县今年的GDP是1000亿元[1]。")
    answer = pipeline.ask("平阳县今年的GDP是多少？")
    assert answer.abstained and answer.reason == "no support" and answer.text.startswith("抱歉")


def test_a_number_the_question_names_but_no_passage_states_is_refused_before_generation(make):
    pipeline, chat = make("不应被调用")
    answer = pipeline.ask("清泉村2023年的电商交易额是多少？")
    assert answer.abstained and answer.reason == "not in the documents: 2023年" and chat.seen == []
    assert "山货触网 农户生活更红火" in answer.text  # the nearest headlines


def test_a_question_for_a_number_answered_without_one_is_refused(make):
    # A supported sentence from the first passage read (the one that has an amount), with no figure.
    pipeline, _ = make("清泉村的村民都回到了村里[1]。")
    answer = pipeline.ask("清泉村去年电商交易额是多少？")
    assert answer.abstained and answer.reason == "no figure"


def test_an_answer_that_only_restates_the_question_is_asked_again(make):
    pipeline, chat = make("清泉村去年电商交易额是[1]。", "清泉村去年交易额超两亿元[1]。")
    answer = pipeline.ask("清泉村去年电商交易额是多少？")
    assert len(chat.seen) == 2 and "did not give the answer itself" in chat.seen[1][-1].content
    assert chat.seen[1][-2].content == "清泉村去年电商交易额是[1]。"  # it sees its own answer
    assert not answer.abstained and "两亿元" in answer.text, answer


def test_an_answer_in_the_wrong_language_is_translated_on_its_own(make):
    pipeline, chat = make("清泉村去年交易额超两亿元[1]。", "Qingquan's online sales exceeded 两亿元 last year [1].")
    answer = pipeline.ask("How much were Qingquan village's online sales last year?")
    assert len(chat.seen) == 2 and len(chat.seen[1]) == 1  # no passages, rules or earlier turns
    assert "Translate into English" in chat.seen[1][0].content and "清泉村去年交易额超两亿元[" in chat.seen[1][0].content
    assert not answer.abstained and answer.text.startswith("Qingquan") and answer.citations


def test_each_correction_is_asked_once(make):
    # restated → answered in Chinese → translated; a translation that fails its check keeps the
    # checked Chinese answer rather than a refusal.
    pipeline, chat = make("Qingquan's online sales last year were [1].", "清泉村去年交易额超两亿元[1]。",
                          "Paris is the capital of France [1].", "never asked")
    answer = pipeline.ask("How much were Qingquan village's online sales last year?")
    assert len(chat.seen) == 3
    assert "did not give the answer itself" in chat.seen[1][-1].content and "Translate" in chat.seen[2][0].content
    assert not answer.abstained and "两亿元" in answer.text


def test_weak_evidence_is_refused_without_asking_the_model(make):
    pipeline, chat = make("不应被调用")
    answer = pipeline.ask("巴黎今天的天气怎么样？")
    assert answer.abstained and answer.reason.startswith("weak evidence") and chat.seen == []
    assert "巴黎" in answer.reason


@pytest.mark.parametrize("question", ["清泉村のキウイはいくつ売れましたか", "كم عدد القرى في تسانغنان؟"])
def test_other_scripts_get_a_clear_message(make, question):
    pipeline, chat = make("x")
    answer = pipeline.ask(question)
    assert answer.abstained and answer.reason == "language" and "Chinese or English" in answer.text
    assert chat.seen == []


def test_follow_up_is_rewritten_with_history(make):
    pipeline, chat = make("平阳县水头镇和食堂投入了多少钱？", "水头镇投入近70万元建设和食堂[1]。")
    answer = pipeline.ask("那水头镇呢？", history=[("苍南县建立了多少个党建联盟？", "48个[1]。")])
    assert answer.rewritten_query == "平阳县水头镇和食堂投入了多少钱？"
    assert "Q: 苍南县建立了多少个党建联盟？" in chat.seen[0][0].content
    assert not answer.abstained and "70万元" in answer.text


def _opening(samples) -> str:
    first, second = (sample[-1].content for sample in samples)
    return first[: next(i for i, (a, b) in enumerate(zip(first, second)) if a != b)]


def test_the_pipeline_announces_its_prompts_so_their_openings_can_be_kept(seed_settings, seed_searcher):
    replies = ["清泉村有多少人做电商？", "清泉村有300多人做电商[1]。"]
    chat = PrefixKeepingChat(messages=iter([AIMessage(content=r) for r in replies]), seen=[], announced=[])
    pipeline = Pipeline(seed_settings, seed_searcher, chat).load()
    assert len(chat.announced) == 1  # the answer prompt, at load
    answer_opening = _opening(chat.announced[0])
    history = [("清泉村去年电商交易额是多少？", "超两亿元[1]。")]
    pipeline.ask("那村里有多少人做电商？", history=history)
    condense_opening = _opening(chat.announced[1])  # the condense prompt, at the follow-up
    assert condense_opening.startswith("Rewrite the last question")
    assert chat.seen[0][0].content.startswith(condense_opening)  # the condense prompt as sent
    assert chat.seen[1][-1].content.startswith(answer_opening)  # the answer prompt as sent
    assert chat.seen[1][0].content == chat.announced[0][0][0].content  # same system prompt


def test_a_follow_up_the_model_leaves_unchanged_takes_the_last_question_along(make):
    pipeline, _ = make("那里投入了多少资金？", "水头镇投入近70万元建设和食堂[1]。")
    answer = pipeline.ask("那里投入了多少资金？", history=[("水头镇的“和食堂”面向哪些老人开放？", "70周岁以上老人[1]。")])
    assert answer.rewritten_query == "水头镇的“和食堂”面向哪些老人开放？ 那里投入了多少资金？"
    assert answer.citations and answer.citations[0].label == "水头：用基层党建“撬动”民生幸福 › 强化党建“驱动力”，打开群众幸福门"


@pytest.mark.parametrize("question", ["", "   ", "问" * 20_000])
def test_bad_questions_raise(make, question):
    pipeline, _ = make("x")
    with pytest.raises(BadQuestion):
        pipeline.ask(question)


def test_per_question_settings_share_the_loaded_index_and_model(settings, hash_embedder, monkeypatch):
    from collections import Counter

    import rag.answer.pipeline as pipeline_module
    import rag.models.chat as chat_module
    import rag.models.embedder as embedder_module
    import rag.search.retrieve as retrieve_module

    loads = Counter()
    for module, name in ((retrieve_module, "_SEARCHERS"), (chat_module, "_CHATS"), (pipeline_module, "_PIPELINES")):
        monkeypatch.setattr(module, name, {})
    monkeypatch.setattr(embedder_module, "load_embedder", lambda s: loads.update(["embedder"]) or hash_embedder)
    real_load_index = retrieve_module.load_index
    monkeypatch.setattr(retrieve_module, "load_index", lambda *a: loads.update(["index"]) or real_load_index(*a))
    monkeypatch.setattr(chat_module, "make_chat_model", lambda s, model=None: loads.update(["chat"]) or scripted())

    first = pipeline_module.get_pipeline(settings).load()
    assert loads == {"embedder": 1, "index": 1, "chat": 1}
    # What the chat's settings menu changes per question: passages (and with them top_k).
    moved = pipeline_module.get_pipeline(dataclasses.replace(settings, llm_passages=5, top_k=8)).load()
    assert moved is not first and moved.settings.llm_passages == 5
    assert moved.searcher is first.searcher and moved.chat is first.chat
    assert loads == {"embedder": 1, "index": 1, "chat": 1}  # nothing reloaded
    other = pipeline_module.get_pipeline(dataclasses.replace(settings, llm_model="fast")).load()
    assert other.searcher is first.searcher and other.chat is not first.chat
    assert loads == {"embedder": 1, "index": 1, "chat": 2}  # a new model, the same index


def test_an_answer_with_figures_of_another_kind_than_asked_is_refused(make):
    # The seed says "汇聚了1000多户4211人": households were asked, a head count is no answer.
    pipeline, _ = make("2008年，这个刚建成的移民村汇聚了4211人[1]。")
    answer = pipeline.ask("清泉村2008年刚建成时聚集了多少户？")
    assert answer.abstained and answer.reason == "wrong quantity: asked households, given people"
    assert "山货触网 农户生活更红火" in answer.text  # with the nearest articles, as refusals are
    pipeline, _ = make("2008年，这个刚建成的移民村汇聚了1000多户[1]。")
    assert not pipeline.ask("清泉村2008年刚建成时聚集了多少户？").abstained


def test_an_unsupported_sentence_giving_the_asked_figure_refuses_the_answer(make):
    # The seed says "开展党史知识大宣讲15场": the model's total of 30 is its own, shown beside it
    # it would read as the page's.
    pipeline, _ = make("怀宁县开展党史知识大宣讲15场[1]。全县一共开展了30场党史知识大宣讲[1]。")
    answer = pipeline.ask("怀宁县开展了多少场党史知识大宣讲？")
    assert answer.abstained and answer.reason == "unverified figure: 30场", answer
    pipeline, _ = make("怀宁县开展党史知识大宣讲15场[1]。")
    assert not pipeline.ask("怀宁县开展了多少场党史知识大宣讲？").abstained

def test_a_quantity_no_passage_has_is_refused_before_generation(make):
    pipeline, chat = make("不应被调用")
    answer = pipeline.ask("安吉县的“流动药车”上备有多少亩常用药？")
    assert answer.abstained and answer.reason == "no figure of the asked kind (area) in the documents"
    assert chat.seen == []


TWO_PARTS = "怀宁县开展了多少场党史知识大宣讲？大观区举办了几期乡村振兴专题培训班？"


def test_a_two_part_question_reads_passages_for_both_parts_and_answers_both(make):
    pipeline, chat = make("怀宁县开展了15场党史知识大宣讲[1]。大观区举办2期乡村振兴专题培训班[2]。")
    answer = pipeline.ask(TWO_PARTS)
    assert not answer.abstained and answer.reason == "", answer
    assert "15场" in answer.text and "2期" in answer.text and "没有找到" not in answer.text
    assert {c.article for c in answer.citations} == {"怀宁县积极推进村级联合党委建设赋能乡村振兴", "大观区以组织振兴推动乡村振兴"}
    prompt = chat.seen[0][-1].content
    assert "开展党史知识大宣讲15场" in prompt and "举办乡村振兴专题培训班2期" in prompt
    assert f"Question: {TWO_PARTS}" in prompt  # asked as written


def test_a_part_the_answer_leaves_out_is_named(make):
    pipeline, _ = make("怀宁县开展了15场党史知识大宣讲[1]。")
    answer = pipeline.ask(TWO_PARTS)
    assert not answer.abstained and answer.reason.startswith("part not answered: 大观区举办了几期")
    first, note = answer.text.split("\n")
    assert "15场" in first and note == "资料中没有找到这部分问题的答案：大观区举办了几期乡村振兴专题培训班？"


def test_a_part_the_pages_cannot_answer_is_not_asked_and_is_named_in_the_askers_script(make):
    pipeline, chat = make("怀宁县开展了15场党史知识大宣讲[1]。")
    answer = pipeline.ask("懷寧縣開展了多少場黨史知識大宣講？巴黎埃菲爾鐵塔有多少級臺階？")
    assert "Question: 怀宁县开展了多少场党史知识大宣讲？\n" in chat.seen[0][-1].content  # only the open part
    assert not answer.abstained and answer.reason.startswith("part not answered: 巴黎埃菲尔铁塔")
    assert answer.text.endswith("資料中沒有找到這部分問題的答案：巴黎埃菲爾鐵塔有多少級臺階？")


def test_a_two_part_question_the_pages_answer_in_no_part_is_refused(make):
    pipeline, chat = make("不应被调用")
    answer = pipeline.ask("巴黎今天的天气怎么样？东京铁塔有多高？")
    assert answer.abstained and answer.reason.startswith("weak evidence") and chat.seen == []


def test_an_english_two_part_answer_missing_a_figure_names_the_part(make):
    pipeline, _ = make("Qingquan village's online sales exceeded 两亿元 last year [1].")
    answer = pipeline.ask("How much were Qingquan village's online sales last year, and how many villagers "
                          "do e-commerce?")
    assert not answer.abstained and answer.reason.startswith("part not answered: How many villagers do e-commerce?")
    assert answer.text.endswith("The documents don't answer this part of the question: "
                                "How many villagers do e-commerce?")


def test_a_follow_up_carrying_the_question_before_it_is_not_split(make):
    pipeline, _ = make("那里投入了多少资金？", "水头镇投入近70万元建设和食堂[1]。")
    answer = pipeline.ask("那里投入了多少资金？", history=[("水头镇的“和食堂”面向哪些老人开放？", "70周岁以上老人[1]。")])
    assert not answer.abstained and answer.reason == "" and "没有找到" not in answer.text
