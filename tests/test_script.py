"""rag.script: the script a text is written in, its search form, and answers in the asker's script."""

from __future__ import annotations

import dataclasses
import sys

import pytest

import rag.script as script
from rag.answer.pipeline import Answered, Delta, Pipeline, Retrieved
from rag.errors import RagError
from rag.script import StreamConverter, script_of, search_form, to_simplified, to_traditional, writer_for
from rag.search.index import chunk_sentences
from rag.textnorm import split_sentences

from fakes import scripted
from helpers import QINGQUAN, SEEDS

QINGQUAN_TRADITIONAL = "清泉村去年電商交易額是多少？"  # QINGQUAN through OpenCC s2t
ANSWER = "清泉村去年交易额超两亿元[1]。"


@pytest.mark.parametrize("text, expected", [
    ("蒼南縣委組織部副部長叫什麼名字？", "traditional"),
    ("苍南县委组织部副部长叫什么名字？", "simplified"),
    ("那平陽呢？", "traditional"),  # one telling character is enough
    ("那平阳呢？", "simplified"),
    ("台灣在哪？", "traditional"),  # 台 is how Taiwan writes it: it does not count as Simplified
    ("裏面有著什麼？", "traditional"),  # Hong Kong's 裏, Taiwan's 著
    ("據說清泉村去年电商交易额是多少亿元？", "simplified"),  # mixed (據說 against 电 额 亿): the majority
    ("內地118幅珍貴詩書畫作品齊聚香江", "traditional"),  # a Hong Kong headline in the corpus (news-012)
    ("How many villages are in Cangnan?", None),
    ("2023年", None),  # characters both scripts share
    ("", None),
])
def test_script_of(text, expected):
    assert script_of(text) == expected


def test_search_form_converts_traditional_only():
    assert search_form(QINGQUAN_TRADITIONAL) == QINGQUAN
    assert search_form("內地118幅珍貴詩書畫作品") == "内地118幅珍贵诗书画作品"
    english = "Which body is the Anqing briefing submitted (报) to?"
    assert search_form(english) is english


def test_search_form_leaves_every_seed_text_as_it_is(seed_searcher):
    """The seeds' index and evaluation figures stay as they were: every text of theirs that is
    embedded or tokenised, and the pages themselves, come back as the very same string."""
    texts = []
    for page in sorted(SEEDS.glob("*.txt")):
        raw = page.read_text(encoding="utf-8")
        texts += [raw, *raw.splitlines(), *split_sentences(raw)]
    for chunk in seed_searcher.index.chunks:
        texts += [chunk.context_text, chunk.label, *chunk_sentences(chunk.text)]
    assert len(texts) > 1000
    changed = [t[:40] for t in texts if search_form(t) is not t]
    assert not changed


def test_conversions_round_trip_a_question():
    assert to_traditional(QINGQUAN) == QINGQUAN_TRADITIONAL
    assert to_simplified(QINGQUAN_TRADITIONAL) == QINGQUAN


@pytest.mark.parametrize("like, expected", [
    (None, "這裏爲什麼"),  # OpenCC's standard forms
    ("蒼南縣在哪？", "這裏爲什麼"),  # nothing regional to go by
    ("為什麼台灣的颱風多？", "這裡為什麼"),  # Taiwan: 為, 裡
    ("裏面為什麼這樣？", "這裏為什麼"),  # Hong Kong: 為, 裏
    ("为什么", "這裏爲什麼"),  # a Simplified asker says nothing about Traditional usage
])
def test_to_traditional_follows_the_askers_usage(like, expected):
    assert to_traditional("这里为什么", like=like) == expected


def test_writer_only_for_traditional_askers():
    assert writer_for(QINGQUAN) is None and writer_for("How much?") is None
    assert writer_for(QINGQUAN_TRADITIONAL)(ANSWER) == "清泉村去年交易額超兩億元[1]。"


def test_stream_converter_waits_for_the_rest_of_a_phrase():
    text = "他去理发店剪了头发，发现很贵。"
    whole = to_traditional(text)
    assert "理髮店" in whole and "頭髮" in whole and "發現" in whole
    # Piece by piece, 发 alone would be 發: the converter must see what follows.
    assert "".join(to_traditional(ch) for ch in text) != whole
    stream = StreamConverter(to_traditional)
    shown = [stream.feed(ch) for ch in text]
    assert shown[0] == "" and "".join(shown) + stream.flush() == whole


def test_a_missing_opencc_names_the_install(monkeypatch):
    monkeypatch.setattr(script, "_CONVERTERS", {})
    monkeypatch.setitem(sys.modules, "opencc", None)  # import fails as when not installed
    with pytest.raises(RagError, match="pip install opencc"):
        search_form(QINGQUAN)


# ----------------------------------------------------------------------------- the pipeline
@pytest.fixture
def make(seed_settings, seed_searcher):
    def build(*replies):
        chat = scripted(*replies)
        return Pipeline(dataclasses.replace(seed_settings), seed_searcher, chat), chat

    return build


def test_a_traditional_question_gets_a_traditional_answer_quoting_the_page_as_printed(make):
    simplified, _ = make(ANSWER)
    expected = simplified.ask(QINGQUAN)
    pipeline, chat = make(ANSWER)
    events = list(pipeline.stream(QINGQUAN_TRADITIONAL))
    answer = events[-1].answer
    assert isinstance(events[0], Retrieved) and isinstance(events[-1], Answered)
    assert answer.question == QINGQUAN_TRADITIONAL and not answer.abstained
    assert answer.text == "清泉村去年交易額超兩億元[1]。"
    assert "".join(e.text for e in events if isinstance(e, Delta)) == answer.text
    # Searched, prompted and checked in Simplified: the same passages and citations as the Simplified question.
    assert [p.chunk_id for p in answer.passages] == [p.chunk_id for p in expected.passages]
    assert QINGQUAN in chat.seen[0][-1].content and QINGQUAN_TRADITIONAL not in chat.seen[0][-1].content
    assert answer.citations == expected.citations and "两亿元" in answer.citations[0].quote
    assert answer.citations[0].article == "山货触网 农户生活更红火"


def test_a_refusal_is_in_the_askers_script_with_the_headlines_as_printed(make):
    pipeline, chat = make("不应被调用")
    answer = pipeline.ask("清泉村2023年的電商交易額是多少？")
    assert answer.abstained and chat.seen == []
    assert answer.text.startswith("抱歉，資料中沒有找到這個問題的答案。")
    assert "最相關的文章：" in answer.text and "山货触网 农户生活更红火" in answer.text


def test_a_simplified_question_is_answered_as_before(make):
    pipeline, chat = make(ANSWER)
    events = list(pipeline.stream(QINGQUAN))
    answer = events[-1].answer
    assert answer.text == ANSWER and answer.question == QINGQUAN
    assert [e.text for e in events if isinstance(e, Delta)] == [ANSWER]  # the scripted reply, as written
