"""A random sample of news-cn articles to write evaluation questions over (eval/sets/news.jsonl).

    .venv/bin/python eval/sample_news.py /work/shared/corpora/news-cn [--n 60] [--seed 17]

Draws (file, line) pairs uniformly over all 34 files with a fixed seed and keeps articles that
carry clear facts (several figures, 300–2,500 characters, not a templated market report), at
most `--per-file` from one file. Prints each kept article as the parser reads it — source file,
line (`record`), headline, outlet, date — then its text, for writing questions by hand.
"""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

from rag.ingest.corpus import read_page
from rag.ingest.formats import read_file

_FIGURE = re.compile(r"\d+(?:\.\d+)?")
# Templated wording of generated market and weather items: many near-identical articles.
_TEMPLATED = ("主力资金", "融资融券", "龙虎榜", "涨停", "大宗交易", "净流入", "收盘")


def sample(folder: Path, n: int, seed: int, per_file: int = 3) -> list:
    """Up to n articles drawn at random (fixed seed) with at most per_file from one file."""
    files = sorted(folder.glob("news-*.txt"))
    rng = random.Random(seed)
    pages: dict[str, list] = {}
    kept, seen, tries = [], set(), 0
    while len(kept) < n and tries < 50 * n:
        tries += 1
        path = rng.choice(files)
        if path.name not in pages:
            pages[path.name] = read_file(read_page(path, folder), path.name).articles
        articles = pages[path.name]
        article = articles[rng.randrange(len(articles))]
        key = (article.source, article.record)
        text = article.text
        if key in seen or sum(1 for a in kept if a.source == article.source) >= per_file:
            continue
        seen.add(key)
        if not 300 <= len(text) <= 2500 or len(_FIGURE.findall(text)) < 6:
            continue
        if any(word in text for word in _TEMPLATED):
            continue
        kept.append(article)
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--per-file", type=int, default=3)
    args = parser.parse_args(argv)
    for a in sample(args.folder, args.n, args.seed, args.per_file):
        print(f"=== {a.source} line {a.record} | {a.headline} | {a.paper} | {a.date}")
        print(a.text.replace("\n\n", " ¶ "))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
