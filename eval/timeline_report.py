"""Timelines judged and timed (issue 19): runs `rag.answer.timeline.build_timeline` for the topics of
eval/timeline/topics.jsonl over an index, and writes

- `run`: eval/reports/timeline-judgement.jsonl — a seeded random sample of each topic's entries
  for judging by hand (`relevant`, `reason` are filled in by the judge and kept when the run is
  repeated), and eval/reports/timeline-judgement.runs.json — per topic, the checks made by code
  over *all* its entries: the date each entry's article carries in its raw corpus line (the
  stamp before "，正文："), adjacent entries in the order of those stamps, reprint groups seen twice;
- `report`: eval/reports/timeline-judgement.md from the two;
- `bench`: eval/bench/timeline.{json,md} — latency per topic (extractive; `--summarise`: with the
  LLM's period lines, on a few topics).

    RAG_CORPUS_DIR=/work/shared/corpora/news-cn RAG_INDEX_DIR=/tmp/newscn-index \\
        nice -n 19 .venv/bin/python eval/timeline_report.py run|report|bench

The index is opened without ever rebuilding it (`auto_build=False`); `--stale-ok` reads one
built by an older chunker as it is (the 10k development index), which the report then says.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answer.timeline import build_timeline  # noqa: E402
from rag.config import Settings  # noqa: E402

TOPICS = ROOT / "eval" / "timeline" / "topics.jsonl"
JUDGED = ROOT / "eval" / "reports" / "timeline-judgement.jsonl"
RUNS = ROOT / "eval" / "reports" / "timeline-judgement.runs.json"
REPORT = ROOT / "eval" / "reports" / "timeline-judgement.md"
BENCH = ROOT / "eval" / "bench" / "timeline"
SAMPLE = 15  # entries judged by hand per topic
SEED = 19
_STAMP = re.compile(r"^\s*\[?\s*(\d{2,4})\s*[-/年]\s*(\d{1,2})\s*[-/月]\s*(\d{1,2})")


def open_index(settings: Settings, stale_ok: bool):
    """The searcher over the settings' index, never rebuilding it; and whether it was read stale."""
    from rag.errors import IndexMismatch
    from rag.search.retrieve import HybridSearcher, open_searcher

    try:
        return open_searcher(settings, auto_build=False, progress=False), False
    except IndexMismatch:
        if not stale_ok:
            raise
    from rag.models.embedder import load_embedder
    from rag.search.index import load_index

    return HybridSearcher(load_index(settings), load_embedder(settings), settings), True


def topics() -> list[dict]:
    return [json.loads(line) for line in TOPICS.read_text(encoding="utf-8").splitlines() if line.strip()]


class RawLines:
    """The corpus files' lines, to read an entry's article as the archive stores it."""

    def __init__(self, corpus: Path):
        self.corpus = corpus
        self._files: dict[str, list[str]] = {}

    def line(self, source: str, record: int | None) -> str:
        if record is None:
            return ""
        if source not in self._files:
            self._files[source] = (self.corpus / source).read_text(encoding="utf-8").splitlines()
        lines = self._files[source]
        return lines[record - 1] if 0 < record <= len(lines) else ""


def stamp_date(line: str) -> str | None:
    """The full date of a raw line's stamp ("2023-07-28"), None when it has no year."""
    match = _STAMP.match(line.split("，正文：")[0]) if "，正文：" in line else None
    if not match:
        return None
    year, month, day = (int(g) for g in match.groups())
    year += 2000 if year < 100 else 0
    return f"{year:04d}-{month:02d}-{day:02d}"


