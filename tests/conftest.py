"""Shared fixtures: a hash embedder (unit tier) and per-test corpus/index folders."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


@dataclass(frozen=True)
class FakeSpec:
    name: str
    checksum: str


class HashEmbedder:
    """Embeds text as hashed character uni- and bigrams: deterministic, instant, model-free."""

    dim = 256

    def __init__(self, name: str = "hash-256"):
        self.spec = FakeSpec(name, "sha256:" + hashlib.sha256(name.encode()).hexdigest())
        self.calls = 0

    def _embed(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            grams = list(text) + [text[i:i + 2] for i in range(len(text) - 1)]
            for gram in grams:
                h = int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=4).digest(), "little")
                out[row, h % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)

    def embed_queries(self, texts):
        return self._embed(list(texts))

    def embed_passages(self, texts, batch_size=32, show_progress=False):
        return self._embed(list(texts))


@pytest.fixture
def hash_embedder():
    return HashEmbedder()


@pytest.fixture
def corpus_dir(tmp_path) -> Path:
    folder = tmp_path / "seeds"
    shutil.copytree(SEEDS, folder)
    return folder


@pytest.fixture
def settings(tmp_path, corpus_dir) -> Settings:
    return Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "vectorstore", cache_dir=tmp_path / "cache")


@pytest.fixture(scope="module")
def seed_settings(tmp_path_factory) -> Settings:
    """Settings over the real seed pages, for tests that only read the corpus and its index."""
    root = tmp_path_factory.mktemp("seed-index")
    return Settings(corpus_dir=SEEDS, index_dir=root / "vectorstore", cache_dir=root / "cache")


@pytest.fixture(scope="module")
def seed_searcher(seed_settings):
    """One hash-embedder index of the seeds per test module (built once: read-only tests share it)."""
    from rag.search.retrieve import open_searcher

    return open_searcher(seed_settings, embedder=HashEmbedder(), progress=False)


@contextlib.contextmanager
def llama_server(model: Path, log_path: Path, n_ctx: int = 4096):
    """llama-cpp-python's OpenAI-compatible server on a free loopback port; yields its /v1 URL."""
    pytest.importorskip("llama_cpp.server.app")
    from rag.models.llamacpp import physical_cores
    from rag.evaluation.loadtest import free_port, stop_process

    port = free_port()
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(physical_cores())],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while True:
                assert server.poll() is None, log_path.read_text(errors="replace")
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2).read()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "llama_cpp.server did not start in 120 s"
                    time.sleep(0.5)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            stop_process(server, timeout=20)
