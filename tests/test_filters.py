"""Search filters (dates, outlets) applied inside the hybrid search, and reprints collapsed in it:
real FAISS (exact and HNSW) and BM25 over dated articles, a hash embedder."""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pytest

from rag.config import Settings
from rag.errors import BadQuestion
from rag.ingest.article import Article, Page
from rag.ingest.chunks import chunk_article
from rag.ingest.corpus import Corpus
from rag.search.build import build_index
from rag.search.filters import SearchFilter, chunk_day_span
from rag.search.retrieve import HybridSearcher

OUTLETS = ["人民网", "中新网", "新华社", "IT之家"]
TOPICS = ["防汛", "高温", "大运会", "芯片", "粮食"]


def _article(number: int, day: date | None, outlet: str, topic: str, precision: str = "day",
             text: str | None = None) -> Article:
    iso = None if day is None else (day.isoformat() if precision == "day" else day.isoformat()[:7])
    body = text or (f"{outlet}{day}电 本地{topic}工作持续推进，第{number}号报道称，{topic}相关部门已经部署"
                    f"{number * 3}项措施，涉及{number + 10}个乡镇。")
    return Article("news.txt", number, f"{topic}动态之{number}", "article", (body,), date=iso,
                   date_precision=precision if day else "unknown", paper=outlet, record=number)


def _corpus(articles: list[Article]) -> Corpus:
    chunks = [c for a in articles for c in chunk_article(a)]
    return Corpus([Page("news.txt", articles, format="dump")], chunks, [], "x" * 64)


@pytest.fixture(scope="module")
def dated(tmp_path_factory, hash_embedder_module):
    """60 articles over July–August 2023, 4 outlets, 5 topics; plus undated and month-dated ones."""
    articles = [_article(i + 1, date(2023, 7, 1) + (date(2023, 7, 2) - date(2023, 7, 1)) * i,
                         OUTLETS[i % 4], TOPICS[i % 5]) for i in range(60)]
    articles.append(_article(61, None, "人民网", "防汛"))
    articles.append(_article(62, date(2023, 7, 1), "人民网", "防汛", precision="month"))
    folder = tmp_path_factory.mktemp("dated")
    settings = Settings(corpus_dir=folder, index_dir=folder / "index", cache_dir=folder / "cache")
    index, _ = build_index(settings, hash_embedder_module, corpus=_corpus(articles), progress=False)
    return HybridSearcher(index, hash_embedder_module, settings), articles


@pytest.fixture(scope="module")
def hash_embedder_module():
    from fakes import HashEmbedder

    return HashEmbedder()


def _day(p) -> date:
    return date.fromisoformat(p.date)


@pytest.mark.parametrize("question", ["防汛工作部署了多少项措施？", "大运会", "芯片相关部门", "How many towns?"])
def test_a_date_filter_never_returns_an_article_outside_the_range(dated, question):
    searcher, _ = dated
    filters = SearchFilter.parse("2023-07-10", "2023-07-20")
    passages = searcher.search(question, 10, filters)
    assert passages
    assert all(date(2023, 7, 10) <= _day(p) <= date(2023, 7, 20) for p in passages)
    assert all(p.date_precision == "day" for p in passages)  # the undated and the month-dated are out


def test_a_filter_that_leaves_three_articles_returns_those_three(dated):
    """Filtering happens inside the search: the three are found although others score higher."""
    searcher, _ = dated
    passages = searcher.search("芯片相关部门已经部署措施", 5, SearchFilter.parse("2023-07-01", "2023-07-03"))
    assert sorted(p.article_no for p in passages) == [1, 2, 3]


def test_outlet_filter_and_dates_together(dated):
    searcher, _ = dated
    passages = searcher.search("防汛", 10, SearchFilter.parse("2023-08", "2023-08", paper="中新网"))
    assert passages and all(p.paper == "中新网" and p.date.startswith("2023-08") for p in passages)
    several = searcher.search("防汛", 20, SearchFilter.parse(paper="中新网, IT之家"))
    assert {p.paper for p in several} == {"中新网", "IT之家"}


def test_a_month_dated_article_passes_only_a_range_holding_its_whole_month(dated):
    searcher, _ = dated
    whole = searcher.search("防汛动态之62", 50, SearchFilter.parse("2023-07", "2023-07"))
    part = searcher.search("防汛动态之62", 50, SearchFilter.parse("2023-07-01", "2023-07-15"))
    assert 62 in {p.article_no for p in whole}
    assert 62 not in {p.article_no for p in part}


