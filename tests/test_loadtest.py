"""Simulated users against the running app (rag.evaluation.loadtest): errors, mixed conversations, memory."""

from __future__ import annotations

import json

import pytest

from rag.cli import main
from rag.errors import RagError
from rag.evaluation.loadtest import resident_mb, run_load, served_app
from rag.answer.pipeline import Pipeline
from rag.app.ui import build_app, launch

from fakes import scripted
from helpers import ROOT, free_port

pytestmark = pytest.mark.slow  # served apps and simulated users (seconds each)

QUESTIONS = ["清泉村去年电商交易额是多少？", "清泉村有多少人做电商？", "What was Qingquan's e-commerce turnover?"]


def test_users_keep_their_own_conversations(seed_settings, seed_searcher):
    chat = scripted(*["清泉村去年交易额超两亿元[1]。"] * 400)
    demo = build_app(seed_settings, pipeline_for=lambda s: Pipeline(s, seed_searcher, chat))
    url = launch(demo, port=free_port(), prevent_thread_lock=True)
    try:
        result = run_load(url, QUESTIONS, "qwen-1.5b", 3, users=3, seconds=1, turns=2, progress=False)
    finally:
        demo.close()
    assert result["errors"] == 0 and result["mixed_conversations"] == 0, result
    assert result["requests"] >= 3 and result["latency_s"]["p95"] >= result["latency_s"]["p50"] > 0
    assert result["rss_mb"]["start"] > 0 and result["rss_mb"]["after_first_answers"] > 0
    assert len(result["rss_samples"]) >= 2
    assert 0 < resident_mb() < 100_000


def test_a_broken_app_is_counted_not_hidden(seed_settings, seed_searcher):
    def broken(_settings):
        raise RuntimeError("boom")

    demo = build_app(seed_settings, pipeline_for=broken)
    url = launch(demo, port=free_port(), prevent_thread_lock=True)
    try:
        result = run_load(url, QUESTIONS, "qwen-1.5b", 3, users=2, seconds=0.2, progress=False)
    finally:
        demo.close()
    assert result["errors"] == result["requests"] >= 2 and "is an error" in result["error_examples"][0]


def test_an_app_that_cannot_start_is_reported(tmp_path, capfd):
    with pytest.raises(RagError, match=r"exited with [1-9]\d* before the chat opened; its messages are above"):
        with served_app(["--corpus", str(tmp_path / "no-pages"), "--index", str(tmp_path / "index")], free_port()):
            pass
    assert str(tmp_path / "no-pages") in capfd.readouterr().err  # the app's own message says why


# The bundled models, served by `rag chat` in a process of its own; the full 5 minutes: `rag bench --load`.
def test_eight_users_with_the_real_models(tmp_path):
    assert main(["bench", "--load", "--users", "8", "--seconds", "20", "--out", str(tmp_path),
                 "--set", str(ROOT / "eval" / "sets" / "public.jsonl")]) == 0
    result = json.loads(next(tmp_path.glob("load-*.json")).read_text(encoding="utf-8"))
    print({k: v for k, v in result.items() if k != "rss_samples"})
    assert result["errors"] == 0 and result["mixed_conversations"] == 0, result["error_examples"]
    assert result["requests"] >= 8  # every user got at least one answer
    memory = result["rss_mb"]  # the app's own, not this process's
    assert 1000 < memory["start"] and memory["max"] < min(3000, memory["start"] + 700)
    assert memory["end"] < memory["after_first_answers"] + 300  # made once, then reused
