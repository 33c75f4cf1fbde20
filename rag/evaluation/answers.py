"""Answer evaluation: accuracy, refusals, citation precision/recall, language, latency — per type."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from rag.evaluation.retrieval import EvalItem, aggregate, write_report
from rag.evaluation.splits import listed, side_by_side, split_metrics
from rag.evaluation.stats import p50_p95
from rag.script import search_form
from rag.textnorm import detect_language, match_key

ANSWER_METRICS = ("answer_accuracy", "refusal_accuracy", "false_refusal", "citation_precision",
                  "citation_recall", "in_language")


def is_correct(item: EvalItem, text: str) -> bool:
    """Every must_contain group has at least one of its strings in the answer (case-insensitive;
    an answer in Traditional is compared in its Simplified form, as the gold strings are written)."""
    haystack = match_key(search_form(text)).lower()
    return all(any(match_key(search_form(s)).lower() in haystack for s in group) for group in item.must_contain)


def citation_correct(item: EvalItem, citation, passages) -> bool:
    """The cited passage holds gold evidence or belongs to a gold article (or section of one, or a
    reprint of one: `EvalItem.gold_hits`)."""
    passage = next((p for p in passages if p.chunk_id == citation.chunk_id), None)
    # The passage knows its sub-heading and reprint group; a citation alone only its headline and label.
    if any(item.gold_hits(x) for x in (citation, passage) if x is not None):
        return True
    text = match_key(passage.text) if passage is not None else ""
    return any(match_key(e) in text for e in item.evidence_list)


def score_answer(item: EvalItem, answer) -> dict:
    """Per-item answer scores."""
    # A refusal's language is its sentence's; the nearest headlines after it are quoted titles.
    spoken = answer.text.splitlines()[0] if answer.abstained and answer.text else answer.text
    row = {"id": item.id, "type": item.type, "lang": item.lang, "split": item.split, "question": item.question,
           "answer": answer.text, "abstained": answer.abstained, "reason": answer.reason,
           "raw_answer": answer.raw_text, "ttft_s": answer.timings.get("ttft_s"),
           "total_s": answer.timings.get("total_s"), "in_language": detect_language(spoken) == item.lang,
           # The citations as a reader sees them: "[n] headline › sub-heading — outlet · date · page".
           "sources": [f"[{c.n}] {c.label or c.article}" + (f" — {c.provenance}" if c.provenance else "")
                       for c in answer.citations]}
    if item.answerable:
        good = [citation_correct(item, c, answer.passages) for c in answer.citations]
        row.update(correct=(not answer.abstained) and is_correct(item, answer.text),
                   false_refusal=answer.abstained, citations=len(good), good_citations=sum(good),
                   cited_right=any(good))
    else:
        row.update(refused=answer.abstained)
    return row


def aggregate_answers(rows: list[dict]) -> dict:
    """Metrics overall, per type and per language."""
    def metrics(group: list[dict]) -> dict:
        answerable = [r for r in group if "correct" in r]
        unanswerable = [r for r in group if "refused" in r]
        answered = [r for r in answerable if not r["abstained"]]
        n_cites = sum(r["citations"] for r in answered)
        out = {
            "n": len(group),
            "answer_accuracy": _mean([r["correct"] for r in answerable]),
            "refusal_accuracy": _mean([r["refused"] for r in unanswerable]),
            "false_refusal": _mean([r["false_refusal"] for r in answerable]),
            "citation_precision": round(sum(r["good_citations"] for r in answered) / n_cites, 4) if n_cites else None,
            "citation_recall": _mean([r["cited_right"] for r in answerable]),
            "in_language": _mean([r["in_language"] for r in group]),
        }
        for key in ("ttft_s", "total_s"):
            spread = p50_p95((r[key] for r in group if r.get(key) is not None), digits=3)
            out[f"{key}_p50"], out[f"{key}_p95"] = spread["p50"], spread["p95"]
        return out

    return aggregate(rows, metrics)


def _mean(values: list) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def run_answer_eval(items: list[EvalItem], ask, progress: bool = True) -> dict:
    """Ask every item's question through `ask(question) -> Answer` and score the answers."""
    return compare_answers(items, {"": ask}, progress)[""]


