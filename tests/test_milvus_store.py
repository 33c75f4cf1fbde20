"""Milvus as the second vector store (rag.search.milvus), against Milvus Lite (embedded, a folder):
the same passages as FAISS on the public set and under date/outlet filters, a hash embedder."""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import date

import pytest

from rag.config import Settings
from rag.errors import IndexMismatch, RagError
from rag.ingest.article import Article, Page
from rag.ingest.chunks import chunk_article
from rag.ingest.corpus import Corpus
from rag.search.build import build_index
from rag.search.filters import SearchFilter
from rag.search.index import CURRENT, FAISS_FILE, SENTENCES_FILE, check_fresh, load_index
from rag.search.milvus import LITE_FOLDER, MARKER, MilvusStore, milvus_filter
from rag.search.retrieve import HybridSearcher
from rag.search.stores import FaissStore

from fakes import HashEmbedder
from helpers import ROOT, SEEDS

# Builds the seeds into two stores (~17 s on two cores): the slow tier, which CI runs.
pytestmark = pytest.mark.slow

pytest.importorskip("pymilvus")
QUESTIONS = [json.loads(line)["question"]
             for line in (ROOT / "eval" / "sets" / "public.jsonl").read_text(encoding="utf-8").splitlines() if line]
TIE = 1e-5


def _searchers(root, corpus=None, **fields) -> tuple[HybridSearcher, HybridSearcher]:
    """The same corpus built into FAISS and into Milvus Lite, each loaded back as a new process would."""
    embedder = HashEmbedder()
    out = []
    for store in ("faiss", "milvus"):
        settings = Settings(corpus_dir=SEEDS, index_dir=root / store, cache_dir=root / "cache", store=store, **fields)
        build_index(settings, embedder, corpus=corpus, progress=False)
        out.append(HybridSearcher(load_index(settings, embedder.spec), embedder, settings))
    return out[0], out[1]


def _assert_same(faiss_passages, milvus_passages, tie: float = TIE) -> None:
    """Same chunks in the same order; a tie (scores within ``tie``) may swap places."""
    assert len(faiss_passages) == len(milvus_passages)
    for a, b in zip(faiss_passages, milvus_passages):
        assert abs(a.score - b.score) <= tie, (a.chunk_id, a.score, b.chunk_id, b.score)
        if a.chunk_id != b.chunk_id:  # only a tie: b sits in the FAISS list (or past its end) at a's score
            twin = next((p for p in faiss_passages if p.chunk_id == b.chunk_id), None)
            assert twin is None or abs(twin.score - a.score) <= 2 * tie, (a.chunk_id, b.chunk_id)


@pytest.fixture(scope="module")
def seed_pair(tmp_path_factory):
    return _searchers(tmp_path_factory.mktemp("stores"))


def test_both_stores_give_the_same_top_five_on_the_public_set(seed_pair):
    faiss_searcher, milvus_searcher = seed_pair
    assert isinstance(faiss_searcher.index.dense_store, FaissStore)
    assert isinstance(milvus_searcher.index.dense_store, MilvusStore) and milvus_searcher.index.faiss_index is None
    assert milvus_searcher.index.dense_store.ntotal == len(milvus_searcher.index.chunks) > 100
    assert len(QUESTIONS) == 160
    for question in QUESTIONS:
        _assert_same(faiss_searcher.search(question, 5), milvus_searcher.search(question, 5))


def test_stored_vectors_and_excerpt_scores_are_the_same(seed_pair):
    faiss_searcher, milvus_searcher = seed_pair
    ids = [0, 7, 3, len(faiss_searcher.index.chunks) - 1]
    assert (faiss_searcher.index.dense_store.vectors(ids) == milvus_searcher.index.dense_store.vectors(ids)).all()
    question = QUESTIONS[0]
    passages = faiss_searcher.search(question, 5)
    for a, b in zip(faiss_searcher.excerpt_scores(question, passages),
                    milvus_searcher.excerpt_scores(question, passages)):
        assert [s for s, _ in a] == [s for s, _ in b]
        assert all(abs(x - y) <= TIE for (_, x), (_, y) in zip(a, b))


def test_a_milvus_build_writes_collections_not_faiss_files(seed_pair):
    _, milvus_searcher = seed_pair
    folder = milvus_searcher.index.path
    manifest = milvus_searcher.index.manifest
    assert manifest["store"] == "milvus" and manifest["milvus"]["uri"] == ""
    assert manifest["milvus"]["collections"] == [f"rag_{folder.name.rsplit('-', 1)[1]}_chunks",
                                                 f"rag_{folder.name.rsplit('-', 1)[1]}_sentences"]
    assert (folder / LITE_FOLDER).is_dir() and (folder / MARKER).is_file()
    assert not (folder / FAISS_FILE).exists() and not (folder / SENTENCES_FILE).exists()
    assert FAISS_FILE not in manifest["files"]


def test_an_index_built_for_the_other_store_is_stale(seed_pair):
    faiss_searcher, milvus_searcher = seed_pair
    embedder = HashEmbedder()
    for searcher, other in ((faiss_searcher, "milvus"), (milvus_searcher, "faiss")):
        settings = dataclasses.replace(searcher.settings, store=other)
        with pytest.raises(IndexMismatch, match=f"built for the {searcher.settings.store} store"):
            check_fresh(searcher.index.manifest, settings, embedder.spec, None)
    server = dataclasses.replace(milvus_searcher.settings, milvus_uri="http://milvus:19530")
    with pytest.raises(IndexMismatch, match="stale"):
        check_fresh(milvus_searcher.index.manifest, server, embedder.spec, None)


