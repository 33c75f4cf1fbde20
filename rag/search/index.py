"""The hybrid index on disk: FAISS (dense) + BM25 tokens (keywords) + chunk store + manifest.

Layout under the index folder (`vectorstore/`):

    current -> build-<time>/     symlink, swapped atomically when a new build is complete
    build-<time>/manifest.json   embedder id and checksum, dimension, versions, checksums, counts
    build-<time>/faiss.index     inner-product index over L2-normalised chunk vectors
    build-<time>/sentences.index the same for each sentence of a multi-sentence chunk
    build-<time>/sentences.json  which chunk each sentence vector belongs to
    build-<time>/chunks.jsonl    one chunk per line, with its BM25 tokens and pinyin tokens
    build-<time>/glossary.json   English → corpus words, from CC-CEDICT (see rag.search.crossling)

With RAG_STORE=milvus the two FAISS files are Milvus collections instead (`rag.search.milvus`:
`milvus.json` names them; `milvus.db/` holds them when Milvus Lite is used); the rest is the same.

No pickle anywhere. Building is `rag.search.build`; this module loads and checks what it wrote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.config import Settings
from rag.ingest.article import date_order
from rag.ingest.chunks import CHUNKER_VERSION, Chunk
from rag.ingest.reprints import REPRINTS_VERSION
from rag.errors import IndexMismatch, IndexNotBuilt
from rag.search.crossling import syllables_of
from rag.search.filters import chunk_day_span, outlet_key
from rag.search.keywords import TOKENIZER_ID, BM25Builder, BM25Index, pinyin_of
from rag.search.stores import FaissStore, VectorStore
from rag.files import sha256_file
from rag.textnorm import split_sentences

# 3: chunks carry article metadata (date, outlet, page, sub-heading, reprint group); an index of
# format 2 is rebuilt, never read as if it had none.
FORMAT_VERSION = 3
MMAP_FROM = 64 * 2**20  # index files from this size on are memory-mapped (_read_vectors)
HNSW_EF_SEARCH = 128  # candidates an HNSW search visits: recall against speed
MANIFEST = "manifest.json"
FAISS_FILE = "faiss.index"
SENTENCES_FILE = "sentences.index"
OWNERS_FILE = "sentences.json"
CHUNKS_FILE = "chunks.jsonl"
GLOSSARY_FILE = "glossary.json"
# The BM25 matrices of the chunks' words and pinyin (BM25Index.save); a build made before they were
# written has only the token lists in chunks.jsonl, and its matrices are made from those at load.
KEYWORDS, PINYIN = "keywords", "pinyin"
MIN_SENTENCE_CHARS = 6
# Chunk fields whose values repeat across chunks (an article's headline, file, date, outlet …): read
# once, kept once — each chunk of the whole news-cn index held its own copies otherwise.
SHARED_FIELDS = frozenset({"source", "article", "kind", "kicker", "date", "date_precision", "paper", "page",
                           "section", "url", "headline_source", "subhead", "group"})
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
    # The vectors as fusion reads them (rag.search.stores): FAISS's by default, made from the two
    # indexes above; Milvus's when the index was built for RAG_STORE=milvus (faiss_index is None).
    dense_store: VectorStore | None = None
    sentence_store: VectorStore | None = None

    def __post_init__(self):
        if self.dense_store is None and self.faiss_index is not None:
            self.dense_store = FaissStore(self.faiss_index)
        if self.sentence_store is None and self.sentence_index is not None:
            self.sentence_store = FaissStore(self.sentence_index)

    @property
    def syllables(self) -> set[str]:
        """Pinyin syllables of the corpus, for reading romanised names in questions."""
        if not hasattr(self, "_syllables"):
            self._syllables = syllables_of(self.pinyin.vocabulary - {"\u0000"})  # BM25's empty-passage mark
        return self._syllables

    def position(self, chunk_id: str) -> int | None:
        """Where a chunk sits in `chunks` (and in the FAISS and BM25 rows), or None."""
        if not hasattr(self, "_positions"):
            self._positions = {c.chunk_id: i for i, c in enumerate(self.chunks)}
        return self._positions.get(chunk_id)

    @property
    def day_spans(self) -> np.ndarray:
        """(n, 2) first and last ordinal day of each chunk's date, -1 where it cannot be placed."""
        if not hasattr(self, "_spans"):
            spans = [chunk_day_span(c.date, c.date_precision) or (-1, -1) for c in self.chunks]
            self._spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
        return self._spans

    @property
    def outlet_keys(self) -> np.ndarray:
        """Each chunk's outlet as filters compare it ("" where unknown)."""
        if not hasattr(self, "_outlets"):
            # Fixed-width strings, not objects: comparing them is vectorised (a filter over 30k
            # chunks took 110 ms with objects and np.isin, ~1 ms so).
            self._outlets = np.asarray([outlet_key(c.paper) for c in self.chunks], dtype=str)
        return self._outlets

    def article_chunks(self, source: str, article_no: int) -> list[Chunk]:
        """The chunks of one article, in order."""
        if not hasattr(self, "_by_article"):
            by_article: dict[tuple, list[Chunk]] = {}
            for c in self.chunks:
                by_article.setdefault((c.source, c.article_no), []).append(c)
            self._by_article = by_article
        return list(self._by_article.get((source, article_no), []))

    def group_members(self, group: str | None) -> list[Chunk]:
        """One chunk (the first) of each article in a reprint group, earliest printing first."""
        if not hasattr(self, "_groups"):
            groups: dict[str, dict[tuple, Chunk]] = {}
            for c in self.chunks:
                if c.group:
                    groups.setdefault(c.group, {}).setdefault((c.source, c.article_no), c)
            # Earliest printing first, the order rag.ingest.reprints.earliest uses (ties: corpus order).
            self._groups = {g: sorted(m.values(), key=lambda c: date_order(c.date)) for g, m in groups.items()}
        return list(self._groups.get(group, [])) if group else []

    def chunk_pinyin(self, chunk_id: str) -> list[str]:
        """The pinyin tokens of a chunk, as the build stored them ([] if unknown or none kept).
        Computed again from its text (~1 ms) rather than kept: see BM25Index."""
        i = self.position(chunk_id)
        return pinyin_of(self.chunks[i].context_text) if i is not None and self.pinyin is not None else []

    def status(self) -> "IndexStatus":
        """What the index holds, for status lines and reports (instead of the raw manifest)."""
        m = self.manifest
        counts = m.get("counts", {})
        return IndexStatus(pages=counts.get("pages", 0), articles=counts.get("articles", 0),
                           outlets=counts.get("outlets", 0), first_date=m.get("dates", {}).get("first"),
                           last_date=m.get("dates", {}).get("last"), reprint_groups=counts.get("reprint_groups", 0),
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
    outlets: int
    first_date: str | None  # the archive's date span (dated articles only)
    last_date: str | None
    reprint_groups: int
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


def chunk_sentences(text: str) -> list[str]:
    """The sentences of a chunk that get vectors of their own (none for a one-sentence chunk)."""
    parts = [s.strip() for s in split_sentences(text) if len(s.strip()) >= MIN_SENTENCE_CHARS]
    return parts if len(parts) >= 2 else []


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
    if (manifest.get("chunker_version"), manifest.get("tokenizer"), manifest.get("reprints_version")) != (
            CHUNKER_VERSION, TOKENIZER_ID, REPRINTS_VERSION):
        problems.append("it was built by an older version of the chunker")
    if manifest.get("chunk_max_chars") != settings.chunk_max_chars:
        problems.append(f"it was built with chunks of {manifest.get('chunk_max_chars')} characters")
    if (manifest.get("corpus_format"), manifest.get("field_map")) != (settings.corpus_format, settings.field_map):
        problems.append(f"it was built reading the files as {manifest.get('corpus_format')!r} with field map "
                        f"{manifest.get('field_map')!r}")
    built_for = (manifest.get("store", "faiss"), manifest.get("milvus", {}).get("uri", ""))
    if built_for != (settings.store, settings.milvus_uri if settings.store == "milvus" else ""):
        problems.append(f"it was built for the {built_for[0]} store{' at ' + built_for[1] if built_for[1] else ''}, "
                        f"not {settings.store}{' at ' + settings.milvus_uri if settings.milvus_uri else ''}")
    if corpus_checksum is not None and manifest.get("corpus_checksum") != corpus_checksum:
        problems.append(f"the pages in {settings.corpus_dir} changed since it was built")
    if problems:
        raise IndexMismatch(f"the index in {settings.index_dir} is stale: {'; '.join(problems)}; {REBUILD_HINT}")


def _read_vectors(path: Path):
    """A FAISS index file, its vectors (and HNSW graph) memory-mapped rather than read when large.

    Why: the whole news-cn index holds 1.9 GB of vectors, and read into memory they were the
    largest part of a serving process; mapped, the pages a search touches are cached by the
    kernel, shared between processes serving one build and given back under memory pressure. A
    build replaced meanwhile is safe: its deleted files stay readable while mapped.
    """
    faiss = _faiss()
    flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY if path.stat().st_size >= MMAP_FROM else 0
    return faiss.read_index(str(path), flags)


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
        dense = sentence_index = None
        if manifest.get("store", "faiss") == "milvus":
            from rag.search.milvus import open_stores

            dense_store, sentence_store = open_stores(settings, folder)
        else:
            dense, sentence_index = (_read_vectors(folder / name) for name in (FAISS_FILE, SENTENCES_FILE))
            dense_store, sentence_store = FaissStore(dense), FaissStore(sentence_index)
        for loaded in (dense, sentence_index):
            if hasattr(loaded, "hnsw"):
                loaded.hnsw.efSearch = HNSW_EF_SEARCH
        owners = np.asarray(json.loads((folder / OWNERS_FILE).read_text(encoding="utf-8")), dtype=np.int64)
        glossary = json.loads((folder / GLOSSARY_FILE).read_text(encoding="utf-8"))
        saved = f"{KEYWORDS}.words.json" in manifest.get("files", {})
        chunks, tokens, pinyin, seen = [], BM25Builder(), BM25Builder(), {}
        shared = lambda v: seen.setdefault(v, v) if isinstance(v, str) else v  # noqa: E731
        with (folder / CHUNKS_FILE).open(encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                words, sounds = row.pop("tokens"), row.pop("pinyin")
                if not saved:
                    tokens.add(words)
                    pinyin.add(sounds)
                chunks.append(Chunk(**{k: shared(v) if k in SHARED_FIELDS else v for k, v in row.items()}))
        keyword_index, pinyin_index = ((BM25Index.load(folder, KEYWORDS), BM25Index.load(folder, PINYIN))
                                       if saved else (tokens.build(), pinyin.build()))
    except (OSError, RuntimeError, ValueError, TypeError, KeyError) as exc:
        raise IndexMismatch(f"the index in {folder} cannot be read ({exc}); {REBUILD_HINT}") from exc
    consistent = (dense_store.ntotal == len(chunks) and dense_store.dim == manifest.get("dimension")
                  and sentence_store.ntotal == len(owners) and sentence_store.dim == dense_store.dim
                  and (len(owners) == 0 or 0 <= owners.min() <= owners.max() < len(chunks))
                  and keyword_index.size == pinyin_index.size == len(chunks))
    if not consistent:
        raise IndexMismatch(f"the index in {folder} is inconsistent ({dense_store.ntotal} vectors, "
                            f"{keyword_index.size} keyword rows, {len(chunks)} chunks); {REBUILD_HINT}")
    return HybridIndex(dense, chunks, keyword_index, manifest, folder, sentence_index, owners,
                       pinyin_index, glossary, dense_store, sentence_store)
