"""Building the hybrid index: chunks embedded and keyword-tokenised, written, swapped in atomically.

See `rag.search.index` for the layout on disk and for loading. A crash mid-build leaves a `.tmp-*`
folder behind and `current` untouched; vectors are kept by text in the embedding cache
(`rag.search.embedcache`), so a rebuild embeds only new or changed text and an interrupted build
resumes. With RAG_STORE=milvus the vectors are written into Milvus instead of FAISS files
(`rag.search.milvus`, which also says what the atomic swap means on a Milvus server).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from rag.config import Settings, usable_cpus
from rag.ingest.chunks import CHUNKER_VERSION, Chunk
from rag.ingest.corpus import Corpus, load_corpus
from rag.errors import RagError
from rag.search.crossling import build_glossary
from rag.search.embedcache import EmbeddingCache
from rag.search.index import (CHUNKS_FILE, CURRENT, FAISS_FILE, FORMAT_VERSION, GLOSSARY_FILE, HNSW_EF_SEARCH,
                              KEYWORDS, MANIFEST, OWNERS_FILE, PINYIN, SENTENCES_FILE, HybridIndex, _faiss,
                              chunk_sentences)
from rag.search.keywords import TOKENIZER_ID, BM25Index, keywords_of
from rag.search.milvus import MARKER, drop_build, open_stores, write_collections
from rag.search.stores import check_store
from rag.files import make_staging_folder, point_symlink, publish_folder, sha256_file, sync_files, timestamp
from rag.ingest.reprints import REPRINTS_VERSION, group_reprints
from rag.script import search_form
from rag.search.filters import chunk_day_span


POOL_FROM = 20_000  # chunks from which keywords are tokenised in parallel processes (_keyword_side)


def build_index(settings: Settings, embedder=None, corpus: Corpus | None = None,
                progress: bool = True, reuse: bool = True) -> tuple[HybridIndex, Corpus]:
    """Build the index for the corpus folder and swap it in atomically.

    Args:
        settings: where the corpus and index live, which embedder to use.
        embedder: an object with `embed_passages`, `dim` and `spec`; loaded from settings if None.
        corpus: an already loaded corpus (else read from `settings.corpus_dir`).
        progress: show a progress bar while embedding.
        reuse: take the vectors of texts embedded before from the embedding cache
            (`rag.search.embedcache`) and save new ones there; False embeds everything (benchmarks).
    Returns:
        The loaded new index and the corpus it was built from.
    """
    started = time.perf_counter()
    if embedder is None:
        from rag.models.embedder import load_embedder

        embedder = load_embedder(settings)
    if corpus is None:
        corpus = load_corpus(settings.corpus_dir, settings.chunk_max_chars, settings.corpus_format,
                             settings.field_map)
    corpus.chunks = chunks = with_reprint_groups(corpus)
    sentences, owners = _sentences(chunks)
    tokens, pinyin, keyword_index, glossary = _keyword_side(chunks, progress)
    embed_started = time.perf_counter()
    chunk_vectors, sentence_vectors, embedded = _embed(embedder, chunks, sentences, owners, settings, progress, reuse)
    embed_seconds = time.perf_counter() - embed_started
    milvus = check_store(settings) == "milvus"  # else FAISS, files in the build folder
    dense = None if milvus else vector_index(chunk_vectors, settings.hnsw_from)
    sentence_index = None if milvus else vector_index(sentence_vectors, settings.hnsw_from)

    root = settings.index_dir
    tmp = final = None
    try:
        tmp = _new_build_folder(root)
        store = {}
        if milvus:  # the filter fields as the in-process filter reads them (HybridIndex's)
            rows = HybridIndex(None, chunks, keyword_index, {}, tmp)
            store["milvus"] = write_collections(settings, tmp, chunk_vectors, sentence_vectors, owners,
                                                rows.day_spans, list(rows.outlet_keys))
        pinyin_index = BM25Index(pinyin)
        _write_parts(tmp, dense, sentence_index, owners, glossary, chunks, tokens, pinyin,
                     (keyword_index, pinyin_index))
        manifest = _manifest(settings, embedder, corpus, tmp, started,
                             {"embedded": embedded, "sentences": len(sentences), "glossary": len(glossary)}, store,
                             embed_seconds)
        (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        sync_files(tmp)
        final = root / f"build-{time.strftime('%Y%m%d-%H%M%S')}-{tmp.name.rsplit('-', 1)[1]}"
        publish_folder(tmp, final)
        point_symlink(root / CURRENT, final.name)  # readers see the old build or the new, never half
    except (OSError, RuntimeError, RagError) as exc:  # faiss reports a failed write as RuntimeError
        for leftover in (tmp, final):
            if leftover is not None:
                if milvus:
                    drop_build(leftover, settings)
                shutil.rmtree(leftover, ignore_errors=True)
        if isinstance(exc, RagError):  # Milvus's, which says what to do
            raise
        raise RagError(f"could not write the index under {root} ({exc}); the previous index is unchanged. "
                       f"Free disk space (or fix permissions) and run `rag index` again.") from exc
    _remove_old_builds(root, keep=final.name, settings=settings)
    index = HybridIndex(dense, chunks, keyword_index, manifest, final, sentence_index,
                        np.asarray(owners, dtype=np.int64), pinyin_index, glossary,
                        *(open_stores(settings, final) if milvus else ()))
    return index, corpus


def _new_build_folder(root: Path) -> Path:
    """An empty temporary folder for a build under ``root``, named for this process."""
    return make_staging_folder(root, prefix=f".tmp-{os.getpid()}-")  # the pid: see _tmp_in_use


def _write_parts(folder: Path, dense, sentence_index, owners: list[int], glossary: dict,
                 chunks: list[Chunk], tokens: list, pinyin: list, matrices: tuple) -> None:
    """Write every file of a build but the manifest (which holds their checksums); ``matrices``:
    the words' and the pinyin's BM25Index."""
    if dense is not None:  # else the vectors are in Milvus
        faiss = _faiss()
        faiss.write_index(dense, str(folder / FAISS_FILE))
        faiss.write_index(sentence_index, str(folder / SENTENCES_FILE))
    (folder / OWNERS_FILE).write_text(json.dumps(owners), encoding="utf-8")
    (folder / GLOSSARY_FILE).write_text(json.dumps(glossary, ensure_ascii=False), encoding="utf-8")
    with (folder / CHUNKS_FILE).open("w", encoding="utf-8") as out:
        for chunk, toks, pys in zip(chunks, tokens, pinyin):
            row = {**dataclasses.asdict(chunk), "tokens": toks, "pinyin": pys}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    for matrix, name in zip(matrices, (KEYWORDS, PINYIN)):
        matrix.save(folder, name)


def _manifest(settings: Settings, embedder, corpus: Corpus, folder: Path, started: float, counts: dict,
              store: dict, embed_seconds: float = 0.0) -> dict:
    """What the build in ``folder`` was made from and holds; ``counts``: embedded, sentences, glossary;
    ``store``: {"milvus": its URI and collections} when the vectors are in Milvus. The build's own
    figures (time embedding, texts/s, peak memory) are kept for `rag bench --archive`."""
    vector_files = () if store else (FAISS_FILE, SENTENCES_FILE)
    keyword_files = sorted(p.name for name in (KEYWORDS, PINYIN) for p in folder.glob(f"{name}.*"))
    return {
        "format_version": FORMAT_VERSION,
        "embedder": {"name": embedder.spec.name, "checksum": embedder.spec.checksum,
                     "engine": getattr(embedder, "engine", "unknown")},
        "dimension": int(embedder.dim),
        "chunker_version": CHUNKER_VERSION,
        "chunk_max_chars": settings.chunk_max_chars,
        "corpus_format": settings.corpus_format,
        "field_map": settings.field_map,
        "tokenizer": TOKENIZER_ID,
        "reprints_version": REPRINTS_VERSION,
        "corpus_checksum": corpus.checksum,
        "corpus_dir": str(settings.corpus_dir),
        **archive_summary(corpus),
        "counts": {"pages": len(corpus.pages), "articles": len(corpus.articles), "chunks": len(corpus.chunks),
                   "outlets": len({a.paper for a in corpus.articles if a.paper}),
                   "reprint_groups": len({c.group for c in corpus.chunks if c.group}),
                   **counts, "skipped": len(corpus.skipped), "refused": len(corpus.refused),
                   "problems": len(corpus.problems)},
        "skipped": [{"file": f, "reason": r} for f, r in corpus.skipped],
        "refused": [{"file": r.file, "kind": r.kind, "reason": r.reason} for r in corpus.refused],
        "problems": [{"file": f, "problem": p} for f, p in corpus.problems[:1000]],  # the count is in counts
        "store": settings.store,
        **store,
        "files": {name: sha256_file(folder / name)
                  for name in (*vector_files, OWNERS_FILE, CHUNKS_FILE, GLOSSARY_FILE, *keyword_files)},
        "built_at": timestamp(),
        "build_seconds": round(time.perf_counter() - started, 3),
        "embedding": {"seconds": round(embed_seconds, 1), "engine": getattr(embedder, "engine", "unknown"),
                      "texts_per_s": round(counts["embedded"] / embed_seconds, 1) if counts["embedded"] else None},
        "peak_rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> int:
    """This process's peak resident memory so far, in MiB (Linux reports ru_maxrss in KiB)."""
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)