OUTLETS = ["人民网", "中新网", "新华社", "IT之家"]
TOPICS = ["防汛", "高温", "大运会", "芯片", "粮食"]


def _dated_corpus() -> Corpus:
    """62 articles over July–August 2023 from 4 outlets, one undated and one dated by month only."""
    def article(number, day, outlet, topic, precision="day"):
        iso = None if day is None else (day.isoformat() if precision == "day" else day.isoformat()[:7])
        body = (f"{outlet}{day}电 本地{topic}工作持续推进，第{number}号报道称，{topic}相关部门已经部署"
                f"{number * 3}项措施，涉及{number + 10}个乡镇。")
        return Article("news.txt", number, f"{topic}动态之{number}", "article", (body,), date=iso,
                       date_precision=precision if day else "unknown", paper=outlet, record=number)

    articles = [article(i + 1, date(2023, 7, 1) + (date(2023, 7, 2) - date(2023, 7, 1)) * i, OUTLETS[i % 4],
                        TOPICS[i % 5]) for i in range(60)]
    articles += [article(61, None, "人民网", "防汛"), article(62, date(2023, 7, 1), "人民网", "防汛", "month")]
    return Corpus([Page("news.txt", articles, format="dump")], [c for a in articles for c in chunk_article(a)],
                  [], "x" * 64)


@pytest.mark.parametrize("hnsw_from", [100_000, 20])  # exact (FLAT) and HNSW in both stores
def test_date_and_outlet_filters_give_the_same_in_both_stores(tmp_path, hnsw_from):
    faiss_searcher, milvus_searcher = _searchers(tmp_path, _dated_corpus(), hnsw_from=hnsw_from)
    cases = [("2023-07-10", "2023-07-20", None), ("2023-07-01", "2023-07-03", None),
             ("2023-08", "2023-08", "中新网"), (None, None, "中新网, IT之家"), ("2023-07", "2023-07", None),
             ("2024-01-01", None, None)]
    for start, end, paper in cases:
        f = SearchFilter.parse(start, end, paper)
        for question in ("防汛工作部署了多少项措施？", "芯片相关部门已经部署措施", "防汛动态之62"):
            expected = faiss_searcher.search(question, 10, f)
            found = milvus_searcher.search(question, 10, f)
            allowed = f.mask(faiss_searcher.index.day_spans, faiss_searcher.index.outlet_keys)
            assert len(expected) == len(found) == min(10, int(allowed.sum()))  # the filter ran inside the search
            if hnsw_from > 1000:
                _assert_same(expected, found)
            else:  # FAISS keeps HNSW vectors in 8 bits (rag.search.build.vector_index), Milvus in float32
                passing = {c.chunk_id for c, ok in zip(faiss_searcher.index.chunks, allowed) if ok}
                ours, theirs = [p.chunk_id for p in expected], [p.chunk_id for p in found]
                assert set(theirs) <= passing and len(set(ours) & set(theirs)) >= 0.7 * len(ours), (ours, theirs)


def test_the_filter_expression_is_the_masks_rule_with_outlets_quoted():
    assert milvus_filter(None) == ""
    f = SearchFilter.parse("2023-07-10", "2023-07-20", 'A "quoted"\\ outlet, 人民网')
    assert milvus_filter(f) == (f"day_from >= 0 and day_from >= {f.day_from} and day_to <= {f.day_to} and "
                                'outlet in ["a\\"quoted\\"\\\\outlet", "人民网"]')
    assert milvus_filter(SearchFilter.parse(paper="新华社")) == 'outlet in ["新华社"]'


def test_a_rebuild_drops_the_old_build_and_its_collections(tmp_path):
    embedder = HashEmbedder()
    settings = Settings(corpus_dir=SEEDS, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache", store="milvus")
    first, _ = build_index(settings, embedder, corpus=_dated_corpus(), progress=False)
    second, _ = build_index(settings, embedder, corpus=_dated_corpus(), progress=False)
    assert not first.path.exists() and (tmp_path / "index" / CURRENT).resolve() == second.path
    builds = [p.name for p in (tmp_path / "index").iterdir() if p.name.startswith(("build-", ".tmp-"))]
    assert builds == [second.path.name]
    loaded = load_index(settings, embedder.spec)
    assert loaded.dense_store.ntotal == len(loaded.chunks) == 62


def test_milvus_without_pymilvus_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pymilvus", None)  # makes `import pymilvus` fail
    settings = Settings(corpus_dir=SEEDS, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache", store="milvus")
    with pytest.raises(RagError, match=r"pip install 'rag\[milvus\]'"):
        build_index(settings, HashEmbedder(), corpus=_dated_corpus(), progress=False)
    assert not [p for p in (tmp_path / "index").iterdir()]  # nothing half-built left behind


def test_an_unknown_store_is_refused_with_the_choices(tmp_path):
    settings = Settings(corpus_dir=SEEDS, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache", store="chroma")
    with pytest.raises(RagError, match="faiss, milvus"):
        build_index(settings, HashEmbedder(), corpus=_dated_corpus(), progress=False)