def check_entries(timeline, index, raw: RawLines) -> tuple[dict, list[dict]]:
    """Checks by code over all entries, and one row per entry (what the judge reads)."""
    rows = []
    for e in timeline.entries:
        chunk = index.chunks[index.position(e.citation.chunk_id)]
        line = raw.line(chunk.source, chunk.record)
        rows.append({"n": e.citation.n, "date": e.date, "precision": e.precision, "period": e.period,
                     "stamp_date": stamp_date(line), "stamp": line.split("，正文：")[0][:40],
                     "text": e.text, "headline": e.citation.label, "provenance": e.citation.provenance,
                     "source": chunk.source, "record": chunk.record, "chunk_id": e.citation.chunk_id,
                     "group": chunk.group, "also_in": list(e.also_in)})
    # A stamp without a year (or none) leaves the date to the file's other stamps and the dateline:
    # the order is then checked on the entry's own date.
    keys = [r["stamp_date"] or r["date"] for r in rows]
    pairs = max(0, len(rows) - 1)
    in_order = sum(1 for a, b in zip(keys, keys[1:]) if a <= b)
    stamped = [r for r in rows if r["stamp_date"]]
    agree = sum(1 for r in stamped if r["date"] == r["stamp_date"]) if stamped else 0
    groups = [r["group"] for r in rows if r["group"]]
    checks = {"entries": len(rows), "pairs": pairs, "pairs_in_order": in_order,
              "stamped": len(stamped), "date_agrees_with_stamp": agree,
              "duplicate_groups": len(groups) - len(set(groups)),
              "out_of_order": [(a["n"], b["n"], ka, kb) for a, b, ka, kb in zip(rows, rows[1:], keys, keys[1:])
                               if ka > kb]}
    return checks, rows


def cmd_run(args, settings: Settings) -> None:
    searcher, stale = open_index(settings, args.stale_ok)
    raw = RawLines(settings.corpus_dir)
    earlier = {}
    if JUDGED.exists():
        for line in JUDGED.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            earlier[(row["topic_id"], row["chunk_id"], row["text"])] = row  # a new sentence is judged anew
    rng = random.Random(SEED)
    runs, judged = [], []
    for item in topics():
        started = time.perf_counter()
        timeline = build_timeline(searcher, item["topic"], item.get("date_from"), item.get("date_to"))
        elapsed = time.perf_counter() - started
        checks, rows = check_entries(timeline, searcher.index, raw)
        runs.append({"id": item["id"], "topic": item["topic"], "about": item["about"], "covered": timeline.covered,
                     "granularity": timeline.granularity, "seconds": round(elapsed, 3), "note": timeline.note,
                     "searches": timeline.timings.get("searches"), "undated": timeline.undated,
                     "periods": len(timeline.counts), "gaps": timeline.periods_without_coverage,
                     "matching_articles": sum(c.n_articles for c in timeline.counts), **checks})
        for row in sorted(rng.sample(rows, min(args.sample, len(rows))), key=lambda r: r["n"]):
            kept = earlier.get((item["id"], row["chunk_id"], row["text"]), {})
            judged.append({"topic_id": item["id"], "topic": item["topic"], **row,
                           "relevant": kept.get("relevant"), "reason": kept.get("reason", "")})
        print(f"{item['id']} {item['topic']}: {len(rows)} entries, {elapsed:.2f} s, {checks['pairs_in_order']}/"
              f"{checks['pairs']} in order, {checks['duplicate_groups']} repeated groups", file=sys.stderr)
    meta = {"index": str(settings.index_dir), "corpus": str(settings.corpus_dir), "stale_index_read": stale,
            "status": _status(searcher), "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "sample_per_topic": args.sample, "seed": SEED}
    RUNS.write_text(json.dumps({"meta": meta, "topics": runs}, ensure_ascii=False, indent=1), encoding="utf-8")
    JUDGED.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in judged), encoding="utf-8")
    print(f"wrote {RUNS} and {JUDGED} ({len(judged)} entries to judge)", file=sys.stderr)


def _status(searcher) -> dict:
    s = searcher.index.status()
    return {"articles": s.articles, "chunks": s.chunks, "first_date": s.first_date, "last_date": s.last_date,
            "reprint_groups": s.reprint_groups, "embedder": s.embedder}


