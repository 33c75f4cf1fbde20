"""Synthetic corpora (rag.evaluation.synthetic) and the scale benchmark over them (rag.evaluation.bench.scale_bench)."""

from __future__ import annotations

import dataclasses

import pytest

from rag.ingest.corpus import load_corpus
from rag.evaluation.synthetic import write_synthetic_corpus

from fakes import HashEmbedder
from helpers import SEEDS


def test_pages_recombine_seed_sentences_reproducibly(tmp_path):
    pages = write_synthetic_corpus(SEEDS, tmp_path / "a", 300)
    assert pages == len(list((tmp_path / "a").glob("*.md"))) >= 3
    write_synthetic_corpus(SEEDS, tmp_path / "b", 300)
    assert [p.read_text() for p in sorted((tmp_path / "a").glob("*.md"))] == \
        [p.read_text() for p in sorted((tmp_path / "b").glob("*.md"))]
    corpus = load_corpus(tmp_path / "a", 350)
    seed_text = "".join(a.text for a in load_corpus(SEEDS, 350).articles)
    assert len(corpus.chunks) > 100 and all(c.text[:8] in seed_text for c in corpus.chunks[:50])  # sentences are ≥ 8 chars


@pytest.mark.slow  # slow tier: a synthetic corpus indexed (seconds)
def test_scale_bench_measures_build_search_and_hnsw_recall(seed_settings, monkeypatch):
    from rag.evaluation import bench
    from rag.models import embedder as models

    monkeypatch.setattr(models, "load_embedder", lambda settings: HashEmbedder())
    settings = dataclasses.replace(seed_settings, cache_dir=seed_settings.index_dir.parent / "scale-cache")
    result = bench.scale_bench(settings, [400], ["清泉村去年电商交易额是多少？", "苍南县建立了多少个党建联盟？"], repeat=1)
    size = result["sizes"][0]
    assert size["paragraphs"] == 400 and size["chunks"] > 100 and size["retrieve_ms"]["n"] == 2
    assert 0.5 <= size["flat_vs_hnsw"]["hnsw_recall_at_10"] <= 1 and size["peak_rss_mb"] > 0
