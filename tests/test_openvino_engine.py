"""The OpenVINO embedding engine: choosing it, falling back to torch, telemetry kept off, and (slow)
the real bundled model's vectors against torch's."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rag.config import Settings
from rag.errors import ModelUnavailable
from rag.models import embedder as embedder_module
from rag.models.openvino_engine import EngineUnavailable, _supported, check_engine, encoder_for


def test_the_engine_setting_is_checked_and_names_the_choices():
    assert check_engine(" OpenVINO ") == "openvino"
    assert check_engine("") == "auto"
    with pytest.raises(ModelUnavailable, match="RAG_EMBED_ENGINE='onnx' is not one of auto, openvino, torch"):
        check_engine("onnx")


@pytest.mark.slow  # loads sentence-transformers models (4 s); the fast tier stays under its budget
def test_a_model_that_does_not_start_with_a_transformer_stays_on_torch():
    class Pooling:
        include_prompt = True

    with pytest.raises(EngineUnavailable, match="first module is Pooling, not a plain Transformer"):
        _supported([Pooling()])
    with pytest.raises(EngineUnavailable, match="first module is missing"):
        _supported([])


class _Model:
    prompts = {"query": "query: "}


def _spec():
    return embedder_module.EmbedderSpec("some/model", "/nowhere", "sha256:x", "local")


def test_auto_falls_back_to_torch_and_says_why(monkeypatch, capsys, tmp_path):
    def unavailable(model, checksum, cache_dir):
        raise EngineUnavailable("OpenVINO is not installed (`pip install openvino`)")

    monkeypatch.setattr("rag.models.openvino_engine.load_encoder", unavailable)
    assert encoder_for(_Model(), _spec(), "auto", tmp_path) is None
    assert "embedding 'some/model' through torch, not OpenVINO: OpenVINO is not installed" in capsys.readouterr().err
    assert encoder_for(_Model(), _spec(), "torch", tmp_path) is None


def test_asking_for_openvino_when_it_cannot_run_is_an_error_that_says_what_to_set(monkeypatch, tmp_path):
    def unavailable(model, checksum, cache_dir):
        raise EngineUnavailable("its pooling leaves the prompt out")

    monkeypatch.setattr("rag.models.openvino_engine.load_encoder", unavailable)
    with pytest.raises(EngineUnavailable, match=r"cannot run 'some/model': its pooling leaves the prompt out; "
                                                r"set RAG_EMBED_ENGINE=torch"):
        encoder_for(_Model(), _spec(), "openvino", tmp_path)


def test_the_engine_is_part_of_what_a_searcher_is_loaded_for():
    assert Settings(embed_engine="torch").index_key() != Settings().index_key()


@pytest.mark.slow  # a fresh interpreter importing openvino
def test_importing_openvino_through_the_engine_sends_no_telemetry(tmp_path):
    """openvino's import sends a usage event unless declined; declined, it writes no client id
    into the home folder either. Run in a fresh interpreter: the choice is made at import."""
    pytest.importorskip("openvino")
    script = textwrap.dedent("""
        import os
        from rag.models.openvino_engine import _openvino
        _openvino()
        import openvino_telemetry
        print("consent", openvino_telemetry.Telemetry().consent, "CI" in os.environ)
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")}
    env["HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "consent False False" in done.stdout  # declined, and CI restored to unset afterwards
    assert not (tmp_path / "intel").exists()


@pytest.mark.slow
def test_the_bundled_model_through_openvino_matches_torch(tmp_path):
    pytest.importorskip("openvino")
    texts = ["苍南县委组织部副部长陈庆介绍", "The county repaired 3 bridges in 2023.", "矾山镇" * 200, ""]
    settings = Settings(cache_dir=Settings().cache_dir)
    fast = embedder_module.load_embedder(settings)
    slow = embedder_module.load_embedder(Settings(cache_dir=settings.cache_dir, embed_engine="torch"))
    assert fast.engine.startswith("openvino-") and slow.engine == "torch"
    for embed in ("embed_passages", "embed_queries"):
        a, b = getattr(fast, embed)(texts), getattr(slow, embed)(texts)
        assert a.shape == b.shape == (4, 384) and a.dtype == np.float32
        assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-4)
        # measured ≥ 0.99998 on 1,500 news sentences; a text cut at 512 tokens sums more bf16 rounding (0.99989)
        assert (a * b).sum(1).min() > 0.9995
    # The query prefix is applied: a query's vector is not its passage vector.
    assert (fast.embed_queries(texts[:1]) * fast.embed_passages(texts[:1])).sum() < 0.999
