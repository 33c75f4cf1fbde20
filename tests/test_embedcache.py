"""The embedding cache (rag.search.embedcache): only new text is embedded; interrupted builds resume."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rag.search.embedcache import SHARD_ROWS, EmbeddingCache
from rag.search.build import build_index
from rag.search.index import load_index

from fakes import CountingEmbedder, HashEmbedder


def _vectors(settings):
    index = load_index(settings)
    return index.faiss_index.reconstruct_n(0, index.faiss_index.ntotal)


@pytest.mark.slow  # slow tier: several index builds (seconds)
def test_a_rebuild_embeds_only_new_text_and_gives_the_same_index(settings, corpus_dir):
    first = CountingEmbedder()
    build_index(settings, first, progress=False)
    fresh = _vectors(settings)
    again = CountingEmbedder()
    build_index(settings, again, progress=False)
    assert first.texts and again.texts == []  # nothing changed: nothing embedded
    assert load_index(settings).manifest["counts"]["embedded"] == 0
    assert np.allclose(_vectors(settings), fresh)
    (corpus_dir / "900_new.md").write_text("# 新的一页\n\n城南社区夜间图书室于今年5月开放，已接待居民3200人次。"
                                          "图书室共有藏书8000册，由社区志愿者轮流值守。", encoding="utf-8")
    added = CountingEmbedder()
    build_index(settings, added, progress=False)
    assert added.texts and all("图书室" in t or "新的一页" in t for t in added.texts), added.texts


@pytest.mark.slow  # slow tier: several index builds (seconds)
def test_an_interrupted_build_resumes_where_it_stopped(settings):
    interrupted = CountingEmbedder(fail_after=1)
    with pytest.raises(KeyboardInterrupt):
        build_index(settings, interrupted, progress=False)
    assert len(interrupted.texts) == SHARD_ROWS  # one shard was saved before the interruption
    resumed = CountingEmbedder()
    build_index(settings, resumed, progress=False)
    assert resumed.texts and not set(resumed.texts) & set(interrupted.texts)
    reference = dataclasses.replace(settings, index_dir=settings.index_dir.parent / "reference")
    build_index(reference, CountingEmbedder(), progress=False, reuse=False)
    assert np.allclose(_vectors(settings), _vectors(reference))


def test_a_damaged_shard_is_ignored_and_re_embedded(tmp_path):
    cache = EmbeddingCache(tmp_path)
    embedder = CountingEmbedder()
    cache.embed(embedder, ["甲乙丙", "丁戊己"], batch_size=8)
    for shard in tmp_path.glob("shard-*.npy"):
        shard.write_bytes(b"not an array")
    again = CountingEmbedder()
    vectors = EmbeddingCache(tmp_path).embed(again, ["甲乙丙", "丁戊己"], batch_size=8)
    assert again.texts == ["甲乙丙", "丁戊己"] and vectors.shape == (2, embedder.dim)
    assert EmbeddingCache(tmp_path).embed(CountingEmbedder(), ["甲乙丙"], batch_size=8).shape == (1, embedder.dim)


def test_many_shards_are_merged_into_one_that_holds_them_all(tmp_path, monkeypatch):
    from rag.search import embedcache

    monkeypatch.setattr(embedcache, "SHARD_ROWS", 2)
    monkeypatch.setattr(embedcache, "MAX_SHARDS", 3)
    texts = [f"第{i}句" for i in range(10)]
    expected = EmbeddingCache(tmp_path).embed(CountingEmbedder(), texts, batch_size=2)
    assert len(list(tmp_path.glob("shard-*.json"))) == 1 and not list(tmp_path.glob(".*.tmp"))
    again = CountingEmbedder()
    assert np.array_equal(EmbeddingCache(tmp_path).embed(again, texts, batch_size=2), expected)
    assert again.texts == []


def test_an_empty_shard_left_by_a_crash_is_ignored(tmp_path):
    EmbeddingCache(tmp_path).embed(CountingEmbedder(), ["甲乙丙"], batch_size=8)
    for shard in tmp_path.glob("shard-*.npy"):
        shard.write_bytes(b"")
    again = CountingEmbedder()
    EmbeddingCache(tmp_path).embed(again, ["甲乙丙"], batch_size=8)
    assert again.texts == ["甲乙丙"]
