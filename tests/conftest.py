"""Shared fixtures: a hash embedder (unit tier) and per-test corpus/index folders.

Fakes live in fakes.py and plain helpers in helpers.py (this folder is on sys.path: pytest puts a
rootdir conftest's folder there), so that no test imports conftest or another test module.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag.config import Settings

from fakes import HashEmbedder
from helpers import SEEDS


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


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory) -> Settings:
    """Settings over the real seed pages, for tests that only read the corpus and its index."""
    root = tmp_path_factory.mktemp("seed-index")
    return Settings(corpus_dir=SEEDS, index_dir=root / "vectorstore", cache_dir=root / "cache")


@pytest.fixture(scope="session")
def seed_searcher(seed_settings):
    """One hash-embedder index of the seeds for the whole run (built once: read-only tests share it)."""
    from rag.search.retrieve import open_searcher

    return open_searcher(seed_settings, embedder=HashEmbedder(), progress=False)

