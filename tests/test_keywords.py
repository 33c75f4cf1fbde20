"""Keyword search (rag.search.keywords): the sparse BM25 scores exactly as rank-bm25's BM25Okapi."""

from __future__ import annotations

import numpy as np
import pytest

from rag.ingest.corpus import load_corpus
from rag.search.keywords import BM25Index, tokenize

from helpers import SEEDS

QUESTIONS = ["清泉村去年电商交易额是多少？", "苍南县委组织部副部长陈庆介绍了什么", "党建 党建 联盟", "安吉县流动药车",
             "no such words at all", "乡村振兴"]


@pytest.fixture(scope="module")
def seed_tokens():
    return [tokenize(chunk.context_text) for chunk in load_corpus(SEEDS, 350).chunks]


def test_scores_equal_rank_bm25s(seed_tokens):
    from rank_bm25 import BM25Okapi

    ours, reference = BM25Index(seed_tokens), BM25Okapi(seed_tokens)
    for question in QUESTIONS:
        tokens = tokenize(question)
        known = [t for t in tokens if t in reference.idf]
        expected = reference.get_scores(known) if known else np.zeros(len(seed_tokens))
        assert np.allclose(ours.scores(tokens), expected, rtol=1e-5, atol=1e-6), question
    assert ours.vocabulary == set(reference.idf)
    assert ours.scores(tokenize("乡村振兴")).argmax() == reference.get_scores(tokenize("乡村振兴")).argmax()


def test_empty_passages_and_corpora_score_zero():
    index = BM25Index([["清泉村", "电商"], [], ["电商"]])
    scores = index.scores(["电商", "清泉村"])
    assert scores.shape == (3,) and scores[1] == 0 and scores[0] > scores[2] > 0
    assert BM25Index([]).scores(["电商"]).shape == (0,)
    assert not BM25Index([[]]).scores(["电商"]).any()


@pytest.mark.slow  # slow tier: a synthetic keyword index (seconds)
def test_keyword_benchmark_reports_both_implementations(seed_settings):
    from rag.evaluation.bench import keyword_scale

    result = keyword_scale(seed_settings, documents=300, queries=3)
    assert result["documents"] == 300 and result["queries"] == 3
    assert result["sparse_bm25"]["query_ms_p95"] >= result["sparse_bm25"]["query_ms_p50"] > 0
    assert result["rank_bm25"]["build_s"] >= 0
