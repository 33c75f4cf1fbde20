"""The hybrid index on disk: FAISS (dense) + BM25 tokens (keywords) + chunk store + manifest.

Layout under the index folder (`vectorstore/`):

    current -> build-<time>/     symlink, swapped atomically when a new build is complete
    build-<time>/manifest.json   embedder id and checksum, dimension, versions, checksums, counts
    build-<time>/faiss.index     inner-product index over L2-normalised chunk vectors
    build-<time>/sentences.index the same for each sentence of a multi-sentence chunk
    build-<time>/sentences.json  which chunk each sentence vector belongs to
    build-<time>/chunks.jsonl    one chunk per line, with its BM25 tokens and pinyin tokens
    build-<time>/glossary.json   English → corpus words, from CC-CEDICT (see rag.search.crossling)

No pickle anywhere. A crash mid-build leaves a `.tmp-*` folder behind and `current` untouched.
Vectors are also kept by text in the embedding cache (`rag.search.embedcache`), so a rebuild embeds only
new or changed text and an interrupted build resumes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.config import Settings
from rag.ingest.chunks import CHUNKER_VERSION, Chunk
from rag.ingest.corpus import Corpus, load_corpus
from rag.errors import IndexMismatch, IndexNotBuilt, RagError
from rag.search.crossling import build_glossary, pinyin_tokens, syllables_of
from rag.search.embedcache import EmbeddingCache
from rag.search.keywords import TOKENIZER_ID, BM25Index, tokenize
from rag.files import make_staging_folder, point_symlink, publish_folder, sha256_file, sync_files, timestamp
from rag.textnorm import split_sentences

FORMAT_VERSION = 2
HNSW_EF_SEARCH = 128  # candidates an HNSW search visits: recall against speed
MANIFEST = "manifest.json"
FAISS_FILE = "faiss.index"
SENTENCES_FILE = "sentences.index"
OWNERS_FILE = "sentences.json"
CHUNKS_FILE = "chunks.jsonl"
GLOSSARY_FILE = "glossary.json"
MIN_SENTENCE_CHARS = 6
CURRENT = "current"
REBUILD_HINT = "run `rag index` to rebuild it"


@dataclass
class HybridIndex:
    """A loaded index: everything retrieval needs, in memory."""

    faiss_index: object
    chunks: list[Chunk]
    bm25: BM25Index
    manifest: dict
    path: Path
    sentence_index: object = None
    sentence_owner: np.ndarray | None = None
    pinyin: BM25Index | None = None
    glossary: dict | None = None

    @property
    def syllables(self) -> set[str]:
        """Pinyin syllables of the corpus, for reading romanised names in questions."""
        if not hasattr(self, "_syllables"):
            self._syllables = syllables_of([t for toks in self.pinyin.tokenized for t in toks])
        return self._syllables

    def position(self, chunk_id: str) -> int | None:
        """Where a chunk sits in `chunks` (and in the FAISS and BM25 rows), or None."""
        if not hasattr(self, "_positions"):
            self._positions = {c.chunk_id: i for i, c in enumerate(self.chunks)}
        return self._positions.get(chunk_id)

    def chunk_pinyin(self, chunk_id: str) -> list[str]:
        """The pinyin tokens stored for a chunk at build time ([] if unknown or none kept)."""
        i = self.position(chunk_id)
        return list(self.pinyin.tokenized[i]) if i is not None and self.pinyin is not None else []

    def status(self) -> "IndexStatus":
        """What the index holds, for status lines and reports (instead of the raw manifest)."""
        m = self.manifest
        counts = m.get("counts", {})
        return IndexStatus(pages=counts.get("pages", 0), articles=counts.get("articles", 0),
                           chunks=counts.get("chunks", len(self.chunks)), sentences=counts.get("sentences", 0),
                           embedded=counts.get("embedded", 0),
                           embedder=m.get("embedder", {}).get("name", "?"), dimension=int(m.get("dimension", 0)),
                           built_at=str(m.get("built_at", "")), build_seconds=float(m.get("build_seconds", 0.0)),
                           path=self.path, skipped=[(s["file"], s["reason"]) for s in m.get("skipped", [])],
                           refused=[(r["file"], r["kind"]) for r in m.get("refused", [])])


@dataclass(frozen=True)
class IndexStatus:
    """The index's counts and origin: what `rag index` prints and the chat's status line shows."""

    pages: int
    articles: int
    chunks: int
    sentences: int  # embedded one by one for the excerpts and English questions
    embedded: int  # texts embedded by the build that made it (the rest came from the cache)
    embedder: str
    dimension: int
    built_at: str  # ISO time, local zone
    build_seconds: float
    path: Path
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (file, kind): links, FIFOs…, never read


def _faiss():
    import faiss

    return faiss


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
        corpus = load_corpus(settings.corpus_dir, settings.chunk_max_chars)
    chunks = corpus.chunks
    sentences, owners = _sentences(chunks)
    tokens, pinyin, keyword_index, glossary = _keyword_side(chunks, progress)
    chunk_vectors, sentence_vectors, embedded = _embed(embedder, chunks, sentences, owners, settings, progress, reuse)
    dense = vector_index(chunk_vectors, settings.hnsw_from)
    sentence_index = vector_index(sentence_vectors, settings.hnsw_from)

    root = settings.index_dir
    tmp = final = None
    try:
        tmp = _new_build_folder(root)
        _write_parts(tmp, dense, sentence_index, owners, glossary, chunks, tokens, pinyin)
        manifest = _manifest(settings, embedder, corpus, tmp, started,
                             {"embedded": embedded, "sentences": len(sentences), "glossary": len(glossary)})
        (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        sync_files(tmp)
        final = root / f"build-{time.strftime('%Y%m%d-%H%M%S')}-{tmp.name.rsplit('-', 1)[1]}"
        publish_folder(tmp, final)
        point_symlink(root / CURRENT, final.name)  # readers see the old build or the new, never half
    except (OSError, RuntimeError) as exc:  # faiss reports a failed write as RuntimeError
        for leftover in (tmp, final):
            if leftover is not None:
                shutil.rmtree(leftover, ignore_errors=True)
        raise RagError(f"could not write the index under {root} ({exc}); the previous index is unchanged. "
                       f"Free disk space (or fix permissions) and run `rag index` again.") from exc
    _remove_old_builds(root, keep=final.name)
    index = HybridIndex(dense, chunks, keyword_index, manifest, final, sentence_index,
                        np.asarray(owners, dtype=np.int64), BM25Index(pinyin), glossary)
    return index, corpus


def _new_build_folder(root: Path) -> Path:
    """An empty temporary folder for a build under ``root``, named for this process."""
    return make_staging_folder(root, prefix=f".tmp-{os.getpid()}-")  # the pid: see _tmp_in_use


def _write_parts(folder: Path, dense, sentence_index, owners: list[int], glossary: dict,
                 chunks: list[Chunk], tokens: list, pinyin: list) -> None:
    """Write every file of a build but the manifest (which holds their checksums)."""
    faiss = _faiss()
    faiss.write_index(dense, str(folder / FAISS_FILE))
    faiss.write_index(sentence_index, str(folder / SENTENCES_FILE))
    (folder / OWNERS_FILE).write_text(json.dumps(owners), encoding="utf-8")
    (folder / GLOSSARY_FILE).write_text(json.dumps(glossary, ensure_ascii=False), encoding="utf-8")
    with (folder / CHUNKS_FILE).open("w", encoding="utf-8") as out:
        for chunk, toks, pys in zip(chunks, tokens, pinyin):
            row = {**dataclasses.asdict(chunk), "tokens": toks, "pinyin": pys}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def _manifest(settings: Settings, embedder, corpus: Corpus, folder: Path, started: float, counts: dict) -> dict:
    """What the build in ``folder`` was made from and holds; ``counts``: embedded, sentences, glossary."""
    return {
        "format_version": FORMAT_VERSION,
        "embedder": {"name": embedder.spec.name, "checksum": embedder.spec.checksum},
        "dimension": int(embedder.dim),
        "chunker_version": CHUNKER_VERSION,
        "chunk_max_chars": settings.chunk_max_chars,
        "tokenizer": TOKENIZER_ID,
        "corpus_checksum": corpus.checksum,
        "corpus_dir": str(settings.corpus_dir),
        "counts": {"pages": len(corpus.pages), "articles": len(corpus.articles), "chunks": len(corpus.chunks),
                   **counts, "skipped": len(corpus.skipped), "refused": len(corpus.refused)},
        "skipped": [{"file": f, "reason": r} for f, r in corpus.skipped],
        "refused": [{"file": r.file, "kind": r.kind, "reason": r.reason} for r in corpus.refused],
        "files": {name: sha256_file(folder / name)
                  for name in (FAISS_FILE, SENTENCES_FILE, OWNERS_FILE, CHUNKS_FILE, GLOSSARY_FILE)},
        "built_at": timestamp(),
        "build_seconds": round(time.perf_counter() - started, 3),
    }


def vector_index(vectors: np.ndarray, hnsw_from: int):
    """An inner-product FAISS index over ``vectors``: exact (Flat) below ``hnsw_from`` rows, HNSW
    (M 32) from there on, where exact search stops being cheap (`rag bench --scale` measures
    both, with HNSW's recall against Flat)."""
    faiss = _faiss()
    dim = int(vectors.shape[1])
    if len(vectors) >= hnsw_from:
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        index = faiss.IndexFlatIP(dim)
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
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
    headlines = sorted({chunks[i].article for i in has_sentences})
    texts = [chunks[i].context_text for i in whole] + headlines + sentences
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
        chunk_vectors[i] += headline_vectors[chunks[i].article]
    faiss.normalize_L2(chunk_vectors)
    return chunk_vectors, np.ascontiguousarray(sentence_vectors), embedded


def _keyword_side(chunks: list[Chunk], progress: bool = False):
    """jieba tokens, pinyin tokens, the BM25 index and the glossary of the chunks."""
    from tqdm import tqdm

    tokens, pinyin = [], []
    for c in tqdm(chunks, desc="keywords", unit="chunk", disable=not progress or len(chunks) < 2000):
        tokens.append(tokenize(c.context_text))
        pinyin.append(pinyin_tokens(c.context_text))
    keyword_index = BM25Index(tokens)
    return tokens, pinyin, keyword_index, build_glossary(keyword_index.vocabulary)


def _sentences(chunks: list[Chunk]) -> tuple[list[str], list[int]]:
    """The sentences of multi-sentence chunks and the numbers of their chunks.

    Matching a question against single sentences as well as whole chunks helps most where a
    long passage's vector is dominated by other topics, as for English questions.
    """
    pairs = [(sentence, number) for number, chunk in enumerate(chunks) for sentence in chunk_sentences(chunk.text)]
    return [sentence for sentence, _ in pairs], [number for _, number in pairs]


def chunk_sentences(text: str) -> list[str]:
    """The sentences of a chunk that get vectors of their own (none for a one-sentence chunk)."""
    parts = [s.strip() for s in split_sentences(text) if len(s.strip()) >= MIN_SENTENCE_CHARS]
    return parts if len(parts) >= 2 else []


def _remove_old_builds(root: Path, keep: str) -> None:
    for path in root.iterdir():
        if path.is_dir() and not path.is_symlink() and path.name != keep and (
                path.name.startswith("build-") or path.name.startswith(".tmp-")):
            if path.name.startswith(".tmp-") and _tmp_in_use(path):
                continue
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


def read_manifest(settings: Settings) -> dict:
    """The manifest of the current index.

    Raises:
        IndexNotBuilt: there is no index yet.
        IndexMismatch: the manifest is unreadable.
    """
    path = settings.index_dir / CURRENT / MANIFEST
    if not (settings.index_dir / CURRENT).exists():
        raise IndexNotBuilt(f"no index in {settings.index_dir}; run `rag index` to build it")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexMismatch(f"the index manifest {path} is missing or corrupt ({exc}); {REBUILD_HINT}") from exc
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatch(f"the index in {settings.index_dir} has an unknown format; {REBUILD_HINT}")
    return manifest


def check_fresh(manifest: dict, settings: Settings, embedder_spec, corpus_checksum: str | None) -> None:
    """Raise IndexMismatch when the index was built for another embedder, chunker or corpus."""
    problems = []
    if manifest.get("embedder", {}).get("checksum") != embedder_spec.checksum:
        problems.append(f"it was built with embedder {manifest.get('embedder', {}).get('name')!r}, "
                        f"not {embedder_spec.name!r}")
    if manifest.get("chunker_version") != CHUNKER_VERSION or manifest.get("tokenizer") != TOKENIZER_ID:
        problems.append("it was built by an older version of the chunker")
    if manifest.get("chunk_max_chars") != settings.chunk_max_chars:
        problems.append(f"it was built with chunks of {manifest.get('chunk_max_chars')} characters")
    if corpus_checksum is not None and manifest.get("corpus_checksum") != corpus_checksum:
        problems.append(f"the pages in {settings.corpus_dir} changed since it was built")
    if problems:
        raise IndexMismatch(f"the index in {settings.index_dir} is stale: {'; '.join(problems)}; {REBUILD_HINT}")


def load_index(settings: Settings, embedder_spec=None, corpus_checksum: str | None = None) -> HybridIndex:
    """Load the current index, verifying checksums and (when given) freshness.

    Args:
        settings: where the index lives.
        embedder_spec: the embedder queries will use; the index must have been built with it.
        corpus_checksum: the corpus as it is now; None skips the staleness check.
    Raises:
        IndexNotBuilt: no index yet.
        IndexMismatch: files missing, corrupt, or built for something else.
    """
    manifest = read_manifest(settings)
    if embedder_spec is not None:
        check_fresh(manifest, settings, embedder_spec, corpus_checksum)
    folder = (settings.index_dir / CURRENT).resolve()
    for name, expected in manifest.get("files", {}).items():
        path = folder / name
        if not path.is_file():
            raise IndexMismatch(f"the index file {path} is missing; {REBUILD_HINT}")
        if sha256_file(path) != expected:
            raise IndexMismatch(f"the index file {path} is corrupt (checksum differs); {REBUILD_HINT}")
    try:
        dense = _faiss().read_index(str(folder / FAISS_FILE))
        sentence_index = _faiss().read_index(str(folder / SENTENCES_FILE))
        for loaded in (dense, sentence_index):
            if hasattr(loaded, "hnsw"):
                loaded.hnsw.efSearch = HNSW_EF_SEARCH
        owners = np.asarray(json.loads((folder / OWNERS_FILE).read_text(encoding="utf-8")), dtype=np.int64)
        glossary = json.loads((folder / GLOSSARY_FILE).read_text(encoding="utf-8"))
        chunks, tokens, pinyin = [], [], []
        with (folder / CHUNKS_FILE).open(encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                tokens.append(row.pop("tokens"))
                pinyin.append(row.pop("pinyin"))
                chunks.append(Chunk(**row))
    except (OSError, RuntimeError, ValueError, TypeError, KeyError) as exc:
        raise IndexMismatch(f"the index in {folder} cannot be read ({exc}); {REBUILD_HINT}") from exc
    consistent = (dense.ntotal == len(chunks) and dense.d == manifest.get("dimension")
                  and sentence_index.ntotal == len(owners) and sentence_index.d == dense.d
                  and (len(owners) == 0 or 0 <= owners.min() <= owners.max() < len(chunks)))
    if not consistent:
        raise IndexMismatch(f"the index in {folder} is inconsistent ({dense.ntotal} vectors, "
                            f"{len(chunks)} chunks); {REBUILD_HINT}")
    return HybridIndex(dense, chunks, BM25Index(tokens), manifest, folder, sentence_index, owners,
                       BM25Index(pinyin), glossary)
