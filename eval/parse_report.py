"""Figures for eval/reports/news-cn-parse.md: how the dump reader reads the news-cn corpus.

    .venv/bin/python eval/parse_report.py /work/shared/corpora/news-cn [--sample N] [--seed S]

Prints the figures as Markdown, then (with --sample) N random articles whose outlet came from a
dateline, each as "outlet | place | the body's opening", for checking by eye.
"""

from __future__ import annotations

import argparse
import collections
import random
import re
import sys
import time
from pathlib import Path

from rag.ingest.dumps import BODY_MARK, PREFIX_CHARS, YEAR_NOTE, looks_like_dump, read_dump


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--sample", type=int, default=0)
    parser.add_argument("--seed", type=int, default=2023)
    args = parser.parse_args(argv)
    files = sorted(args.folder.glob("news-*.txt"))
    texts = {path.name: path.read_text(encoding="utf-8") for path in files}
    start, cpu = time.perf_counter(), time.process_time()
    per_file = {name: read_dump(text, name) for name, text in texts.items()}
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    detected = [name for name, text in texts.items() if looks_like_dump(text)]
    articles = [a for found in per_file.values() for a in found]
    lines = {name: [line for line in text.split("\n") if line.strip()] for name, text in texts.items()}

    out = [f"- files: {len(files)}; non-empty lines: {sum(map(len, lines.values())):,}; articles: {len(articles):,}",
           f"- files with one article per non-empty line: "
           f"{sum(len(per_file[n]) == len(lines[n]) for n in per_file)} of {len(files)}",
           f"- read in {seconds:.1f} s wall, {cpu:.1f} s CPU (read_dump over all files, one process, text "
           f"already decoded)",
           f"- `looks_like_dump` true for {len(detected)} of {len(files)} files; not for "
           f"{', '.join(sorted(set(texts) - set(detected))) or 'none'}"]
    # Stamps: a prefix before `，正文：` that holds a digit is a date stamp and must give a date.
    stamped = undated = no_prefix = plain_prefix = 0
    shapes = collections.Counter()
    for name in per_file:
        for line, article in zip(lines[name], per_file[name]):
            at = line.find(BODY_MARK, 0, PREFIX_CHARS + len(BODY_MARK))
            if at < 0:
                no_prefix += 1
            elif re.search(r"\d", line[:at]):
                stamped += 1
                if article.date is None or article.date_note == "from the dateline":
                    undated += 1
                    shapes[line[:at]] += 1
            else:
                plain_prefix += 1
    out += [f"- lines with a date stamp (a prefix with digits): {stamped:,}; of them without a date: {undated}"
            + (f" ({', '.join(map(repr, list(shapes)[:5]))})" if shapes else ""),
            f"- lines with a prefix but no digits (`，正文：` alone, `来源：X`, `记者：X`, `/`): {plain_prefix:,}",
            f"- lines with no `，正文：` at all: {no_prefix:,}"]
    precision = collections.Counter(a.date_precision for a in articles)
    notes = collections.Counter(a.date_note for a in articles)
    out += ["", "| date precision | articles |", "|---|---|"]
    out += [f"| {p} | {precision[p]:,} |" for p in ("day", "month", "month-day", "unknown")]
    out += ["", f"- years inferred from the file's other stamps (`{YEAR_NOTE}`): {notes[YEAR_NOTE]:,}",
            f"- month-day from the dateline of a line with no dated stamp: {notes['from the dateline']:,}"]
    with_paper = [a for a in articles if a.paper]
    from_prefix = sum(1 for name in per_file for line, a in zip(lines[name], per_file[name])
                      if a.paper and _prefix_names(line, a.paper))
    out += ["", f"- articles with an outlet: {len(with_paper):,} of {len(articles):,} "
                f"({100 * len(with_paper) / len(articles):.1f} %); from the stamp prefix: {from_prefix:,}, "
                f"from the body's dateline or source label: {len(with_paper) - from_prefix:,}",
            f"- distinct outlets: {len({a.paper for a in with_paper}):,}",
            f"- with a section: {sum(1 for a in articles if a.section):,}; a URL: "
            f"{sum(1 for a in articles if a.url):,}; an author: {sum(1 for a in articles if a.author):,}",
            "", "| outlet | articles |", "|---|---|"]
    out += [f"| {paper} | {n:,} |" for paper, n in collections.Counter(a.paper for a in with_paper).most_common(20)]
    sources = collections.Counter(a.headline_source for a in articles)
    original = sum(1 for name in per_file for line in lines[name] if "原标题" in line[:PREFIX_CHARS + 20])
    out += ["", f"- headlines: {sources['page']:,} printed (`原标题：…`, headline_source page), "
                f"{sources['lead']:,} made from the lead (of which {original - sources['page']:,} open with "
                f"`原标题：` whose end could not be told)"]
    print("\n".join(out))
    if args.sample:
        rng = random.Random(args.seed)
        pool = [a for name in per_file for line, a in zip(lines[name], per_file[name])
                if a.paper and not _prefix_names(line, a.paper)]
        counts = collections.Counter(a.paper for a in pool)
        rare = [a for a in pool if counts[a.paper] < 10]
        for title, group, n in (("dateline outlets", pool, args.sample),
                                ("rare dateline outlets (< 10 articles)", rare, args.sample // 2)):
            print(f"\n## sample of {n} {title} (seed {args.seed}) out of {len(group):,}\n")
            for a in rng.sample(group, n):
                print(f"{a.source}:{a.record} | {a.paper} | {a.text[:50]!r}")
    return 0


def _prefix_names(line: str, paper: str) -> bool:
    """Whether the outlet is named in the line's stamp prefix (so the prefix gave it)."""
    at = line.find(BODY_MARK, 0, PREFIX_CHARS + len(BODY_MARK))
    return at >= 0 and paper in line[:at].replace(" ", "")


if __name__ == "__main__":
    sys.exit(main())