def cmd_report(args, settings: Settings) -> None:
    data = json.loads(RUNS.read_text(encoding="utf-8"))
    rows = [json.loads(line) for line in JUDGED.read_text(encoding="utf-8").splitlines() if line.strip()]
    meta, runs = data["meta"], data["topics"]
    unjudged = [r for r in rows if r["relevant"] is None]
    by_topic: dict[str, list[dict]] = {}
    for r in rows:
        by_topic.setdefault(r["topic_id"], []).append(r)
    pairs = sum(t["pairs"] for t in runs)
    in_order = sum(t["pairs_in_order"] for t in runs)
    stamped = sum(t["stamped"] for t in runs)
    agree = sum(t["date_agrees_with_stamp"] for t in runs)
    judged = [r for r in rows if r["relevant"] is not None]
    relevant = sum(1 for r in judged if r["relevant"])
    dup = sum(t["duplicate_groups"] for t in runs)
    st = meta["status"]
    out = ["# Timeline judgement (issue 19)", "",
           f"Index: `{meta['index']}` over `{meta['corpus']}` — {st['articles']:,} articles, {st['chunks']:,} "
           f"chunks, {st['first_date']} – {st['last_date']}, {st['reprint_groups']:,} reprint groups, embedder "
           f"{st['embedder']}" + (" (**read as it is although an older chunker built it**)"
                                 if meta["stale_index_read"] else "") + f". Run {meta['when']}.", "",
           f"Topics: {len(runs)} ({TOPICS.relative_to(ROOT)}), each an event reported over weeks; every timeline "
           f"extractive, default settings (`max_entries` 100, granularity auto).", "",
           "## Figures", "",
           "| measure | value | target |", "|---|---|---|",
           f"| adjacent entries in date order, by the date in each article's raw stamp (all entries) | "
           f"{in_order}/{pairs} = {in_order / pairs:.3f} | ≥ 0.98 |" if pairs else "| order | no pairs | |",
           f"| entry date = the article's stamp date (entries whose stamp has a year) | {agree}/{stamped} = "
           f"{agree / stamped:.3f} | |" if stamped else "| stamp dates | none | |",
           f"| entries relevant to the topic (hand-judged, seeded random sample of {meta['sample_per_topic']} per "
           f"topic) | {relevant}/{len(judged)} = {relevant / len(judged):.3f} | ≥ 0.85 |" if judged else
           "| relevance | not judged yet | ≥ 0.85 |",
           f"| two entries of one reprint group (all entries) | {dup} | 0 |", ""]
    if unjudged:
        out += [f"**{len(unjudged)} sampled entries are not judged yet.**", ""]
    out += ["## Per topic", "",
            "s: seconds the timeline took in this run (the first one also loads the archive's calendar and warms "
            "the embedder; eval/bench/timeline.md has the latency).", "",
            "| id | topic | entries | matching articles | periods (gaps) | in order | relevant | s |",
            "|---|---|---|---|---|---|---|---|"]
    for t in runs:
        mine = [r for r in by_topic.get(t["id"], []) if r["relevant"] is not None]
        rel = f"{sum(r['relevant'] for r in mine)}/{len(mine)}" if mine else "–"
        order = f"{t['pairs_in_order']}/{t['pairs']}" if t["pairs"] else "–"
        covered = "" if t["covered"] else " (not covered)"
        out.append(f"| {t['id']} | {t['topic']}{covered} | {t['entries']} | {t['matching_articles']} | "
                   f"{t['periods']} {t['granularity']} ({len(t['gaps'])}) | {order} | {rel} | {t['seconds']:.2f} |")
    wrong = [r for r in judged if not r["relevant"]]
    out += ["", "## Entries judged not relevant", ""]
    out += [f"- {r['topic_id']} {r['topic']} [{r['n']}] {r['date']} 《{_line(r['headline'][:40])}》: “{_line(r['text'][:80])}” — "
            f"{r['reason']}" for r in wrong] or ["(none)"]
    disorder = [(t["id"], p) for t in runs for p in t["out_of_order"]]
    out += ["", "## Entries out of order by their raw stamp", ""]
    out += [f"- {tid}: entry {a} ({ka}) before entry {b} ({kb})" for tid, (a, b, ka, kb) in disorder] or ["(none)"]
    out += ["", "## How it was judged", "",
            "- Order and dates by code over every entry: each entry's article is read back from its corpus line "
            "(`record`), and the date in the stamp before \"，正文：\" is compared with the entry's date and with "
            "the next entry's. A stamp without a year is left to the entry's own date.",
            "- Relevance by hand, per sampled entry: does the sentence (read with its headline) report on the "
            "topic as described in topics.jsonl (`about`)? A passing mention in a story about something else "
            "counts as not relevant. The reason is recorded per entry in timeline-judgement.jsonl.",
            "- Reprints by code: no reprint group (rag.ingest.reprints) may give two entries.", ""]
    if args.extra and Path(args.extra).exists():
        out += [Path(args.extra).read_text(encoding="utf-8").rstrip(), ""]
    REPORT.write_text("\n".join(out), encoding="utf-8")
    print(f"wrote {REPORT}", file=sys.stderr)


def _line(text: str) -> str:
    """Text on one Markdown line."""
    return " ".join(text.split())


