"""Hybrid search → passages: dense (a vector store, FAISS or Milvus: rag.search.stores) and keyword
(BM25) scores fused per question.

Dense similarity is the better of the chunk's and its best sentence's. Fusion is a convex
combination of min-max normalised scores where each keyword signal weighs by how much of the
question it can read at all: Chinese words by the share BM25 knows (`BM25Index.coverage`), English
words by the share the glossary translates, romanised names when they match (`rag.search.crossling`).
An English question thus is not dragged down by an empty keyword ranking (plain reciprocal-rank
fusion lost English evidence recall that way), yet still gets keyword help where it can.
"""

from __future__ import annotations

import sys
import threading

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from rag.config import Settings
from rag.ingest.article import display_date
from rag.ingest.corpus import corpus_checksum
from rag.ingest.discovery import discover_pages
from rag.errors import BadQuestion, CorpusError, IndexMismatch, IndexNotBuilt
from rag.script import search_form
from rag.search.build import build_index
from rag.search.filters import SearchFilter
from rag.search.index import HybridIndex, chunk_sentences, load_index
from rag.search.crossling import romanised_name_tokens, translate
from rag.search.keywords import tokenize
# Passage and validate_question live in rag.search.passage; importers take them from here too.
from rag.search.passage import Passage, passage_from_chunk, validate_question  # noqa: F401
from rag.search.stores import best_first as _top
from rag.search.stores import search_with_ties

MAX_K = 50
# Weight of the Chinese keyword score when every question token is known to the keyword index.
KEYWORD_WEIGHT = 0.4
# Weight of the glossary-translated keywords when every English content word is translated.
TRANSLATION_WEIGHT = 0.3
# Weight of romanised-name matches.
PINYIN_WEIGHT = 0.3
# The keyword signals together never outweigh the dense similarity by more than this.
MAX_KEYWORD_WEIGHT = 0.6