def with_reprint_groups(corpus: Corpus) -> list[Chunk]:
    """The corpus's chunks, each carrying its article's reprint group (rag.ingest.reprints)."""
    articles = corpus.articles
    groups = dict(zip(((a.source, a.number) for a in articles), group_reprints(articles)))
    return [c if groups.get((c.source, c.article_no)) is None
            else dataclasses.replace(c, group=groups[(c.source, c.article_no)]) for c in corpus.chunks]


def archive_summary(corpus: Corpus) -> dict:
    """The archive in figures for the manifest: date span, how articles are dated, formats read."""
    articles = corpus.articles
    spans = [(span, a.date) for a in articles if (span := chunk_day_span(a.date, a.date_precision))]
    precision: dict[str, int] = {}
    for a in articles:
        precision[a.date_precision] = precision.get(a.date_precision, 0) + 1
    formats: dict[str, int] = {}
    for page in corpus.pages:
        formats[page.format] = formats.get(page.format, 0) + 1
    return {"dates": {"first": min(spans)[1] if spans else None, "last": max(spans)[1] if spans else None,
                      "precision": precision},
            "formats": formats}


def vector_index(vectors: np.ndarray, hnsw_from: int):
    """An inner-product FAISS index over ``vectors``: exact (Flat) below ``hnsw_from`` rows, HNSW
    (M 32) from there on, where exact search stops being cheap (`rag bench --scale` measures
    both, with HNSW's recall against Flat). efConstruction 40, not 80: on 140k news-cn sentence
    vectors it built 2.4× faster (10.6k vs 4.4k vectors/s on 2 cores) at the same recall@10 against
    Flat (0.986 vs 0.982, 200 queries).

    HNSW's vectors are kept in 8 bits per dimension (IndexHNSWSQ, QT_8bit) over a graph built with
    fp16 distances: a served archive keeps its whole vector files resident once searches have run
    a while, and news-cn's were the largest part of that process (fp32 1.88 GB, fp16 1.08 GB,
    8-bit 0.65 GB). Measured on news-cn with eval/sets/news.jsonl (retrieval, 122 questions): the
    same recall@5 (0.865), English recall@5 (0.793) and article hit@5 (0.854) for all three; MRR
    0.742 fp16 and 0.740 8-bit. Building the graph on fp16 vectors was no slower than on fp32
    (150k sentences: 12.1 s against 13.6 s) and kept its recall@10 against exact search."""
    faiss = _faiss()
    dim = int(vectors.shape[1])
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if len(vectors) < hnsw_from:
        index = faiss.IndexFlatIP(dim)
        index.add(vectors)
        return index
    graph = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_fp16, 32, faiss.METRIC_INNER_PRODUCT)
    graph.train(vectors)  # fp16 learns nothing; FAISS wants it called
    graph.hnsw.efConstruction = 40
    searching = faiss.omp_get_max_threads()  # 1 once a searcher is open (rag.search.retrieve)
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # building an HNSW graph does use every core
    try:
        graph.add(vectors)
    finally:
        faiss.omp_set_num_threads(searching)
    index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, 32, faiss.METRIC_INNER_PRODUCT)
    index.storage.train(vectors)  # each dimension's range
    index.storage.add(vectors)
    index.hnsw = graph.hnsw  # a copy (SWIG assigns the C++ struct): the graph outlives `graph`
    index.ntotal, index.is_trained = graph.ntotal, True
    index.hnsw.efSearch = HNSW_EF_SEARCH
    return index