def compare_answers(items: list[EvalItem], systems: dict, progress: bool = True) -> dict[str, dict]:
    """Ask every item of every system, {name: ask}, and score each system's answers.

    The systems take turns item by item, the first one alternating, so that a change in machine
    load hits all of them alike. Returns a report per system.
    """
    from tqdm import tqdm

    names = list(systems)
    rows: dict[str, list] = {name: [] for name in names}
    seconds = dict.fromkeys(names, 0.0)
    for i, item in enumerate(tqdm(items, desc="answer eval", unit="q", disable=not progress)):
        for name in names if i % 2 == 0 else names[::-1]:
            started = time.perf_counter()
            rows[name].append(score_answer(item, systems[name](item.question)))
            seconds[name] += time.perf_counter() - started
    counts = {"items": len(items), "answerable": sum(1 for i in items if i.answerable),
              "unanswerable": sum(1 for i in items if not i.answerable)}
    return {name: {"kind": "answers", **counts, "metrics": aggregate_answers(rows[name]),
                   "splits": split_metrics(rows[name], aggregate_answers),
                   "seconds": round(seconds[name], 1), "rows": rows[name]} for name in names}


def render_answer_markdown(report: dict, name: str, previous: dict | None) -> str:
    """Tables of the metrics (with the change since the previous report) and the failures."""
    cols = ANSWER_METRICS + ("ttft_s_p50", "ttft_s_p95", "total_s_p50", "total_s_p95")
    lines = [f"# Answer evaluation: {name}", "",
             f"{report['answerable']} answerable, {report['unanswerable']} unanswerable items; "
             f"{report.get('written_at', '')}; {report.get('machine', '')}; settings: {report.get('settings', '')}",
             "", f"![metrics]({name}.png)", "",
             "| group | n | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for group, values in report["metrics"].items():
        cells = []
        for c in cols:
            v = values.get(c)
            old = (previous or {}).get("metrics", {}).get(group, {}).get(c)
            cell = "–" if v is None else f"{v:.3f}"
            if v is not None and old is not None and abs(v - old) > 1e-9:
                cell += f" ({v - old:+.3f})"
            cells.append(cell)
        lines.append(f"| {group} | {values['n']} | " + " | ".join(cells) + " |")
    if previous:
        lines += ["", f"(±) change since the previous report of {previous.get('written_at', '?')}."]
    lines += side_by_side(report, ANSWER_METRICS + ("ttft_s_p50",))
    wrong = [r for r in report["rows"] if r.get("correct") is False or r.get("refused") is False]
    lines += ["", f"## Items answered wrongly or not refused ({len(wrong)})", ""]
    wrong, note = listed(wrong)
    lines += note
    for r in wrong:
        half = f", {r['split']}" if r.get("split") else ""
        lines.append(f"- {r['id']} ({r['type']}, {r['lang']}{half}): {r['question']} → {r['answer'][:160]!r}")
    return "\n".join(lines) + "\n"


def write_answer_report(report: dict, out_dir: Path, name: str) -> list[Path]:
    """JSON + Markdown + a PNG chart of the metrics; compares with the last report."""
    json_path = out_dir / f"{name}.json"
    previous = None
    if json_path.exists():
        try:
            previous = json.loads(json_path.read_text(encoding="utf-8"))
        except ValueError:
            previous = None
    if previous:
        report = {**report, "previous": {"written_at": previous.get("written_at"),
                                         "metrics": previous.get("metrics")}}
    json_path, md_path = write_report(report, out_dir, name,
                                      lambda written, n: render_answer_markdown(written, n, previous))
    written = json.loads(json_path.read_text(encoding="utf-8"))
    paths = [json_path, md_path]
    return paths + [_chart(written, out_dir / f"{name}.png")]


def _chart(report: dict, path: Path) -> Path:
    """The answer metrics per question type as a bar chart (matplotlib is a core dependency)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [g for g in report["metrics"] if g == "overall" or g.startswith("type:")]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(ANSWER_METRICS)
    for i, metric in enumerate(ANSWER_METRICS):
        values = [report["metrics"][g].get(metric) or 0 for g in groups]
        ax.bar([x + i * width for x in range(len(groups))], values, width, label=metric)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(groups))], groups, rotation=20)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, ncol=3)
    ax.set_title("rag answer evaluation")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
