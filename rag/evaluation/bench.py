"""The benches of `rag bench`: index build and retrieval latency, decode speed of our adapter against
llama-cpp-python's own, kept prefixes, the stock recipe, keyword search and corpora at scale."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from langchain_core.messages import HumanMessage, SystemMessage

from rag.config import Settings
from rag.errors import RagError
from rag.evaluation.stats import p50_p95
from rag.prompts import load_prompt


def retrieval_bench(settings: Settings, questions: list[str], repeat: int = 3) -> dict:
    """Index build time with the embedder loaded, and retrieval latency over ``questions``.

    Three builds: every text embedded, then one that fills the embedding cache, then one with
    nothing new to embed (timed as the unchanged rebuild). Retrieval is the whole search path
    (validate, embed the query, FAISS, BM25, fusion), in process, warm, k=5.
    """
    from rag.models.embedder import load_embedder
    from rag.search.build import build_index
    from rag.search.retrieve import open_searcher, validate_question

    embedder = load_embedder(settings)
    embedder.embed_queries(["warm-up"])
    started = time.perf_counter()
    build_index(settings, embedder, progress=False, reuse=False)  # every text embedded
    build_s = time.perf_counter() - started
    build_index(settings, embedder, progress=False)  # fills the embedding cache
    started = time.perf_counter()
    build_index(settings, embedder, progress=False)  # nothing new to embed
    rebuild_s = time.perf_counter() - started
    searcher = open_searcher(settings)
    for q in questions[:5]:  # warm caches (jieba dictionary, torch kernels)
        searcher.search(validate_question(q, settings), 5)
    latencies = []
    for _ in range(repeat):
        for q in questions:
            started = time.perf_counter()
            searcher.search(validate_question(q, settings), 5)
            latencies.append((time.perf_counter() - started) * 1000)
    return {
        "index_build_s": round(build_s, 2),
        "index_rebuild_unchanged_s": round(rebuild_s, 2),
        "chunks": len(searcher.index.chunks),
        "retrieve_ms": {"n": len(latencies), **p50_p95(latencies), "max": round(max(latencies), 2)},
        "method": "rag.search.retrieve path (validate + embed query + FAISS + BM25 + fusion), in-process, "
                  f"warm models, {len(questions)} eval questions × {repeat}, k=5",
        "keywords_at_100k": keyword_scale(settings),
    }


def _raw_decode(llama, messages: list[dict], max_tokens: int) -> tuple[int, float]:
    """(tokens, tokens/s after the first) for llama-cpp-python's own streaming chat completion."""
    times = []
    for chunk in llama.create_chat_completion(messages=messages, stream=True, max_tokens=max_tokens,
                                              temperature=0.0, seed=0):
        if (chunk["choices"][0].get("delta") or {}).get("content"):
            times.append(time.perf_counter())
    return len(times), (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


def _adapter_decode(chat, messages, max_tokens: int) -> tuple[int, float]:
    """The same through `LlamaCppChat.stream` (LangChain chunks, callbacks, our lock)."""
    times = []
    for chunk in chat.stream(messages, max_tokens=max_tokens):
        if chunk.content:
            times.append(time.perf_counter())
    return len(times), (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


def decode_speed(settings: Settings, repeats: int = 3, max_tokens: int = 160) -> dict:
    """Decode tokens/s of the llama.cpp adapter and of raw llama-cpp-python, same model and prompt.

    Runs alternate (raw, adapter) so that a change in machine load hits both; greedy, so both
    produce the same tokens. The prompt is evaluated once beforehand and then reused from the
    cache, so only decoding is timed.
    """
    from rag.models.chat import make_chat_model
    from rag.models.llamacpp import LlamaCppChat

    chat = make_chat_model(settings)
    if not isinstance(chat, LlamaCppChat):
        raise RagError("`rag bench --decode` compares against llama-cpp-python: run it with --backend llama.cpp")
    llama = chat.runtime().llama
    system, user = load_prompt("system"), load_prompt("bench_decode")
    raw_messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    messages = [SystemMessage(system), HumanMessage(user)]
    _raw_decode(llama, raw_messages, 8)  # load and cache the prompt
    raw, adapter = [], []
    for _ in range(repeats):
        raw.append(_raw_decode(llama, raw_messages, max_tokens))
        adapter.append(_adapter_decode(chat, messages, max_tokens))
    raw_speed = statistics.median(s for _, s in raw)
    adapter_speed = statistics.median(s for _, s in adapter)
    return {"model": settings.llm_model, "threads": chat.n_threads, "max_tokens": max_tokens,
            "repeats": repeats, "raw_tokens": [n for n, _ in raw], "adapter_tokens": [n for n, _ in adapter],
            "raw_tokens_per_s": round(raw_speed, 2), "adapter_tokens_per_s": round(adapter_speed, 2),
            "adapter_vs_raw": round(adapter_speed / raw_speed, 4) if raw_speed else None}


def follow_up_ttft(settings: Settings, questions: list[str], pairs: int = 6) -> dict:
    """Time to first token of follow-up questions, with the kept prompt prefixes and without.

    A conversation: a question, its answer, then a follow-up, which is first condensed (a turn
    with another prompt, which evicts llama.cpp's context) and then answered; only the
    follow-up is timed. Without kept prefixes both prompts are read in full. Each
    follow-up is asked both ways, alternating which goes first, so a change in machine load hits
    both; greedy decoding gives the same answer both ways, which the result checks.

    Args:
        settings: the configuration to measure (llama.cpp backend).
        questions: consecutive pairs (earlier question, follow-up); ``pairs`` of them are used.
    """
    from rag.answer.pipeline import Pipeline

    pipeline = Pipeline(settings).load()
    chat = pipeline.chat
    if not hasattr(chat, "expect"):
        raise RagError("kept prefixes are a llama.cpp feature: run `rag bench --prefix` with --backend llama.cpp")

    def keep(on: bool) -> None:
        chat.forget_prefixes()
        chat.keep_prefixes = on  # off: the pipeline's announcements keep nothing either
        for samples in pipeline.prompt_samples().values():
            chat.expect(*samples)

    modes = ("kept", "not kept")
    timings = {mode: {"ttft_s": [], "condense_s": []} for mode in modes}
    same = True
    for i in range(min(pairs, len(questions) // 2)):
        earlier, question = questions[2 * i], questions[2 * i + 1]
        texts = set()
        for mode in modes if i % 2 == 0 else modes[::-1]:
            keep(mode == "kept")
            first = pipeline.ask(earlier)  # as in a conversation: the follow-up comes after an answer
            answer = pipeline.ask(question, history=[(earlier, first.text)])
            for key in ("ttft_s", "condense_s"):
                timings[mode][key].append(answer.timings[key])
            texts.add(answer.text)
        same = same and len(texts) == 1
    keep(settings.llm_keep_prefix)
    p50 = {mode: {key: round(statistics.median(v), 3) for key, v in values.items()}
           for mode, values in timings.items()}
    return {"model": settings.llm_model, "follow_ups": len(timings["kept"]["ttft_s"]), "p50": p50,
            "ttft_saved_s_p50": round(p50["not kept"]["ttft_s"] - p50["kept"]["ttft_s"], 3),
            "values": timings, "same_answers": same,
            "method": "a follow-up (condensed with the history, then answered) asked with and without the "
                      "kept prefixes, order alternating; ttft_s runs from the question to the answer's "
                      "first token and includes condense_s"}


def stock_comparison(settings: Settings, items: list, chunk_size: int = 300, chunk_overlap: int = 50,
                     k: int = 3) -> dict:
    """Our pipeline against the stock LangChain recipe (`rag.evaluation.stock`), item by item in one run.

    Args:
        settings: our configuration; the recipe gets the same embedder and LLM.
        items: evaluation items (`rag.evaluation.retrieval.load_set`).
        chunk_size, chunk_overlap, k: the recipe's splitter and retriever.
    Returns:
        Overall metrics of both, the recipe's parameters and both full reports.
    """
    from rag.evaluation.answers import compare_answers
    from rag.answer.pipeline import Pipeline
    from rag.evaluation.stock import StockRecipe

    pipeline = Pipeline(settings).load()
    stock = StockRecipe(settings, pipeline.searcher.embedder, pipeline.chat, chunk_size, chunk_overlap, k)
    reports = compare_answers(items, {"rag": pipeline.ask, "stock": stock.ask})
    return {"model": settings.llm_model,
            "overall": {name: report["metrics"]["overall"] for name, report in reports.items()},
            "stock_recipe": {"splitter": "RecursiveCharacterTextSplitter", "chunk_size": chunk_size,
                             "chunk_overlap": chunk_overlap, "k": k, "chunks": len(stock.chunks),
                             "index": "faiss.IndexFlatIP", "prompt": "prompts/stock_answer.md"},
            "method": "both on every item, taking turns (the first alternating), same embedder and LLM, greedy",
            "reports": reports}


def render_comparison(result: dict) -> str:
    """The comparison's overall metrics as a Markdown table."""
    columns = ("answer_accuracy", "refusal_accuracy", "false_refusal", "citation_precision", "citation_recall",
               "in_language", "ttft_s_p50", "ttft_s_p95", "total_s_p50", "total_s_p95")
    recipe = result["stock_recipe"]
    lines = [f"# Our pipeline against the stock LangChain recipe ({result['model']})", "",
             f"{result.get('written_at', '')}; {result.get('machine', '')}. {result['method']}.", "",
             f"Stock recipe: {recipe['splitter']}(chunk_size={recipe['chunk_size']}, "
             f"chunk_overlap={recipe['chunk_overlap']}) over whole pages → {recipe['chunks']} chunks in "
             f"{recipe['index']}, top {recipe['k']} under {recipe['prompt']}; its citations are the "
             f"chunks it retrieved.", "",
             "| | n | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for name, metrics in result["overall"].items():
        cells = ["–" if metrics.get(c) is None else f"{metrics[c]:.3f}" for c in columns]
        lines.append(f"| {name} | {metrics['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_bench(result: dict, title: str) -> str:
    """A bench result as Markdown: when and where, how, and every measure in one table under its
    dotted name (``retrieve_ms.p95``, ``sizes[0].chunks``); a list of samples shows its length."""
    rows: list[tuple[str, object]] = []

    def walk(name: str, value) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{name}.{key}" if name else str(key), inner)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, inner in enumerate(value):
                walk(f"{name}[{i}]", inner)
        elif isinstance(value, list):
            rows.append((name, f"{len(value)} values (in the JSON file)" if value else "none"))
        else:
            rows.append((name, value))

    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    walk("", {k: v for k, v in result.items() if k not in ("written_at", "machine", "method")})
    lines = [f"# {title}", "", f"{result.get('written_at', '')}; {result.get('machine', '')}.", ""]
    if result.get("method"):
        lines += [str(result["method"]), ""]
    lines += ["| measure | value |", "|---|---|", *(f"| {cell(name)} | {cell(value)} |" for name, value in rows)]
    return "\n".join(lines) + "\n"


def keyword_scale(settings: Settings, documents: int = 100_000, queries: int = 20, seed: int = 0) -> dict:
    """Keyword search at ``documents`` synthetic passages: build time and query latency of our
    sparse BM25, and of rank-bm25's loop over passages when it is installed (the test extra).

    The passages recombine 2-4 random sentences of the corpus (tokenised once); the queries are
    the openings of random chunks.
    """
    import random

    from rag.ingest.corpus import load_corpus
    from rag.search.keywords import BM25Index, tokenize
    from rag.textnorm import split_sentences

    chunks = load_corpus(settings.corpus_dir, settings.chunk_max_chars, settings.corpus_format,
                         settings.field_map).chunks
    sentences = [tokenize(s) for c in chunks for s in split_sentences(c.text) if s.strip()]
    rng = random.Random(seed)
    docs = [[t for _ in range(rng.randint(2, 4)) for t in rng.choice(sentences)] for _ in range(documents)]
    asked = [tokenize(c.text[:40]) for c in rng.sample(chunks, min(queries, len(chunks)))]

    def measure(build, score) -> dict:
        started = time.perf_counter()
        index = build(docs)
        built = time.perf_counter() - started
        times = []
        for q in asked:
            started = time.perf_counter()
            score(index, q)
            times.append((time.perf_counter() - started) * 1000)
        spread = p50_p95(times)
        return {"build_s": round(built, 2), "query_ms_p50": spread["p50"], "query_ms_p95": spread["p95"]}

    result = {"documents": documents, "queries": len(asked),
              "sparse_bm25": measure(BM25Index, lambda index, q: index.scores(q))}
    try:
        from rank_bm25 import BM25Okapi
    except ImportError:
        return result
    result["rank_bm25"] = measure(BM25Okapi, lambda index, q: index.get_scores([t for t in q if t in index.idf]))
    return result


def scale_bench(settings: Settings, sizes: list[int], questions: list[str], repeat: int = 2) -> dict:
    """Index build, retrieval latency and memory over synthetic corpora of ``sizes`` paragraphs.

    For each size: pages from `rag.evaluation.synthetic` under ``cache_dir/bench/``, a full index build
    (progress bar), retrieval over ``questions`` through the real search path, and, over the
    chunk vectors, exact (Flat) against HNSW search: latency and HNSW's recall@10.
    """
    import dataclasses
    import resource

    from rag.search.build import build_index, vector_index
    from rag.models.embedder import load_embedder
    from rag.search.retrieve import open_searcher, validate_question
    from rag.evaluation.synthetic import write_synthetic_corpus

    embedder = load_embedder(settings)
    embedder.embed_queries(["warm-up"])
    results = []
    for size in sizes:
        folder = Path(settings.cache_dir) / "bench" / f"synthetic-{size}"
        pages = write_synthetic_corpus(Path(settings.corpus_dir), folder / "pages", size)
        local = dataclasses.replace(settings, corpus_dir=folder / "pages", index_dir=folder / "vectorstore")
        started = time.perf_counter()
        index, _ = build_index(local, embedder, progress=True)
        build_s = time.perf_counter() - started
        searcher = open_searcher(local, embedder=embedder, progress=False)
        asked = [validate_question(q, local) for q in questions]
        for q in asked[:5]:
            searcher.search(q, 5)
        latencies = []
        for _ in range(repeat):
            for q in asked:
                started = time.perf_counter()
                searcher.search(q, 5)
                latencies.append((time.perf_counter() - started) * 1000)
        vectors = index.faiss_index.reconstruct_n(0, index.faiss_index.ntotal)
        queries = embedder.embed_queries(asked)
        kinds = {}
        for name, hnsw_from in (("flat", len(vectors) + 1), ("hnsw", 0)):
            started = time.perf_counter()
            built = vector_index(vectors, hnsw_from)
            made = time.perf_counter() - started
            started = time.perf_counter()
            _, ids = built.search(queries, 10)
            kinds[name] = {"build_s": round(made, 2), "ms_per_query": round(
                (time.perf_counter() - started) * 1000 / len(queries), 3), "ids": ids}
        recall = statistics.fmean(len(set(a) & set(b)) / 10 for a, b in zip(kinds["flat"]["ids"], kinds["hnsw"]["ids"]))
        counts = index.status()
        results.append({
            "paragraphs": size, "pages": pages, "chunks": counts.chunks, "sentences": counts.sentences,
            "texts_embedded": counts.embedded, "index_build_s": round(build_s, 1),
            "chunk_index": type(index.faiss_index).__name__,
            "retrieve_ms": {"n": len(latencies), **p50_p95(latencies)},
            "flat_vs_hnsw": {**{k: {m: v[m] for m in ("build_s", "ms_per_query")} for k, v in kinds.items()},
                             "hnsw_recall_at_10": round(recall, 4)},
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        })
    return {"sizes": results, "hnsw_from": settings.hnsw_from,
            "method": "synthetic pages recombining the seeds' sentences (rag/evaluation/synthetic.py, seed 0); "
                      "texts_embedded counts what the embedding cache did not hold; retrieval is the "
                      "whole search path (embed query, FAISS chunks + sentences, BM25 words + pinyin, "
                      "fusion) over the evaluation set's questions; peak RSS is the process's so far"}