def _embed(embedder, chunks, sentences, owners, settings, progress, reuse):
    """Chunk and sentence vectors, L2-normalised, from one embedding pass (of the texts not in the
    embedding cache, when ``reuse``), and how many texts were embedded.

    A chunk with sentence vectors is not embedded again as a whole: its vector is the normalised
    sum of its sentences' vectors and its headline's. That halves the embedding work of a build
    (the measured retrieval figures are in eval/reports/). One-sentence chunks are embedded whole.
    """
    has_sentences = set(owners)
    whole = [i for i in range(len(chunks)) if i not in has_sentences]
    headlines = sorted({chunks[i].heading for i in has_sentences})
    # Traditional text is embedded in its Simplified form, as questions are searched (rag.script).
    texts = [search_form(t) for t in [chunks[i].context_text for i in whole] + headlines + sentences]
    embedded = len(texts)
    if reuse:
        cache = EmbeddingCache.for_embedder(settings.cache_dir, embedder.spec)
        before = len(cache.vectors)
        vectors = cache.embed(embedder, texts, settings.embed_batch_size, progress)
        embedded = len(cache.vectors) - before
    else:
        vectors = np.ascontiguousarray(embedder.embed_passages(
            texts, batch_size=settings.embed_batch_size, show_progress=progress), dtype=np.float32)
    faiss = _faiss()
    faiss.normalize_L2(vectors)
    chunk_vectors = np.zeros((len(chunks), vectors.shape[1]), dtype=np.float32)
    chunk_vectors[whole] = vectors[: len(whole)]
    headline_vectors = dict(zip(headlines, vectors[len(whole): len(whole) + len(headlines)]))
    sentence_vectors = vectors[len(whole) + len(headlines):]
    np.add.at(chunk_vectors, np.asarray(owners, dtype=np.int64), sentence_vectors)
    for i in has_sentences:
        chunk_vectors[i] += headline_vectors[chunks[i].heading]
    faiss.normalize_L2(chunk_vectors)
    return chunk_vectors, np.ascontiguousarray(sentence_vectors), embedded


