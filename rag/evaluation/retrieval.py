"""Evaluation sets and retrieval metrics: evidence recall@k, MRR, article hit@5, per type and per half.

A gold article is named by its headline (or sub-heading) in sets over pages, where names are
unique; in sets over an archive (news-cn: lead-sentence headlines, wire stories reprinted under
other names) an item also gives each article's line in its file (`record`), and a passage is in
the gold article when it is that article or a reprint of it (same reprint group): search shows
one copy of a reprinted story, the earliest printing, so a citation to any copy counts.
`resolve_gold` reads those identities from the index the evaluation runs over."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from rag.config import usable_cpus
from rag.errors import RagError
from rag.evaluation.splits import SPLITS, listed, side_by_side, split_metrics
from rag.files import timestamp
from rag.textnorm import match_key

TYPES = ("fact", "number", "entity", "multi", "two-part", "crosslingual", "unanswerable")
FIELDS = ("id", "question", "lang", "type", "answer", "must_contain", "source_file", "article", "evidence")
OPTIONAL = ("record", "split")  # line of each gold article in its file (archives); dev/test half
RECALL_KS = (1, 3, 5, 10)


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    lang: str
    type: str
    answer: str
    must_contain: list
    source_file: str | list | None
    article: str | list | None
    evidence: str | list | None
    record: int | list | None = None
    split: str | None = None
    # (source, article_no, reprint group) of each gold article in the index evaluated (`resolve_gold`).
    gold: tuple = ()

    @property
    def answerable(self) -> bool:
        return self.type != "unanswerable"

    @property
    def evidence_list(self) -> list[str]:
        if self.evidence is None:
            return []
        return [self.evidence] if isinstance(self.evidence, str) else list(self.evidence)

    @property
    def article_list(self) -> list[str]:
        if self.article is None:
            return []
        return [self.article] if isinstance(self.article, str) else list(self.article)

    def gold_hits(self, passage) -> set[int]:
        """Which gold articles (indexes into `article_list`) a passage or chunk lies in.

        By identity (the article itself or a reprint of it) once `resolve_gold` has run, else
        by name (`article_matches`).
        """
        if self.gold:
            source, number = getattr(passage, "source", None), getattr(passage, "article_no", None)
            group = getattr(passage, "group", None)
            return {i for i, (s, n, g) in enumerate(self.gold)
                    if (s, n) == (source, number) or (group is not None and group == g)}
        return {i for i, name in enumerate(self.article_list) if article_matches(passage, name)}


def load_set(path: Path) -> list[EvalItem]:
    """Read an evaluation set (JSONL, one item per line).

    Raises:
        RagError: unreadable file or a line without the required fields, naming the line.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RagError(f"cannot read evaluation set {path}: {exc}") from exc
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise RagError(f"{path}:{number} is not valid JSON ({exc})") from exc
        missing = [f for f in FIELDS if f not in row]
        if missing:
            raise RagError(f"{path}:{number} lacks the field(s) {', '.join(missing)}")
        if row["type"] not in TYPES:
            raise RagError(f"{path}:{number} has unknown type {row['type']!r}; use one of {', '.join(TYPES)}")
        if row.get("split") not in (None, *SPLITS):
            raise RagError(f"{path}:{number} has split {row['split']!r}; use one of {', '.join(SPLITS)}")
        items.append(EvalItem(**{f: row[f] for f in FIELDS}, **{f: row[f] for f in OPTIONAL if f in row}))
    if not items:
        raise RagError(f"evaluation set {path} is empty")
    return items


def article_matches(passage, gold: str) -> bool:
    """Whether a passage (or a citation) lies in the article an item names.

    Sets name a story by its headline and a section of a story by its sub-heading (小标题), so
    the passage's headline, its sub-heading or its label ("headline › sub-heading") may equal
    the name. The one place this rule lives: retrieval and answer metrics both use it.

    Args:
        passage: anything with `article`, and maybe `subhead` and `label` (Passage, Chunk, Citation).
        gold: an article name from an item's `article` field.
    Returns:
        True when one of the passage's names is the gold name.
    """
    names = (getattr(passage, "article", None), getattr(passage, "subhead", None), getattr(passage, "label", None))
    return gold in names


def resolve_gold(items: list[EvalItem], chunks) -> list[EvalItem]:
    """Items that give their articles' lines (`record`) with those articles' identities in an index.

    Args:
        items: a set's items; those without `record` are returned as they are.
        chunks: the index's chunks (`HybridIndex.chunks`), which carry source, record,
            article number and reprint group.
    Returns:
        The items, each with `gold` = ((source, article_no, group), …) aligned with its articles.
    Raises:
        RagError: an item names an article the index does not hold, with what to index.
    """
    known: dict[tuple, tuple] = {}
    for c in chunks:
        if c.record is not None:
            known.setdefault((c.source, c.record), (c.source, c.article_no, c.group))
    out, missing = [], []
    for item in items:
        if item.record is None or not item.answerable:
            out.append(item)
            continue
        sources = [item.source_file] if isinstance(item.source_file, str) else list(item.source_file)
        records = [item.record] if isinstance(item.record, int) else list(item.record)
        gold = [known.get((s, r)) for s, r in zip(sources, records)]
        missing += [f"{item.id} ({s} line {r})" for (s, r), g in zip(zip(sources, records), gold) if g is None]
        out.append(replace(item, gold=tuple(gold)))
    if missing:
        raise RagError(f"the index does not hold {len(missing)} gold article(s) of this set, e.g. "
                       f"{', '.join(missing[:3])}: evaluate the set over an index of the corpus it was "
                       f"written for (`rag --corpus DIR index`)")
    return out