def test_a_filter_nothing_passes_returns_no_passages(dated):
    searcher, _ = dated
    assert searcher.search("防汛", 5, SearchFilter.parse("2024-01-01", "2024-12-31")) == []
    assert searcher.search("防汛", 5, SearchFilter.parse(paper="不存在的报纸")) == []


def test_without_a_filter_undated_articles_are_found_too(dated):
    searcher, _ = dated
    assert 61 in {p.article_no for p in searcher.search("防汛动态之61", 50)}


@pytest.mark.parametrize("start,end,message", [("2023-08-01", "2023-07-01", "before it starts"),
                                                ("July", None, "not a date"), ("2023-02-30", None, "not a date")])
def test_bad_filter_input_is_refused_with_a_reason(start, end, message):
    with pytest.raises(BadQuestion, match=message):
        SearchFilter.parse(start, end)


def test_typed_dates_cover_their_whole_year_or_month():
    f = SearchFilter.parse("2023年7月", "2023")
    assert date.fromordinal(f.day_from) == date(2023, 7, 1) and date.fromordinal(f.day_to) == date(2023, 12, 31)
    assert SearchFilter.parse(None, " ", "") is None
    assert chunk_day_span("--07-28", "month-day") is None and chunk_day_span(None, "unknown") is None


@pytest.mark.slow  # builds an HNSW index
def test_hnsw_indexes_filter_inside_the_search_too(tmp_path, hash_embedder_module):
    """Large (HNSW) indexes: a selective filter scores the allowed vectors directly, a broad one
    searches the graph with a selector; both return only allowed articles, the best of them."""
    articles = [_article(i + 1, date(2023, 1, 1) + (date(2023, 1, 2) - date(2023, 1, 1)) * (i % 200),
                         OUTLETS[i % 4], TOPICS[i % 5]) for i in range(400)]
    settings = Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache",
                        hnsw_from=50)
    index, _ = build_index(settings, hash_embedder_module, corpus=_corpus(articles), progress=False)
    assert hasattr(index.faiss_index, "hnsw")
    searcher = HybridSearcher(index, hash_embedder_module, settings)
    for start, end in (("2023-01-03", "2023-01-04"), ("2023-01-01", "2023-06-30")):
        f = SearchFilter.parse(start, end)
        passages = searcher.search("高温相关部门已经部署措施", 10, f)
        assert passages and all(f.day_from <= date.fromisoformat(p.date).toordinal() <= f.day_to for p in passages)
        allowed = f.mask(index.day_spans, index.outlet_keys)
        assert len(passages) == min(10, int(allowed.sum()))


def test_reprints_are_one_passage_citing_the_earliest_printing(tmp_path, hash_embedder_module):
    story = "新华社北京7月25日电 应急管理部副部长王道席25日表示，全国已进入“七下八上”防汛关键期，目前全国防汛抗旱形势总体平稳。"
    copies = [_article(1, date(2023, 7, 26), "人民网", "防汛", text=story),
              _article(2, date(2023, 7, 25), "新华社", "防汛", text=story),
              _article(3, date(2023, 7, 27), "中新网", "防汛", text=story),
              _article(4, date(2023, 7, 27), "中新网", "高温")]
    corpus = _corpus(copies)
    corpus.chunks = [dataclasses.replace(c, group="g:test") if c.article_no < 4 else c for c in corpus.chunks]
    settings = Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache")
    from rag.search import build as build_module

    original = build_module.with_reprint_groups
    build_module.with_reprint_groups = lambda c: c.chunks  # keep the groups set above
    try:
        index, _ = build_index(settings, hash_embedder_module, corpus=corpus, progress=False)
    finally:
        build_module.with_reprint_groups = original
    passages = HybridSearcher(index, hash_embedder_module, settings).search("王道席 防汛关键期", 4)
    story_passages = [p for p in passages if p.group == "g:test"]
    assert len(story_passages) == 1 and story_passages[0].paper == "新华社"  # the earliest, 07-25
    assert story_passages[0].also_in == ("人民网 · 2023-07-26 · 防汛动态之1", "中新网 · 2023-07-27 · 防汛动态之3")
    # Filtered to the later days, the copy printed then is cited instead.
    later = HybridSearcher(index, hash_embedder_module, settings).search(
        "王道席 防汛关键期", 4, SearchFilter.parse("2023-07-27"))
    assert [p.article_no for p in later if p.group == "g:test"] == [3]
    assert np.all(index.day_spans[:, 0] > 0)
