"""Time to first token of this checkout against another, the same questions asked of both in turn.

    .venv/bin/python eval/ttft_ab.py /tmp/wt-04b83f7 --n 24 --out eval/reports/ttft-ab-04b83f7.json

Why: two `rag eval` runs one after the other are not comparable on a shared 2-core host. On
2026-12-03 the same code's TTFT p50 drifted from 9–10 s to 5 s within half an hour, with nothing
else running. Here each checkout runs in its own process, with its models loaded once. Each
question goes to both, and the order swaps from one question to the next. The report gives each
side's p50 and the paired difference, so the host's drift cancels. The other checkout needs its own
`vectorstore/` (`python -m rag index` there) and runs on this checkout's virtual environment.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
_TAG = "@@"  # marks the worker's replies among whatever else the libraries print


def worker() -> None:
    from rag.config import Settings
    try:
        from rag.answer.pipeline import Pipeline
    except ImportError:  # older checkouts, before rag/answer/
        from rag.pipeline import Pipeline
    pipeline = Pipeline(Settings.from_env())
    getattr(pipeline, "load", lambda: None)()
    getattr(pipeline, "warm", lambda: None)()
    print(_TAG + "ready", flush=True)
    for line in sys.stdin:
        answer = pipeline.ask(line.strip())
        print(_TAG + json.dumps({"ttft_s": answer.timings.get("ttft_s")}), flush=True)


class _Side:
    def __init__(self, checkout: Path):
        env = {**os.environ, "PYTHONPATH": str(checkout)}
        self.process = subprocess.Popen([sys.executable, __file__, "--worker"], cwd=checkout, env=env, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self._reply() == "ready"

    def _reply(self) -> str:
        while line := self.process.stdout.readline():
            if line.startswith(_TAG):
                return line[len(_TAG):].strip()
        raise SystemExit(f"the worker in {self.process.args} stopped; run it by hand to see why")

    def ask(self, question: str) -> float | None:
        self.process.stdin.write(question.replace("\n", " ") + "\n")
        self.process.stdin.flush()
        return json.loads(self._reply())["ttft_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("other", nargs="?", help="the other checkout (a git worktree)")
    parser.add_argument("--set", default=str(HERE / "eval/sets/public.jsonl"))
    parser.add_argument("--n", type=int, default=24, help="questions drawn from the set")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--out", help="JSON report")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker()
    items = [json.loads(line) for line in open(args.set, encoding="utf-8") if line.strip()]
    questions = [item["question"] for item in random.Random(args.seed).sample(items, min(args.n, len(items)))]
    sides = {"this": _Side(HERE), "other": _Side(Path(args.other).resolve())}
    times: dict[str, list] = {"this": [], "other": []}
    for n, question in enumerate(questions):
        for name in (("this", "other") if n % 2 == 0 else ("other", "this")):
            times[name].append(sides[name].ask(question))
        print(f"{n + 1}/{len(questions)} this {times['this'][-1]} other {times['other'][-1]}", flush=True)
    pairs = [(a, b) for a, b in zip(times["this"], times["other"]) if a is not None and b is not None]
    report = {"other": str(args.other), "set": args.set, "questions": len(questions), "timed_pairs": len(pairs),
              "this_ttft_s_p50": round(statistics.median(a for a, _ in pairs), 3),
              "other_ttft_s_p50": round(statistics.median(b for _, b in pairs), 3),
              "paired_diff_s_median": round(statistics.median(a - b for a, b in pairs), 3),
              "paired_diff_s_mean": round(statistics.mean(a - b for a, b in pairs), 3), "times": times}
    print(json.dumps({k: v for k, v in report.items() if k != "times"}, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