def cmd_bench(args, settings: Settings) -> None:
    searcher, stale = open_index(settings, args.stale_ok)
    items = topics()
    build_timeline(searcher, items[0]["topic"])  # warm: the calendar, the embedder's first call
    rows = []
    for item in items:
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            timeline = build_timeline(searcher, item["topic"])
            times.append(time.perf_counter() - started)
        rows.append({"id": item["id"], "topic": item["topic"], "seconds": round(statistics.median(times), 3),
                     "runs": [round(t, 3) for t in times], "entries": len(timeline.entries),
                     "searches": timeline.timings.get("searches")})
    seconds = sorted(r["seconds"] for r in rows)
    result = {"index": str(settings.index_dir), "stale_index_read": stale, "status": _status(searcher),
              "when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
              "extractive": {"p50_s": round(_quantile(seconds, 0.5), 3), "p95_s": round(_quantile(seconds, 0.95), 3),
                             "max_s": seconds[-1], "topics": rows}}
    if args.summarise:
        from rag.models.chat import shared_chat_model

        chat = shared_chat_model(settings)
        summarised = []
        for item in items[: args.summarise]:
            started = time.perf_counter()
            timeline = build_timeline(searcher, item["topic"], granularity="week", summarise=True, chat=chat,
                                      max_entries=30)
            kept = sum(1 for s in timeline.summaries if s.text)
            summarised.append({"id": item["id"], "topic": item["topic"], "seconds": round(time.perf_counter() - started, 2),
                               "periods": len(timeline.summaries), "with_a_line": kept,
                               "sentences_dropped": sum(len(s.dropped) for s in timeline.summaries),
                               "lines": {s.period: s.text for s in timeline.summaries}})
        result["summarised"] = {"llm": settings.llm_model, "topics": summarised}
    BENCH.with_suffix(".json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    BENCH.with_suffix(".md").write_text(_bench_md(result), encoding="utf-8")
    print(f"wrote {BENCH}.json/.md: p50 {result['extractive']['p50_s']} s, p95 {result['extractive']['p95_s']} s",
          file=sys.stderr)


def _quantile(values: list[float], q: float) -> float:
    """The q-quantile of sorted values, by linear interpolation."""
    at = (len(values) - 1) * q
    low = int(at)
    return values[low] + (values[min(low + 1, len(values) - 1)] - values[low]) * (at - low)


def _bench_md(result: dict) -> str:
    st, ex = result["status"], result["extractive"]
    out = ["# Timeline latency (issue 19)", "",
           f"Index `{result['index']}`: {st['articles']:,} articles, {st['chunks']:,} chunks"
           + (" (read stale)" if result["stale_index_read"] else "") + f"; {result['machine']}; {result['when']}. "
           f"Each topic of eval/timeline/topics.jsonl timed {len(ex['topics'][0]['runs'])}× after one warm-up "
           "timeline, the median kept; run under `nice -n 19` on a shared 2-core machine.", "",
           f"**Extractive: p50 {ex['p50_s']} s, p95 {ex['p95_s']} s, max {ex['max_s']} s** (target: p95 ≤ 5 s).", "",
           "| id | topic | s | entries | searches |", "|---|---|---|---|---|"]
    out += [f"| {r['id']} | {r['topic']} | {r['seconds']} | {r['entries']} | {r['searches']} |" for r in ex["topics"]]
    if "summarised" in result:
        sm = result["summarised"]
        out += ["", f"## With LLM period lines ({sm['llm']}, weekly, at most 30 entries)", "",
                "| id | topic | s | periods | with a line | sentences dropped |", "|---|---|---|---|---|---|"]
        out += [f"| {r['id']} | {r['topic']} | {r['seconds']} | {r['periods']} | {r['with_a_line']} | "
                f"{r['sentences_dropped']} |" for r in sm["topics"]]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("run", "report", "bench"))
    parser.add_argument("--stale-ok", action="store_true", help="read an index an older chunker built, as it is")
    parser.add_argument("--sample", type=int, default=SAMPLE, help="entries judged per topic")
    parser.add_argument("--repeat", type=int, default=3, help="bench: timings per topic")
    parser.add_argument("--summarise", type=int, default=0, metavar="N", help="bench: also N topics with LLM lines")
    parser.add_argument("--extra", help="report: a Markdown file appended (notes on the thresholds)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    {"run": cmd_run, "report": cmd_report, "bench": cmd_bench}[args.command](args, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