def evidence_ranks(item: EvalItem, passages) -> list[int | None]:
    """For each evidence span, the 1-based rank of the first passage that contains it (or None)."""
    keys = [match_key(p.text) for p in passages]
    ranks = []
    for span in item.evidence_list:
        needle = match_key(span)
        ranks.append(next((r for r, key in enumerate(keys, start=1) if needle in key), None))
    return ranks


def score_retrieval(item: EvalItem, passages) -> dict:
    """Per-item retrieval scores over a ranked passage list (at least 10 long for recall@10)."""
    ranks = evidence_ranks(item, passages)
    row = {"id": item.id, "type": item.type, "lang": item.lang, "split": item.split}
    for k in RECALL_KS:
        row[f"recall@{k}"] = sum(1 for r in ranks if r is not None and r <= k) / len(ranks)
    first = min((r for r in ranks if r is not None), default=None)
    row["mrr"] = 1.0 / first if first else 0.0
    gold = item.article_list
    hits = set().union(*(item.gold_hits(p) for p in passages[:5]))
    row["article_hit@5"] = len(hits) / len(gold) if gold else 0.0
    row["top"] = [{"chunk_id": p.chunk_id, "article": p.article, "label": getattr(p, "label", p.article),
                   "score": round(p.score, 4), "dense": round(p.dense_score, 4)} for p in passages[:5]]
    return row


METRICS = tuple(f"recall@{k}" for k in RECALL_KS) + ("mrr", "article_hit@5")


def _means(group: list[dict]) -> dict:
    out = {m: round(statistics.fmean(r[m] for r in group), 4) for m in METRICS}
    out["n"] = len(group)
    return out


def aggregate(rows: list[dict], summarize=_means) -> dict:
    """summarize(rows) overall, per type and per language (retrieval means by default)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[f"type:{r['type']}"].append(r)
        groups[f"lang:{r['lang']}"].append(r)
    return {"overall": summarize(rows), **{k: summarize(v) for k, v in sorted(groups.items())}}


def run_retrieval_eval(items: list[EvalItem], search, progress: bool = True) -> dict:
    """Run every answerable item through `search(question, k)` and score the ranking.

    Args:
        items: the evaluation set.
        search: a callable (question, k) -> list of passages.
        progress: show a progress bar.
    Returns:
        A report: metrics overall/per type/per language, per-item rows, unanswerable score stats.
    """
    from tqdm import tqdm

    rows, unanswerable_top = [], []
    answerable_top = []
    started = time.perf_counter()
    for item in tqdm(items, desc="retrieval eval", unit="q", disable=not progress):
        passages = search(item.question, max(RECALL_KS))
        if item.answerable:
            row = score_retrieval(item, passages)
            rows.append(row)
            answerable_top.append(passages[0].dense_score if passages else 0.0)
        else:
            unanswerable_top.append(passages[0].dense_score if passages else 0.0)
    return {
        "kind": "retrieval",
        "items": len(items),
        "answerable": len(rows),
        "unanswerable": len(unanswerable_top),
        "metrics": aggregate(rows),
        "splits": split_metrics(rows, aggregate),
        # Top-1 dense similarity: the raw material for calibrating abstention later.
        "top1_dense": {"answerable": _summary(answerable_top), "unanswerable": _summary(unanswerable_top)},
        "seconds": round(time.perf_counter() - started, 2),
        "rows": rows,
    }


def _summary(values: list[float]) -> dict:
    if not values:
        return {}
    return {"min": round(min(values), 4), "median": round(statistics.median(values), 4),
            "max": round(max(values), 4)}


def write_report(report: dict, out_dir: Path, name: str, render=None) -> tuple[Path, Path]:
    """Write the report as JSON and Markdown (render(report, name), retrieval tables by default)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {**report, "written_at": timestamp(), "machine": describe_machine()}
    json_path = out_dir / f"{name}.json"
    md_path = out_dir / f"{name}.md"
    json_path.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    md_path.write_text((render or render_markdown)(report, name), encoding="utf-8")
    return json_path, md_path


def describe_machine() -> str:
    """CPU model, the CPUs this process may use, memory, architecture and Python version, for reports."""
    cpu, memory = platform.processor() or platform.machine(), ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        kib = int(Path("/proc/meminfo").read_text().split()[1])  # "MemTotal: N kB"
        memory = f", {kib / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {usable_cpus()} cores{memory}, {platform.machine()}, Python {platform.python_version()}"


def render_markdown(report: dict, name: str) -> str:
    """A human-readable table of the metrics, plus the items that missed at 5."""
    lines = [f"# Retrieval evaluation: {name}", "",
             f"{report['answerable']} answerable and {report['unanswerable']} unanswerable items; "
             f"{report.get('written_at', '')}; {report.get('machine', '')}; settings: {report.get('settings', '')}", "",
             "| group | n | " + " | ".join(METRICS) + " |",
             "|---|---|" + "---|" * len(METRICS)]
    for group, values in report["metrics"].items():
        lines.append(f"| {group} | {values['n']} | " + " | ".join(f"{values[m]:.3f}" for m in METRICS) + " |")
    lines += side_by_side(report, METRICS)
    misses = [r for r in report["rows"] if r["recall@5"] < 1.0]
    lines += ["", f"Top-1 dense similarity: answerable {report['top1_dense']['answerable']}, "
              f"unanswerable {report['top1_dense']['unanswerable']}", "",
              f"## Items with evidence missing from the top 5 ({len(misses)})", ""]
    misses, note = listed(misses)
    lines += note
    for r in misses:
        top = r["top"][0].get("label", r["top"][0]["article"]) if r["top"] else "-"
        lines.append(f"- {r['id']} ({r['type']}, {r['lang']}): recall@5 {r['recall@5']:.2f}, "
                     f"recall@10 {r['recall@10']:.2f}; top: {top}")
    return "\n".join(lines) + "\n"
