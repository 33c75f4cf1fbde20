"""`rag bench --archive`: search latency over a dated archive, with and without filters.

Measured on the index as it is (built first if missing, new text embedded once), so a large
archive is not rebuilt three times as `retrieval_bench` does for the seeds. The filters timed are
the ones users set: one month (the middle of the archive's span), the most common outlet, and both.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import date

import numpy as np

from rag.config import Settings
from rag.evaluation.stats import p50_p95
from rag.search.filters import SearchFilter


def _filters(index) -> dict[str, SearchFilter | None]:
    """No filter, a month in the middle of the span, the commonest outlet, and both."""
    spans = index.day_spans[index.day_spans[:, 0] >= 0]
    month = None
    if len(spans):
        middle = date.fromordinal(int(np.median(spans[:, 0])))
        month = f"{middle.year}-{middle.month:02d}"
    outlets = Counter(c.paper for c in index.chunks if c.paper)
    top = outlets.most_common(1)[0][0] if outlets else None
    out: dict[str, SearchFilter | None] = {"none": None}
    if month:
        out["month"] = SearchFilter.parse(month, month)
    if top:
        out["outlet"] = SearchFilter.parse(paper=top)
    if month and top:
        out["month+outlet"] = SearchFilter.parse(month, month, top)
    return out


def archive_bench(settings: Settings, questions: list[str], repeat: int = 3) -> dict:
    """Retrieval latency (ms, in process, warm, k=5) per filter over the current index.

    Args:
        settings: the archive (corpus_dir) and its index.
        questions: the questions to time; each is asked ``repeat`` times per filter.
    Returns:
        The archive's size, and per filter: how many chunks pass and p50/p95/max latency.
    """
    from rag.search.retrieve import open_searcher, validate_question

    searcher = open_searcher(settings)
    index = searcher.index
    cleaned = [validate_question(q, settings) for q in questions]
    for q in cleaned[:5]:  # warm caches (jieba dictionary, torch kernels)
        searcher.search(q, 5)
    results = {}
    for name, filters in _filters(index).items():
        latencies, returned = [], 0
        for _ in range(repeat):
            for q in cleaned:
                started = time.perf_counter()
                passages = searcher.search(q, 5, filters)
                latencies.append((time.perf_counter() - started) * 1000)
                returned += len(passages)
        passing = int(filters.mask(index.day_spans, index.outlet_keys).sum()) if filters else len(index.chunks)
        results[name] = {"filter": filters.describe() if filters else "", "chunks_passing": passing,
                         "passages_per_query": round(returned / max(1, len(latencies)), 2),
                         **p50_p95(latencies), "max": round(max(latencies), 2), "n": len(latencies)}
    status = index.status()
    return {
        "archive": {"files": status.pages, "articles": status.articles, "chunks": status.chunks,
                    "sentences": status.sentences, "outlets": status.outlets,
                    "dates": [status.first_date, status.last_date], "reprint_groups": status.reprint_groups,
                    "dense_index": type(index.faiss_index).__name__,
                    "sentence_index": type(index.sentence_index).__name__},
        "retrieve_ms": results,
        "method": f"rag.search.retrieve path (validate + embed query + FAISS + BM25 + fusion + filter), "
                  f"in-process, warm, {len(questions)} questions × {repeat} per filter, k=5",
    }
