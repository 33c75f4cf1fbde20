"""Bench results as written to eval/bench/: JSON and the same as Markdown (rag.cli, rag.evaluation.bench)."""

from __future__ import annotations

import json

from rag.evaluation.commands import _write_bench


def test_a_bench_result_is_written_as_json_and_markdown(tmp_path, capsys):
    result = {"retrieve_ms": {"p50": 13.2, "p95": 15.8}, "sizes": [{"paragraphs": 10000, "chunks": 6356}],
              "rss_samples": [[0.0, 2088.3], [2.0, 2090.1]], "error_examples": [], "note": "a|b",
              "method": "whole search path"}
    assert _write_bench(result, tmp_path, "retrieval.json") == 0
    written = json.loads((tmp_path / "retrieval.json").read_text(encoding="utf-8"))
    assert written["machine"] and written["written_at"] and written["retrieve_ms"] == result["retrieve_ms"]
    markdown = (tmp_path / "retrieval.md").read_text(encoding="utf-8").splitlines()
    assert markdown[0] == "# retrieval" and written["machine"] in markdown[2] and "whole search path" in markdown
    assert {"| retrieve_ms.p95 | 15.8 |", "| sizes[0].chunks | 6356 |", "| rss_samples | 2 values (in the JSON file) |",
            "| error_examples | none |", "| note | a\\|b |"} <= set(markdown)
    assert '"p95": 15.8' in capsys.readouterr().out


def test_a_bench_can_bring_its_own_markdown(tmp_path):
    _write_bench({"overall": {}}, tmp_path, "stock-comparison-x.json", stamp=False, markdown="# ours\n")
    assert (tmp_path / "stock-comparison-x.md").read_text(encoding="utf-8") == "# ours\n"