def _keyword_side(chunks: list[Chunk], progress: bool = False):
    """jieba tokens, pinyin tokens, the BM25 index and the glossary of the chunks.

    From POOL_FROM chunks on, the texts are tokenised by one process per usable CPU: tokenising
    200,000 news chunks takes ~7 minutes in one process, a sizeable share of an archive build.
    The workers are spawned, not forked, because the embedder's thread pools already run here.
    """
    import multiprocessing

    from tqdm import tqdm

    texts = [c.context_text for c in chunks]
    workers = min(usable_cpus(), 8) if len(texts) >= POOL_FROM else 1
    bar = dict(desc="keywords", unit="chunk", total=len(texts), disable=not progress or len(texts) < 2000)
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            pairs = list(tqdm(pool.imap(keywords_of, texts, chunksize=256), **bar))
    else:
        pairs = [keywords_of(t) for t in tqdm(texts, **bar)]
    tokens = [t for t, _ in pairs]
    pinyin = [p for _, p in pairs]
    keyword_index = BM25Index(tokens)
    return tokens, pinyin, keyword_index, build_glossary(keyword_index.vocabulary, (c.text for c in chunks))


def _sentences(chunks: list[Chunk]) -> tuple[list[str], list[int]]:
    """The sentences of multi-sentence chunks and the numbers of their chunks.

    Matching a question against single sentences as well as whole chunks helps most where a
    long passage's vector is dominated by other topics, as for English questions.
    """
    pairs = [(sentence, number) for number, chunk in enumerate(chunks) for sentence in chunk_sentences(chunk.text)]
    return [sentence for sentence, _ in pairs], [number for _, number in pairs]


def _remove_old_builds(root: Path, keep: str, settings: Settings | None = None) -> None:
    for path in root.iterdir():
        if path.is_dir() and not path.is_symlink() and path.name != keep and (
                path.name.startswith("build-") or path.name.startswith(".tmp-")):
            if path.name.startswith(".tmp-") and _tmp_in_use(path):
                continue
            if (path / MARKER).is_file():  # its vectors are Milvus collections: dropped with it
                drop_build(path, settings)
            shutil.rmtree(path, ignore_errors=True)


def _tmp_in_use(path: Path) -> bool:
    """A temporary build folder of a process that is still running is left alone."""
    try:
        pid = int(path.name.split("-")[1])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


