"""The evidence gate: question words found in the passages; numbers and ordinals stated outright."""

from __future__ import annotations

import pytest

from rag.config import Settings
from rag.answer.evidence import coverage, gate, question_terms
from rag.answer.quantities import missing_specifics
from rag.search.retrieve import open_searcher

from fakes import HashEmbedder
from helpers import SEEDS


@pytest.fixture(scope="module")
def searcher(tmp_path_factory):
    root = tmp_path_factory.mktemp("evidence")
    settings = Settings(corpus_dir=SEEDS, index_dir=root / "vectorstore", cache_dir=root / "cache")
    return open_searcher(settings, embedder=HashEmbedder(), progress=False)


def test_question_words_leave_out_what_only_asks():
    assert question_terms("大观区区委书记叫什么名字？") == ["大观区", "区委书记"]
    assert question_terms("Roughly how many workers from Fujian?") == ["workers", "fujian"]


def test_coverage_reads_chinese_english_and_romanised_names(searcher):
    share, missing = coverage("清泉村去年电商交易额是多少？", searcher.search("清泉村去年电商交易额是多少？", 5))
    assert share == 1.0 and missing == []
    question = "At which farm does Guanyintang villager Ding Zhifa work?"
    share, missing = coverage(question, searcher.search(question, 5), searcher.index.glossary,
                              searcher.index.syllables)
    assert share >= 0.5 and "zhifa" not in missing and "guanyintang" not in missing


def test_gate_refuses_off_topic_questions_and_missing_specifics(searcher):
    for question in ("巴黎今天的天气怎么样？", "How do I bake sourdough bread?"):
        assert gate(question, searcher.search(question, 5), searcher.index, 0.25).startswith("weak evidence")
    question = "中共浙江省第十六次代表大会是哪一年召开的？"
    assert gate(question, searcher.search(question, 5), searcher.index, 0.25) == "not in the documents: 第十六次"
    question = "清泉村去年电商交易额是多少？"
    assert gate(question, searcher.search(question, 5), searcher.index, 0.25) == ""


def test_specifics_are_numbers_by_value_and_ordinals():
    assert missing_specifics("2023年的销售额是多少？", ["2022年销售额超12亿"]) == ["2023年"]
    assert missing_specifics("What happened on 20 June?", ["6月20日中午"]) == []
    assert missing_specifics("When COVID-19 hit Yinzhou", ["鄞州发生疫情"]) == []
