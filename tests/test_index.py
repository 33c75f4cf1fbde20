"""The index on disk: build, load, staleness, corruption, atomic swap (real FAISS, hash embedder)."""

from __future__ import annotations

import errno
import gc
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rag.errors import IndexMismatch, IndexNotBuilt, RagError
from rag.search.build import build_index
from rag.search.index import (CHUNKS_FILE, CURRENT, FAISS_FILE, GLOSSARY_FILE, MANIFEST, SENTENCES_FILE,
                              load_index, read_manifest)
from rag.ingest.corpus import corpus_checksum, page_files

from fakes import HashEmbedder
from helpers import ROOT


def _checksum(settings):
    return corpus_checksum(page_files(settings.corpus_dir), settings.corpus_dir)


@pytest.fixture(scope="module")
def seed_build(seed_settings):
    """The seeds' index, built once per module."""
    build_index(seed_settings, HashEmbedder(), progress=False)
    return seed_settings.index_dir


@pytest.fixture
def built(settings, seed_build):
    """`settings` with a copy of the seeds' index in place, as a build would leave it, to damage."""
    shutil.copytree(seed_build, settings.index_dir, symlinks=True)
    return settings


def test_build_then_load_round_trip(settings, hash_embedder):
    built, corpus = build_index(settings, hash_embedder, progress=False)
    loaded = load_index(settings, hash_embedder.spec, _checksum(settings))
    assert loaded.faiss_index.ntotal == len(corpus.chunks) == len(loaded.chunks)
    assert loaded.chunks == corpus.chunks
    manifest = read_manifest(settings)
    assert manifest["embedder"]["checksum"] == hash_embedder.spec.checksum
    assert manifest["dimension"] == hash_embedder.dim
    counts = manifest["counts"]
    assert (counts["pages"], counts["articles"], counts["chunks"], counts["skipped"]) == (
        5, len(corpus.articles), len(corpus.chunks), 0)
    assert counts["sentences"] > counts["chunks"] and counts["glossary"] > 100
    assert loaded.sentence_index.ntotal == counts["sentences"] == len(loaded.sentence_owner)
    for key in ("chunker_version", "corpus_checksum", "built_at", "build_seconds", "tokenizer"):
        assert manifest[key]
    # Nothing pickled: the chunk store is JSON lines.
    first = json.loads((settings.index_dir / CURRENT / CHUNKS_FILE).read_text(encoding="utf-8").splitlines()[0])
    assert first["chunk_id"] == corpus.chunks[0].chunk_id and first["tokens"]


def test_missing_index_says_what_to_run(settings, hash_embedder):
    with pytest.raises(IndexNotBuilt, match="rag index"):
        load_index(settings, hash_embedder.spec, _checksum(settings))


def test_changed_pages_make_the_index_stale(settings, hash_embedder):
    build_index(settings, hash_embedder, progress=False)
    (settings.corpus_dir / "005_new.txt").write_text("# 新标题\n\n新的内容。\n", encoding="utf-8")
    with pytest.raises(IndexMismatch, match="changed since it was built"):
        load_index(settings, hash_embedder.spec, _checksum(settings))


def test_other_embedder_makes_the_index_stale(settings, hash_embedder):
    build_index(settings, hash_embedder, progress=False)
    with pytest.raises(IndexMismatch, match="built with embedder"):
        load_index(settings, HashEmbedder("hash-other").spec, _checksum(settings))


def test_the_undamaged_copy_loads(built, hash_embedder):
    """The damage tests below start from this copy: untouched, it loads."""
    assert load_index(built, hash_embedder.spec, _checksum(built)).faiss_index.ntotal > 0


@pytest.mark.parametrize("victim", [FAISS_FILE, CHUNKS_FILE, SENTENCES_FILE, GLOSSARY_FILE, "keywords.data.npy",
                                    "keywords.words.json", "pinyin.indptr.npy"])
