"""Dev and test halves of every evaluation set: tune on `dev`, report `test`.

Each item of a set carries "split": "dev" or "test". This module is the one place the rule lives:

- Stratified: within one set, each stratum (type × lang) is halved, so that the halves ask the
  same mix of questions; a stratum of odd size differs by one item between them.
- Deterministic: inside a stratum items are taken in the order of a hash of their id (SHA-1),
  each to the half that has fewer of that stratum so far, a tie going by the hash's last bit.
  The same set always splits the same way, whatever the order of its lines.
- Sticky: an item that already has a split keeps it. Items added later fill their strata's
  smaller half, so a dev item never becomes a test item (which would put what was tuned on
  into the reported figures) and the halves stay balanced.

`python -m rag.evaluation.splits SET.jsonl …` writes the field into sets that lack it, adding it
at the end of each line and changing nothing else. The report side: `split_metrics` summarises
per half and `side_by_side` renders the halves next to each other (`rag eval --split`).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

from rag.errors import RagError

SPLITS = ("dev", "test")
CHOICES = SPLITS + ("both",)  # what `rag eval --split` accepts


def _hash(item_id: str) -> int:
    return int(hashlib.sha1(item_id.encode("utf-8")).hexdigest(), 16)


def stratum(row: dict) -> tuple[str, str]:
    """The stratum a set item is split within: (type, lang)."""
    return row["type"], row["lang"]


def assign_splits(rows: list[dict]) -> list[str]:
    """The split of each item of one set (see the module docstring for the rule).

    Args:
        rows: the set's items as dicts with at least id, type and lang; a "split" already
            there is kept.
    Returns:
        "dev" or "test" for each row, in the rows' order.
    Raises:
        RagError: a row's split is neither "dev" nor "test", or two rows share an id.
    """
    ids = Counter(row["id"] for row in rows)
    if dupes := sorted(i for i, n in ids.items() if n > 1):
        raise RagError(f"the set has duplicate ids {dupes[:3]}: give every item its own id, then split it")
    counts: dict[tuple, Counter] = defaultdict(Counter)
    for row in rows:
        split = row.get("split")
        if split is not None and split not in SPLITS:
            raise RagError(f"item {row['id']} has split {split!r}; use one of {', '.join(SPLITS)}")
        if split is not None:
            counts[stratum(row)][split] += 1
    out = [row.get("split") for row in rows]
    for i in sorted((i for i, s in enumerate(out) if s is None), key=lambda i: _hash(rows[i]["id"])):
        held = counts[stratum(rows[i])]
        if held["dev"] != held["test"]:
            split = "dev" if held["dev"] < held["test"] else "test"
        else:
            split = SPLITS[_hash(rows[i]["id"]) & 1]
        held[split] += 1
        out[i] = split
    return out


def write_splits(path: Path) -> Counter:
    """Add "split" to every line of a JSONL set that lacks it, in place; other text is unchanged.

    Returns:
        How many items each half now holds.
    Raises:
        RagError: the file is unreadable or a line is not a JSON object.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RagError(f"cannot read evaluation set {path}: {exc}") from exc
    rows, where = [], []
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise RagError(f"{path}:{number + 1} is not valid JSON ({exc})") from exc
        if not isinstance(row, dict):
            raise RagError(f"{path}:{number + 1} is not a JSON object")
        rows.append(row)
        where.append(number)
    for row, number, split in zip(rows, where, assign_splits(rows)):
        if "split" not in row:  # appended as text: the line's own bytes stay as they were
            lines[number] = lines[number].rstrip()[:-1].rstrip() + f', "split": "{split}"}}'
            row["split"] = split
    Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return Counter(row["split"] for row in rows)


def select(items: list, split: str) -> list:
    """The items of one half ("dev", "test"), or all of them ("both").

    Raises:
        RagError: an unknown split, or a half asked of a set whose items have no split.
    """
    if split not in CHOICES:
        raise RagError(f"--split takes one of {', '.join(CHOICES)}, not {split!r}")
    if split == "both":
        return list(items)
    if any(getattr(item, "split", None) is None for item in items):
        raise RagError("this set's items have no split field; add it with "
                       "`python -m rag.evaluation.splits SET.jsonl`, then evaluate again")
    return [item for item in items if item.split == split]


def split_metrics(rows: list[dict], summarize) -> dict[str, dict]:
    """summarize(rows of one half) for each half the rows hold ({} when they carry no split)."""
    halves = {s: [r for r in rows if r.get("split") == s] for s in SPLITS}
    return {s: summarize(group) for s, group in halves.items() if group}


def side_by_side(report: dict, metrics: tuple[str, ...]) -> list[str]:
    """Markdown lines: every group's metrics for dev · test · all items, and the tuned-on half.

    Empty when the report has no halves (a set without splits), so old reports render as before.
    """
    halves = report.get("splits") or {}
    if not halves:
        return []
    tuned = report.get("tuned_on")
    said = (f"Tuned on: **{tuned}**" if tuned else "Tuned on: not stated (pass `--tuned-on dev`)")
    if tuned == "test":
        said += " — the test figures are no longer held out"
    lines = ["", "## Dev and test side by side", "",
             f"{said}; report the test half. Each cell: dev · test · all.", "",
             "| group | n (dev · test) | " + " | ".join(metrics) + " |", "|---|---|" + "---|" * len(metrics)]
    for group, values in report["metrics"].items():
        parts = [halves.get(s, {}).get(group, {}) for s in SPLITS]
        counts = " · ".join(str(p.get("n", 0)) for p in parts)
        cells = [" · ".join(_cell(p.get(m)) for p in parts + [values]) for m in metrics]
        lines.append(f"| {group} | {counts} | " + " | ".join(cells) + " |")
    return lines


def listed(rows: list[dict]) -> tuple[list[dict], list[str]]:
    """The rows a report lists item by item (failures, misses): not the test half's, which stays
    unseen while tuning; and a note saying how many were left out (none when all are listed)."""
    shown = [r for r in rows if r.get("split") != "test"]
    hidden = len(rows) - len(shown)
    return shown, ([f"({hidden} of them in the test half, not listed: it stays unseen while tuning.)", ""]
                   if hidden else [])


def _cell(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    """`python -m rag.evaluation.splits SET.jsonl …`: write the split field into each set."""
    paths = argv if argv is not None else sys.argv[1:]
    if not paths:
        print("usage: python -m rag.evaluation.splits SET.jsonl [SET.jsonl …]", file=sys.stderr)
        return 2
    for path in paths:
        counts = write_splits(Path(path))
        print(f"{path}: dev {counts['dev']}, test {counts['test']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
