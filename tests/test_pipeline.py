"""ask()/stream() with a scripted chat model over the real index (hash embedder)."""

from __future__ import annotations

import dataclasses

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from rag.errors import BadQuestion
from rag.answer.pipeline import Answer, Pipeline


class ScriptedChat(GenericFakeChatModel):
    """Replies with the given texts in order and records the prompts it saw."""

    seen: list = []

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.seen.append(messages)
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def scripted(*replies):
    return ScriptedChat(messages=iter([AIMessage(content=r) for r in replies]), seen=[])


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


def test_stream_yields_deltas_then_the_answer(make):
    pipeline, _ = make("清泉村去年交易额超两亿元[1]。")
    items = list(pipeline.stream("清泉村去年电商交易额是多少？"))
    assert isinstance(items[-1], Answer) and all(isinstance(i, str) for i in items[:-1])
    assert "".join(items[:-1]) == "清泉村去年交易额超两亿元[1]。"


def test_passages_are_reported_before_the_first_token(make):
    pipeline, _ = make("清泉村去年交易额超两亿元[1]。")
    events = []
    for item in pipeline.stream("清泉村去年电商交易额是多少？",
                                on_passages=lambda passages, query: events.append((passages, query))):
        events.append(item)
    (passages, query), first_delta = events[0], events[1]
    assert passages and passages[0].article == "山货触网 农户生活更红火"
    assert query == "清泉村去年电商交易额是多少？" and isinstance(first_delta, str)


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
    pipeline, _ = make("清泉村的电商大楼里，工作人员正忙着打包发货[1]。")
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


class PrefixKeepingChat(ScriptedChat):
    """A scripted chat model that records the prompt openings it is asked to keep cached."""

    kept: list

    def keep_prefix(self, *samples):
        self.kept.append(samples)
        return 1


def test_the_condense_prompts_opening_is_kept_at_the_first_follow_up(seed_settings, seed_searcher):
    replies = ["清泉村有多少人做电商？", "清泉村有300多人做电商[1]。"] * 2
    chat = PrefixKeepingChat(messages=iter([AIMessage(content=r) for r in replies]), seen=[], kept=[])
    pipeline = Pipeline(seed_settings, seed_searcher, chat)
    history = [("清泉村去年电商交易额是多少？", "超两亿元[1]。")]
    pipeline.ask("那村里有多少人做电商？", history=history)
    pipeline.ask("那村里有多少人做电商？", history=history)
    assert len(chat.kept) == 1  # once, at the first follow-up
    first, second = (sample[0].content for sample in chat.kept[0])
    opening = first[: next(i for i, (a, b) in enumerate(zip(first, second)) if a != b)]
    assert opening.startswith("Rewrite the last question") and chat.seen[0][0].content.startswith(opening)
    off = PrefixKeepingChat(messages=iter([AIMessage(content=r) for r in replies]), seen=[], kept=[])
    Pipeline(dataclasses.replace(seed_settings, llm_keep_prefix=False), seed_searcher, off).ask(
        "那村里有多少人做电商？", history=history)
    assert off.kept == []


def test_a_follow_up_the_model_leaves_unchanged_takes_the_last_question_along(make):
    pipeline, _ = make("那里投入了多少资金？", "水头镇投入近70万元建设和食堂[1]。")
    answer = pipeline.ask("那里投入了多少资金？", history=[("水头镇的“和食堂”面向哪些老人开放？", "70周岁以上老人[1]。")])
    assert answer.rewritten_query == "水头镇的“和食堂”面向哪些老人开放？ 那里投入了多少资金？"
    assert answer.citations and answer.citations[0].article == "强化党建“驱动力”，打开群众幸福门"


@pytest.mark.parametrize("question", ["", "   ", "问" * 20_000])
def test_bad_questions_raise(make, question):
    pipeline, _ = make("x")
    with pytest.raises(BadQuestion):
        pipeline.ask(question)