@pytest.mark.parametrize("damage", ["truncate", "delete", "garble"])
def test_damaged_index_files_are_detected(built, hash_embedder, victim, damage):
    settings = built
    path = settings.index_dir / CURRENT / victim
    if damage == "delete":
        path.unlink()
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    with pytest.raises(IndexMismatch, match="rag index"):
        load_index(settings, hash_embedder.spec, _checksum(settings))


@pytest.mark.parametrize("content", ["", "{not json", "[]", '{"format_version": 99}'])
def test_corrupt_manifest_is_detected(built, hash_embedder, content):
    settings = built
    (settings.index_dir / CURRENT / MANIFEST).write_text(content, encoding="utf-8")
    with pytest.raises(IndexMismatch, match="rag index"):
        load_index(settings, hash_embedder.spec, _checksum(settings))


def test_deleted_vectorstore_folder_is_not_built(built, hash_embedder):
    settings = built
    shutil.rmtree(settings.index_dir)
    with pytest.raises(IndexNotBuilt):
        load_index(settings, hash_embedder.spec, _checksum(settings))


@pytest.mark.slow  # over a second; the fast tier stays within its budget (CI runs both)
def test_rebuild_swaps_atomically_and_cleans_old_builds(settings, hash_embedder):
    build_index(settings, hash_embedder, progress=False)
    first = (settings.index_dir / CURRENT).resolve()
    build_index(settings, hash_embedder, progress=False)
    second = (settings.index_dir / CURRENT).resolve()
    assert first != second and not first.exists() and second.exists()
    assert sorted(p.name for p in settings.index_dir.iterdir()) == sorted([CURRENT, second.name])


