"""Synthetic corpora for benchmarks: the seed pages' sentences recombined into many more pages.

`write_synthetic_corpus(seeds, folder, paragraphs)` writes Markdown pages of articles: each keeps
a seed headline and has 3-6 paragraphs of 2-4 sentences drawn at random (seeded) from all the
seeds' articles. The text is real newspaper Chinese, so tokenising, chunking and BM25 do their
real work at scale; the sentences repeat, so their vectors come from the embedding cache after
the first time (a benchmark states this beside its build time).
"""

from __future__ import annotations

import random
from pathlib import Path

from rag.ingest.corpus import load_corpus
from rag.textnorm import split_sentences

ARTICLES_PER_PAGE = 20


def write_synthetic_corpus(seeds: Path, folder: Path, paragraphs: int, seed: int = 0) -> int:
    """Write pages holding ``paragraphs`` paragraphs into ``folder`` (emptied of .md pages first).

    Returns:
        The number of pages written.
    """
    corpus = load_corpus(seeds, 350)
    # Body sentences only: a byline or photo credit (in a page's text too) is no sentence to recombine.
    sentences = [s.strip() for a in corpus.articles for p in a.paragraphs
                 for s in split_sentences(p.replace(a.byline, "") if a.byline else p) if len(s.strip()) >= 8]
    headlines = sorted({a.headline for a in corpus.articles if a.kind == "article"})
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.md"):
        old.unlink()
    written, pages, articles = 0, 0, []
    while written < paragraphs:
        count = min(rng.randint(3, 6), paragraphs - written)
        body = ["".join(rng.choice(sentences) for _ in range(rng.randint(2, 4))) for _ in range(count)]
        articles.append(f"# {rng.choice(headlines)}\n\n" + "\n\n".join(body))
        written += count
        if len(articles) == ARTICLES_PER_PAGE or written >= paragraphs:
            (folder / f"{pages:05d}_synthetic.md").write_text("\n\n".join(articles) + "\n", encoding="utf-8")
            pages, articles = pages + 1, []
    return pages