class HybridSearcher:
    """Searches one loaded index with one embedder; thread-safe for concurrent questions."""

    def __init__(self, index: HybridIndex, embedder, settings: Settings):
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self._lock = threading.Lock()
        self._recent: dict[str, np.ndarray] = {}
        self.fingerprint: tuple = ()
        # One query at a time gains nothing from FAISS's OpenMP threads, and their spinning after
        # a filtered search slowed the next query's embedding 3× (torch shares the two cores):
        # measured with `rag bench --archive`. Builds raise it again while they add vectors.
        import faiss

        faiss.omp_set_num_threads(1)

    def search(self, question: str, k: int = 5, filters: SearchFilter | None = None) -> list[Passage]:
        """The k best passages for an already validated question, one per reprint group.

        Args:
            question: validated (`validate_question`); Traditional is searched in Simplified form.
            k: 1–50.
            filters: dates and outlets the passages must have; applied inside the search, so a
                filter that leaves three articles still returns them.
        """
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
            raise BadQuestion(f"k must be a whole number from 1 to {MAX_K}, not {k!r}")
        index = self.index
        question = search_form(question)
        n = len(index.chunks)
        allowed = filters.mask(index.day_spans, index.outlet_keys) if filters is not None else None
        if n == 0 or (allowed is not None and not allowed.any()):
            return []
        depth = min(n, max(self.settings.fusion_depth, k))
        with self._lock:  # one query at a time through torch and faiss
            query = self._query_vector(question)[None, :]
            ids, _ = search_with_ties(index.dense_store, query, depth, allowed, filters)
            sentence_best = self._sentence_scores(query, depth, allowed, filters)
        candidates = dict.fromkeys(int(i) for i in ids if i >= 0)
        candidates.update(dict.fromkeys(sentence_best))
        signals = self._keyword_signals(question)
        if allowed is not None:
            signals = [(w, np.where(allowed, s, 0.0).astype(np.float32)) for w, s in signals]
        for weight, scores in signals:
            candidates.update(dict.fromkeys(int(i) for i in _top(scores, depth) if scores[i] > 0))
        cand = np.fromiter(candidates, dtype=np.int64)
        dense = index.dense_store.vectors(cand) @ query[0]
        dense = np.maximum(dense, [sentence_best.get(int(i), -1.0) for i in cand])
        keyword_total = sum(w for w, _ in signals)
        scale = min(1.0, MAX_KEYWORD_WEIGHT / keyword_total) if keyword_total else 0.0
        fused = (1 - keyword_total * scale) * _minmax(dense)
        for weight, scores in signals:
            fused += weight * scale * _scaled(scores[cand])
        keyword = signals[0][1] if signals else np.zeros(n, dtype=np.float32)
        passages, seen_groups = [], set()
        for j in np.argsort(-fused, kind="stable"):
            c = index.chunks[cand[j]]
            if c.group is not None:  # one copy of a reprinted story: the earliest printing's words
                if c.group in seen_groups:
                    continue
                seen_groups.add(c.group)
                c = _earliest_copy(index, c, allowed)
            passages.append(passage_from_chunk(c, len(passages) + 1, float(fused[j]), float(dense[j]),
                                               float(keyword[cand[j]]), also_in(index, c)))
            if len(passages) == k:
                break
        return passages

    def _query_vector(self, question: str) -> np.ndarray:
        """The question's vector; the last few are remembered, as an answer needs it twice (search,
        then the excerpts). Call with ``self._lock`` held."""
        vector = self._recent.pop(question, None)
        if vector is None:
            vector = np.ascontiguousarray(self.embedder.embed_queries([question]), dtype=np.float32)[0]
        self._recent[question] = vector
        while len(self._recent) > 16:
            self._recent.pop(next(iter(self._recent)))
        return vector

    def excerpt_scores(self, question: str, passages: list[Passage]) -> list[list[tuple[str, float]]]:
        """For each passage, its sentences with their similarity to the question (stored vectors)."""
        index = self.index
        with self._lock:
            query = self._query_vector(search_form(question))
        out = []
        for p in passages:
            position = index.position(p.chunk_id)
            sentences = chunk_sentences(p.text)
            ids = np.flatnonzero(index.sentence_owner == position) if position is not None else []
            if not sentences or len(ids) != len(sentences):
                out.append([(p.text, float(index.dense_store.vectors([position])[0] @ query)
                             if position is not None else p.dense_score)])
                continue
            scores = index.sentence_store.vectors(ids) @ query
            out.append(list(zip(sentences, map(float, scores))))
        return out

    def _sentence_scores(self, query: np.ndarray, depth: int, allowed: np.ndarray | None = None,
                         filters: SearchFilter | None = None) -> dict[int, float]:
        """Best sentence similarity per chunk, over the top sentence matches (of allowed chunks)."""
        index = self.index
        store = index.sentence_store
        if store is None or store.ntotal == 0:
            return {}
        owners_allowed = allowed[index.sentence_owner] if allowed is not None else None
        if owners_allowed is not None and not owners_allowed.any():
            return {}
        # A sentence row carries its chunk's date and outlet, so the same filter selects it.
        ids, scores = search_with_ties(store, query, min(store.ntotal, 3 * depth), owners_allowed, filters)
        best: dict[int, float] = {}
        for score, i in zip(scores, ids):
            if i >= 0:
                owner = int(index.sentence_owner[i])
                best[owner] = max(best.get(owner, -1.0), float(score))
        return best

    def _keyword_signals(self, question: str) -> list[tuple[float, np.ndarray]]:
        """(weight, scores per chunk) for each keyword signal that can read the question.

        Chinese words weigh by the share of the question BM25 knows; English words by the share
        the glossary translates; romanised names count when they match the corpus's pinyin.
        """
        index = self.index
        tokens = tokenize(question)
        signals = [(KEYWORD_WEIGHT * index.bm25.coverage(tokens), index.bm25.scores(tokens))]
        if index.glossary:
            translated, coverage = translate(question, index.glossary)
            if translated:
                signals.append((TRANSLATION_WEIGHT * coverage, index.bm25.scores(translated)))
        if index.pinyin is not None:
            names = romanised_name_tokens(question, index.syllables)
            if names:
                scores = index.pinyin.scores(names)
                if scores.max() > 0:
                    signals.append((PINYIN_WEIGHT, scores))
        return [(w, s) for w, s in signals if w > 0] or [(0.0, signals[0][1])]


def _earliest_copy(index: HybridIndex, chunk, allowed: np.ndarray | None):
    """The same passage in the earliest printing of its story, when that printing has it word for word
    (and passes the filter); else the chunk itself."""
    for member in index.group_members(chunk.group):
        if member.source == chunk.source and member.article_no == chunk.article_no:
            return chunk
        for other in index.article_chunks(member.source, member.article_no):
            if other.text == chunk.text:
                position = index.position(other.chunk_id)
                if allowed is None or allowed[position]:
                    return other
    return chunk