@pytest.mark.slow  # slow tier: a second Python process imports faiss and rag (~5 s)
def test_crash_mid_build_leaves_the_old_index_serving(settings, hash_embedder, tmp_path):
    """A build killed while writing (here: the process exits hard) must not touch `current`."""
    build_index(settings, hash_embedder, progress=False)
    before = (settings.index_dir / CURRENT).resolve()
    script = textwrap.dedent(f"""
        import os, sys
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]
        import faiss
        from fakes import HashEmbedder
        from rag.config import Settings
        from rag.search.build import build_index
        real_write = faiss.write_index
        def dying_write(index, path):
            real_write(index, path)
            os._exit(9)  # like kill -9 right after the first file is written
        faiss.write_index = dying_write
        build_index(Settings(corpus_dir=__import__('pathlib').Path({str(settings.corpus_dir)!r}),
                             index_dir=__import__('pathlib').Path({str(settings.index_dir)!r}),
                             cache_dir=__import__('pathlib').Path({str(settings.cache_dir)!r})),
                    HashEmbedder(), progress=False)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 9, result.stderr
    assert (settings.index_dir / CURRENT).resolve() == before
    loaded = load_index(settings, hash_embedder.spec, _checksum(settings))
    assert loaded.faiss_index.ntotal > 0
    leftovers = [p for p in settings.index_dir.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers, "the half-written build should be in a temporary folder"
    build_index(settings, hash_embedder, progress=False)  # the next run recovers and tidies up
    assert not [p for p in settings.index_dir.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.slow  # the bundled embedder, in `rag index` processes
def test_kill_9_during_rag_index_leaves_the_old_index_serving(tmp_path):
    import os
    import signal
    import time

    from rag.config import Settings

    shutil.copytree(ROOT / "seeds", tmp_path / "seeds")
    env = {**os.environ, "RAG_CORPUS_DIR": str(tmp_path / "seeds"), "RAG_INDEX_DIR": str(tmp_path / "vs"),
           "PYTHONPATH": str(ROOT)}
    index = [sys.executable, "-m", "rag", "index"]
    assert subprocess.run(index + ["--quiet"], env=env, capture_output=True, timeout=300).returncode == 0
    settings = Settings(corpus_dir=tmp_path / "seeds", index_dir=tmp_path / "vs")
    before = (settings.index_dir / CURRENT).resolve()
    # Text no embedding cache holds (this run's own numbers), enough of it for seconds of embedding.
    stamp = time.time_ns()
    paragraphs = ["".join(f"城南社区第{stamp}-{p}-{s}号阅览室今年接待居民{p * 100 + s}人次。" for s in range(4))
                  for p in range(150)]
    (tmp_path / "seeds" / "900_new.md").write_text("# 新的一页\n\n" + "\n\n".join(paragraphs), encoding="utf-8")
    build = subprocess.Popen(index, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = b""
    while b"embedding (" not in seen and build.poll() is None:  # the progress bar: it is embedding
        seen += build.stderr.read1(256)
    time.sleep(1)
    assert build.poll() is None, seen.decode(errors="replace")[-2000:]  # killed mid-embedding
    os.kill(build.pid, signal.SIGKILL)
    assert build.wait(timeout=30) == -signal.SIGKILL
    assert (settings.index_dir / CURRENT).resolve() == before
    assert load_index(settings).faiss_index.ntotal > 0  # the old index still loads and serves
    again = subprocess.run(index + ["--quiet"], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "Indexed 6 files" in again.stdout, again.stderr
    assert not [p for p in settings.index_dir.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.slow  # slow tier: index builds (seconds)
@pytest.mark.parametrize("victim", ["faiss", "chunks"])
def test_a_full_disk_while_writing_leaves_the_old_index_serving(settings, hash_embedder, monkeypatch, victim):
    build_index(settings, hash_embedder, progress=False)
    before = (settings.index_dir / CURRENT).resolve()
    if victim == "faiss":  # faiss reports a failed write as RuntimeError
        import faiss

        def full(index, path):
            raise RuntimeError(f"Error: fwrite to {path} failed: No space left on device")
        monkeypatch.setattr(faiss, "write_index", full)
    else:
        real_open = Path.open

        def full(self, mode="r", *args, **kwargs):
            if self.name == "chunks.jsonl" and "w" in mode:
                raise OSError(errno.ENOSPC, "No space left on device", str(self))
            return real_open(self, mode, *args, **kwargs)
        monkeypatch.setattr(Path, "open", full)
    with pytest.raises(RagError, match="No space left on device.*previous index is unchanged.*rag index"):
        build_index(settings, hash_embedder, progress=False)
    monkeypatch.undo()
    assert (settings.index_dir / CURRENT).resolve() == before
    assert load_index(settings, hash_embedder.spec, _checksum(settings)).faiss_index.ntotal > 0
    assert not [p for p in settings.index_dir.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.slow  # slow tier: index builds (seconds)
def test_large_indexes_are_hnsw_and_find_what_exact_search_finds(settings, hash_embedder):
    import dataclasses

    import faiss
    import numpy as np

    from rag.search.build import vector_index
    from rag.search.retrieve import open_searcher

    vectors = np.random.default_rng(0).standard_normal((2000, 64)).astype(np.float32)
    faiss.normalize_L2(vectors)
    exact, approximate = vector_index(vectors, hnsw_from=5000), vector_index(vectors, hnsw_from=1000)
    assert isinstance(exact, faiss.IndexFlatIP) and isinstance(approximate, faiss.IndexHNSWSQ)
    gc.collect()  # the graph was built in another index, gone now: what searches is a copy
    assert faiss.downcast_index(approximate.storage).sq.qtype == faiss.ScalarQuantizer.QT_8bit
    _, truth = exact.search(vectors[:100], 10)
    _, found = approximate.search(vectors[:100], 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found)])
    assert recall > 0.9, recall
    small = dataclasses.replace(settings, hnsw_from=50)  # the seeds' index as HNSW, saved and loaded
    build_index(small, hash_embedder, progress=False)
    loaded = load_index(small, hash_embedder.spec, _checksum(small))
    assert isinstance(loaded.faiss_index, faiss.IndexHNSWSQ) and loaded.faiss_index.hnsw.efSearch == 128
    passages = open_searcher(small, embedder=hash_embedder, progress=False).search("清泉村去年电商交易额是多少？", 5)
    assert any("清泉村" in p.text for p in passages)


@pytest.mark.slow
def test_keywords_tokenised_by_worker_processes_equal_one_process(monkeypatch):
    from rag.ingest.corpus import load_corpus
    from rag.search import build

    chunks = load_corpus(ROOT / "seeds", 350).chunks
    monkeypatch.setattr(build, "POOL_FROM", 10**9)
    alone = build._keyword_side(chunks)
    monkeypatch.setattr(build, "POOL_FROM", 1)
    pooled = build._keyword_side(chunks)
    assert pooled[0] == alone[0] and pooled[1] == alone[1] and pooled[3] == alone[3]
    assert len(pooled[0]) == len(chunks) and any("苍南" in t for t in pooled[0][0] + pooled[0][1])


def mapped_file(array) -> bool:
    """Whether an array's memory is a mapped file (np.load's mmap_mode), through the views on it."""
    import mmap

    while array is not None and not isinstance(array, mmap.mmap):
        array = getattr(array, "base", None)
    return array is not None


def test_keyword_matrices_are_mapped_and_score_as_ones_made_from_the_token_lists(built, hash_embedder):
    """A build writes its BM25 matrices (read back memory-mapped); a build made before, which has
    only the token lists in chunks.jsonl, still loads, its matrices made from those lists."""
    import numpy as np

    folder = (built.index_dir / CURRENT).resolve()
    mapped = load_index(built, hash_embedder.spec, _checksum(built))
    assert mapped_file(mapped.bm25._weights.data) and mapped_file(mapped.pinyin._weights.indices)
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    for name in [n for n in manifest["files"] if n.startswith(("keywords.", "pinyin."))]:
        (folder / name).unlink()
        del manifest["files"][name]
    (folder / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    older = load_index(built, hash_embedder.spec, _checksum(built))
    assert not mapped_file(older.bm25._weights.data)
    for query in (["清泉村", "电商", "交易额"], ["党建", "联盟", "没有的词"], []):
        assert np.array_equal(mapped.bm25.scores(query), older.bm25.scores(query))
    sounds = ["qing_quan", "quan_cun"]
    assert np.array_equal(mapped.pinyin.scores(sounds), older.pinyin.scores(sounds)) and older.pinyin.scores(sounds).any()
    assert mapped.bm25.vocabulary == older.bm25.vocabulary and mapped.bm25.size == older.bm25.size


def test_a_large_index_file_is_mapped_and_searches_as_one_read_into_memory(built, hash_embedder, monkeypatch):
    import numpy as np

    from rag.search import index as index_module

    read = load_index(built, hash_embedder.spec, _checksum(built))
    monkeypatch.setattr(index_module, "MMAP_FROM", 0)  # every file counts as large
    mapped = load_index(built, hash_embedder.spec, _checksum(built))
    query = hash_embedder.embed_queries(["矾山镇三合新村的村党委书记是谁？"])
    for a, b in ((read.faiss_index, mapped.faiss_index), (read.sentence_index, mapped.sentence_index)):
        assert (a.search(query, 10)[1] == b.search(query, 10)[1]).all()
        assert np.array_equal(a.reconstruct_batch(np.arange(5)), b.reconstruct_batch(np.arange(5)))
    # The mapped file is the build's own: replaced builds stay readable while mapped (Linux).
    mapped_rows = mapped.faiss_index.reconstruct_batch(np.arange(3))
    shutil.rmtree((built.index_dir / CURRENT).resolve())
    assert np.array_equal(mapped.faiss_index.reconstruct_batch(np.arange(3)), mapped_rows)
