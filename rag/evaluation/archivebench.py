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


def archive_bench(settings: Settings, questions: list[str], repeat: int = 3, serving: bool = True,
                  chat=None) -> dict:
    """Retrieval latency (ms, in process, warm, k=5) per filter over the current index, the build's
    own figures from its manifest, and the memory of serving it with the LLM loaded.

    Args:
        settings: the archive (corpus_dir) and its index.
        questions: the questions to time; each is asked ``repeat`` times per filter.
        serving: also load the LLM and answer three questions, to measure serving memory.
        chat: the chat model to serve with (default: the configured LLM).
    Returns:
        The archive's size; build time, texts/s, peak memory and size on disk; per filter: how many
        chunks pass and p50/p95/max latency; resident memory with the index alone and with the LLM.
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
    memory = _serving_memory(settings, searcher, cleaned[:3], chat) if serving else {}
    return {
        "archive": {"files": status.pages, "articles": status.articles, "chunks": status.chunks,
                    "sentences": status.sentences, "outlets": status.outlets,
                    "dates": [status.first_date, status.last_date], "reprint_groups": status.reprint_groups,
                    "dense_index": type(index.faiss_index).__name__,
                    "sentence_index": type(index.sentence_index).__name__},
        "build": {"seconds": index.manifest.get("build_seconds"), "embedded": status_counts(index, "embedded"),
                  "embedding": index.manifest.get("embedding", {}), "peak_rss_mb": index.manifest.get("peak_rss_mb"),
                  "disk_mb": round(sum(p.stat().st_size for p in index.path.rglob("*") if p.is_file()) / 2**20)},
        "retrieve_ms": results,
        "serving": memory,
        "method": f"rag.search.retrieve path (validate + embed query + FAISS + BM25 + fusion + filter), "
                  f"in-process, warm, {len(questions)} questions × {repeat} per filter, k=5",
    }


def status_counts(index, name: str):
    """One of the build's counts (embedded, sentences, …) from the manifest, or None."""
    return index.manifest.get("counts", {}).get(name)


def _rss_mb() -> dict:
    """This process's resident memory now and at its peak (MiB), from /proc (Linux); "file" is
    the part that maps files (libraries, the memory-mapped index), which the kernel can drop."""
    fields = {}
    try:
        for line in open("/proc/self/status", encoding="ascii"):
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssFile"):
                fields[key] = int(value.split()[0]) // 1024
    except OSError:
        return {}
    return {"now": fields.get("VmRSS"), "peak": fields.get("VmHWM"), "file": fields.get("RssFile")}


def _serving_memory(settings: Settings, searcher, questions: list[str], chat=None) -> dict:
    """Resident memory with the index and embedder loaded, then with the LLM loaded and answering."""
    import gc

    from rag.answer.pipeline import Pipeline
    from rag.memory import release_free_memory

    gc.collect()
    alone = _rss_mb()
    pipeline = Pipeline(settings, searcher, chat).load()
    started = time.perf_counter()
    for question in questions:
        pipeline.ask(question)
        release_free_memory()  # what `rag chat` and `rag serve` do after each answer
    with_llm = _rss_mb()
    return {"rss_mb_index_and_embedder": alone.get("now"), "rss_mb_with_llm": with_llm.get("now"),
            "of_which_file_backed_mb": with_llm.get("file"), "peak_rss_mb": with_llm.get("peak"),
            "llm": settings.llm_model,
            "answers": len(questions), "answer_seconds": round(time.perf_counter() - started, 1)}