def also_in(index: HybridIndex, chunk) -> tuple[str, ...]:
    """The story's other printings as "outlet · date · headline", earliest first."""
    out = []
    for member in index.group_members(chunk.group):
        if (member.source, member.article_no) != (chunk.source, chunk.article_no):
            parts = [member.paper, display_date(member.date), member.article]
            out.append(" · ".join(p for p in parts if p))
    return tuple(out)


def _minmax(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-9:
        return np.ones_like(values)
    return (values - low) / (high - low)


def _scaled(values: np.ndarray) -> np.ndarray:
    high = float(values.max()) if len(values) else 0.0
    return values / high if high > 0 else np.zeros_like(values)


# Keyed by `Settings.index_key()`: settings that differ only per question share one searcher.
_SEARCHERS: dict[tuple, HybridSearcher] = {}
_OPEN_LOCK = threading.Lock()


def open_searcher(settings: Settings | None = None, auto_build: bool = True,
                  progress: bool = True, embedder=None) -> HybridSearcher:
    """Load (once per process and index settings) the embedder and the index, rebuilding a stale index.

    Args:
        settings: configuration; `Settings.from_env()` if None.
        auto_build: build the index when it is missing or stale instead of raising.
        progress: show progress bars while building.
        embedder: an embedder to use instead of the configured one (tests).
    Raises:
        IndexNotBuilt, IndexMismatch: only when auto_build is False.
        CorpusError: the corpus folder is missing or empty.
    """
    settings = settings or Settings.from_env()
    with _OPEN_LOCK:
        found = discover_pages(settings.corpus_dir)  # links, FIFOs… refused, never opened
        files = found.pages
        fingerprint = _fingerprint(files) + tuple((r.file, r.kind) for r in found.refused)
        cached = _SEARCHERS.get(settings.index_key())
        if embedder is None and cached is not None and cached.fingerprint == fingerprint:
            return cached
        if embedder is None:
            from rag.models.embedder import load_embedder

            embedder = load_embedder(settings)
        checksum = corpus_checksum(files, settings.corpus_dir, found.refused)
        try:
            index = load_index(settings, embedder.spec, checksum)
        except (IndexNotBuilt, IndexMismatch) as exc:
            if not auto_build:
                raise
            print(f"{exc}. Rebuilding now…", file=sys.stderr)
            index, corpus = build_index(settings, embedder, progress=progress)
            for refusal in corpus.refused:
                print(f"warning: refused {refusal.file}: {refusal.reason}", file=sys.stderr)
        searcher = HybridSearcher(index, embedder, settings)
        searcher.fingerprint = fingerprint
        _SEARCHERS[settings.index_key()] = searcher
        return searcher


def _fingerprint(files) -> tuple:
    """Names, sizes and modification times: a cheap check that the pages did not change."""
    try:
        return tuple((str(p), st.st_size, st.st_mtime_ns) for p in files for st in [p.stat()])
    except OSError as exc:  # a page removed or replaced between discovery and now
        raise CorpusError(f"a page changed while it was being read ({exc.strerror}); try again") from exc


def retrieve(question: str, k: int = 5, settings: Settings | None = None, date_from=None, date_to=None,
             paper=None) -> list[Passage]:
    """The k passages that best answer the question, best first.

    Args:
        question: in Chinese (Simplified or Traditional) or English.
        k: how many passages, 1–50.
        settings: configuration; `Settings.from_env()` if None.
        date_from, date_to: only articles dated inside this range ("2023", "2023-07", "2023-07-28";
            inclusive); an article whose date is unknown is left out when either is given.
        paper: only articles of this outlet (or any of several: a list, or comma-separated).
    Returns:
        Passages with `.text .article .source .paragraph .score .chunk_id .date .paper .page`.
    Raises:
        BadQuestion: empty or over-long question, k out of range, a date that is not one.
    """
    settings = settings or Settings.from_env()
    cleaned = validate_question(question, settings)
    filters = SearchFilter.parse(date_from, date_to, paper)
    return open_searcher(settings).search(cleaned, k, filters)


class HybridRetriever(BaseRetriever):
    """The hybrid search as a LangChain retriever returning Documents with passage metadata."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    k: int = 5
    settings: Settings | None = None
    date_from: str | None = None
    date_to: str | None = None
    paper: str | list[str] | None = None

    def _get_relevant_documents(self, query: str, *,
                                run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [p.to_document() for p in retrieve(query, self.k, self.settings, self.date_from, self.date_to,
                                                  self.paper)]
