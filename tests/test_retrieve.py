"""Hybrid retrieval with real FAISS/BM25 over the seeds and a hash embedder; question validation."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document

import rag
from rag.config import Settings
from rag.errors import BadQuestion, CorpusError, IndexNotBuilt
from rag.search.keywords import tokenize
from rag.search.retrieve import HybridRetriever, open_searcher, validate_question


@pytest.fixture
def searcher(seed_searcher):
    """Read-only tests share the module's seed index."""
    return seed_searcher


@pytest.fixture
def own_searcher(settings, hash_embedder):
    """An index of this test's own copy of the seeds, loaded for `settings`."""
    return open_searcher(settings, embedder=hash_embedder, progress=False)


def test_chinese_question_finds_its_article(searcher):
    passages = searcher.search("清泉村猕猴桃直播卖了多少单？", 5)
    assert passages[0].article == "山货触网 农户生活更红火"
    assert any("500多单" in p.text for p in passages[:3])
    assert [p.rank for p in passages] == [1, 2, 3, 4, 5]
    assert all(passages[i].score >= passages[i + 1].score for i in range(4))


def test_keyword_weight_follows_what_bm25_can_read(searcher):
    """An English question gets no weight from Chinese BM25, whose tokens it cannot match."""
    index = searcher.index
    assert index.bm25.coverage(tokenize("How many orders were sold?")) == 0.0
    assert index.bm25.coverage(tokenize("清泉村猕猴桃")) == 1.0
    weights = [w for w, _ in searcher._keyword_signals("How many orders were sold?")]
    assert weights and all(w < 0.3 for w in weights)
    zh = searcher._keyword_signals("清泉村猕猴桃")
    assert zh[0][0] == pytest.approx(0.4)


def test_english_words_are_bridged_by_the_glossary(searcher):
    (weight, scores), *rest = [s for s in searcher._keyword_signals("kiwi fruit sales")]
    best = searcher.index.chunks[int(scores.argmax())]
    assert weight > 0 and "猕猴桃" in best.text


def test_romanised_names_match_the_pinyin_of_the_pages(searcher):
    passages = searcher.search("At which farm does villager Ding Zhifa work?", 3)
    assert any("丁志发" in p.text for p in passages)


def test_keywords_rescue_a_rare_name(searcher):
    passages = searcher.search("白洪潘是谁？", 3)
    assert any("白洪潘" in p.text for p in passages)


def test_passage_fields_and_langchain_document(searcher):
    p = searcher.search("水头镇和食堂向多少岁以上老人开放？", 1)[0]
    for field in ("text", "article", "source", "paragraph", "score", "chunk_id"):
        assert getattr(p, field) not in (None, "")
    doc = p.to_document()
    assert isinstance(doc, Document) and doc.page_content == p.text
    assert doc.metadata["article"] == p.article and doc.metadata["source"] == p.source
    assert doc.metadata["chunk_id"] == p.chunk_id and "text" not in doc.metadata


def test_api_and_retriever_reuse_the_loaded_searcher(settings, own_searcher, hash_embedder):
    calls = hash_embedder.calls
    passages = rag.retrieve("安吉县流动药车携带了多少种常用药品？", k=3, settings=settings)
    assert len(passages) == 3 and hash_embedder.calls == calls + 1  # no reload, one query embedding
    docs = HybridRetriever(k=2, settings=settings).invoke("安吉县流动药车携带了多少种常用药品？")
    assert len(docs) == 2 and all(isinstance(d, Document) for d in docs)
    assert docs[0].metadata["chunk_id"] == passages[0].chunk_id


def test_stale_index_is_rebuilt_on_open(settings, own_searcher, hash_embedder):
    (settings.corpus_dir / "005_new.md").write_text("# 测试新闻\n\n月球村今年种了八百棵向日葵。\n", encoding="utf-8")
    fresh = open_searcher(settings, embedder=hash_embedder, progress=False)
    assert fresh.search("月球村种了多少棵向日葵？", 1)[0].article == "测试新闻"


def test_without_auto_build_a_missing_index_is_reported(settings, hash_embedder):
    with pytest.raises(IndexNotBuilt, match="rag index"):
        open_searcher(settings, auto_build=False, embedder=hash_embedder)


def test_missing_corpus_folder_is_reported(tmp_path, hash_embedder):
    settings = Settings(corpus_dir=tmp_path / "nowhere", index_dir=tmp_path / "vs")
    with pytest.raises(CorpusError, match="does not exist"):
        open_searcher(settings, embedder=hash_embedder)


@pytest.mark.parametrize("question, message", [
    ("", "empty"), ("   \n\t ", "empty"), ("\u200b\u200b", "empty"),
    ("问" * 20_000, "20,000 characters"), ("问" * 200_000, "200,000 characters"), ("\x00\x07\x1b\u2060", "empty"),
    ("？？!!…", "no words"), ("🙂🙂", "no words"), (b"\xff\xfe\x00bad", "UTF-8"), (None, "must be text"),
])
def test_bad_questions_get_clear_messages(question, message):
    with pytest.raises(BadQuestion, match=message):
        validate_question(question, Settings())


def test_question_is_cleaned():
    assert validate_question("  苍南\u200b县\x07有多少  村社？ ", Settings()) == "苍南县有多少 村社？"
    assert validate_question("清泉村".encode(), Settings()) == "清泉村"


def test_mixed_scripts_and_emoji_are_searched_as_they_are(searcher):
    question = validate_question("🙂 Qingquan 清泉村 e-commerce 交易额？🚀", Settings())
    assert question == "🙂 Qingquan 清泉村 e-commerce 交易额？🚀"
    assert any("清泉村" in p.text for p in searcher.search(question, 5))


@pytest.mark.parametrize("k", [0, -1, 51, 2.5, "5"])
def test_k_out_of_range(searcher, k):
    with pytest.raises(BadQuestion, match="k must be"):
        searcher.search("清泉村", k)


def test_an_answer_embeds_its_question_once(settings, hash_embedder):
    searcher = open_searcher(settings, embedder=hash_embedder, progress=False)
    calls = hash_embedder.calls
    passages = searcher.search("清泉村去年电商交易额是多少？", 5)
    scores = searcher.excerpt_scores("清泉村去年电商交易额是多少？", passages[:3])
    assert hash_embedder.calls == calls + 1 and len(scores) == 3
    searcher.search("苍南县建立了多少个党建联盟？", 5)
    assert hash_embedder.calls == calls + 2


def test_a_cut_through_tied_scores_keeps_every_tied_row():
    import numpy as np

    from rag.search.stores import search_with_ties

    class Store:  # rows 2, 3 and 4 tie; which of them a store returns first is its own choice
        ntotal = 6
        scores = np.array([0.9, 0.8, 0.5, 0.5, 0.5, 0.1], dtype=np.float32)

        def search(self, query, depth, allowed=None, filters=None):
            order = np.argsort(-self.scores, kind="stable")[:depth]
            return order, self.scores[order]

    ids, scores = search_with_ties(Store(), None, 3)
    assert sorted(ids.tolist()) == [0, 1, 2, 3, 4] and scores[-1] == np.float32(0.5)
    assert search_with_ties(Store(), None, 2)[0].tolist() == [0, 1]  # no tie at the cut
    assert search_with_ties(Store(), None, 6)[0].tolist() == [0, 1, 2, 3, 4, 5]
