"""The `rag` command on bad input: one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import shutil

import pytest

import rag.models.embedder
from rag.cli import main
from rag.search.index import CHUNKS_FILE, CURRENT, FAISS_FILE, MANIFEST

from conftest import HashEmbedder


@pytest.fixture
def cli(settings, monkeypatch, capsys):
    embedder = HashEmbedder()
    monkeypatch.setattr(rag.models.embedder, "load_embedder", lambda _settings: embedder)

    def run(*args):
        code = main(["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), *args])
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err

    return run


def test_index_prints_a_summary(cli):
    code, out, _ = cli("index", "--quiet")
    assert code == 0 and "5 pages" in out and "chunks" in out


def test_search_builds_a_missing_index_and_shows_sources(cli):
    code, out, err = cli("search", "清泉村去年电商交易额是多少？", "-k", "3")
    assert code == 0 and "no index" in err and "Rebuilding" in err
    assert out.count("[") >= 3 and ".txt" in out


@pytest.mark.parametrize("question, message", [("", "empty"), ("   ", "empty"), ("问" * 20_000, "20,000")])
def test_bad_questions(cli, question, message):
    code, out, err = cli("search", question)
    assert code == 2 and message in err and err.startswith("error:") and len(err.splitlines()) == 1


def test_k_out_of_range(cli):
    code, _, err = cli("search", "清泉村", "-k", "500")
    assert code == 2 and "k must be" in err


def test_non_utf8_page_is_skipped_with_a_warning(cli, settings):
    (settings.corpus_dir / "broken.txt").write_bytes(b"\xff\xfe\xfa\x81\x00" * 40)
    code, out, err = cli("index", "--quiet")
    assert code == 0 and "skipped broken.txt" in err and "iconv" in err


def test_empty_corpus_folder(cli, settings):
    shutil.rmtree(settings.corpus_dir)
    settings.corpus_dir.mkdir()
    code, _, err = cli("index", "--quiet")
    assert code == 2 and "no pages" in err and "rag index" in err


@pytest.mark.parametrize("damage", ["delete-folder", "corrupt-faiss", "corrupt-manifest",
                                    pytest.param("truncate-chunks", marks=pytest.mark.slow)])
def test_damaged_vectorstore_is_rebuilt_on_search(cli, settings, damage):
    assert cli("index", "--quiet")[0] == 0
    current = settings.index_dir / CURRENT
    if damage == "delete-folder":
        shutil.rmtree(settings.index_dir)
    elif damage == "corrupt-faiss":
        (current / FAISS_FILE).write_bytes(b"garbage")
    elif damage == "corrupt-manifest":
        (current / MANIFEST).write_text("{", encoding="utf-8")
    else:  # the chunk store cut off mid-line, as by a full disk or a crash outside rag
        chunks = current / CHUNKS_FILE
        chunks.write_bytes(chunks.read_bytes()[: chunks.stat().st_size // 2])
    code, out, err = cli("search", "安吉县流动药车携带了多少种常用药品？")
    assert code == 0 and "Rebuilding" in err and "送药进村" in out


def test_eval_of_a_missing_set(cli, tmp_path):
    code, _, err = cli("eval", str(tmp_path / "nope.jsonl"), "--retrieval-only")
    assert code == 2 and "cannot read" in err
