"""Hybrid search → passages: dense (FAISS) and keyword (BM25) scores fused per question.

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
import unicodedata
from dataclasses import asdict, dataclass

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from rag.config import Settings
from rag.ingest.corpus import corpus_checksum
from rag.ingest.discovery import discover_pages
from rag.errors import BadQuestion, CorpusError, IndexMismatch, IndexNotBuilt
from rag.search.index import HybridIndex, build_index, chunk_sentences, load_index
from rag.search.crossling import romanised_name_tokens, translate
from rag.search.keywords import tokenize
from rag.textnorm import unencodable_at

MAX_K = 50
# Weight of the Chinese keyword score when every question token is known to the keyword index.
KEYWORD_WEIGHT = 0.4
# Weight of the glossary-translated keywords when every English content word is translated.
TRANSLATION_WEIGHT = 0.3
# Weight of romanised-name matches.
PINYIN_WEIGHT = 0.3
# The keyword signals together never outweigh the dense similarity by more than this.
MAX_KEYWORD_WEIGHT = 0.6


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with where it comes from and how it scored."""

    text: str
    article: str
    source: str
    paragraph: int
    score: float
    chunk_id: str
    article_no: int
    kind: str
    kicker: str | None
    start: int
    end: int
    dense_score: float
    keyword_score: float
    rank: int

    def to_document(self) -> Document:
        """The passage as a LangChain Document (text as page_content, the rest as metadata)."""
        metadata = asdict(self)
        text = metadata.pop("text")
        return Document(page_content=text, metadata=metadata, id=self.chunk_id)


def _top(scores: np.ndarray, depth: int) -> np.ndarray:
    """Positions of the ``depth`` highest scores, best first, without sorting them all (100k+)."""
    if depth >= len(scores):
        return np.argsort(-scores, kind="stable")
    top = np.argpartition(-scores, depth - 1)[:depth]
    return top[np.argsort(-scores[top], kind="stable")]


def validate_question(question, settings: Settings) -> str:
    """Clean a question and reject what cannot be searched.

    Raises:
        BadQuestion: not text (or holding a lone surrogate), empty, or longer than
            settings.max_question_chars.
    """
    if isinstance(question, bytes):
        try:
            question = question.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadQuestion("the question is not valid UTF-8 text; send it as UTF-8") from exc
    if not isinstance(question, str):
        raise BadQuestion(f"the question must be text, not {type(question).__name__}")
    if (at := unencodable_at(question)) is not None:  # it would fail inside the embedder's tokenizer
        raise BadQuestion(f"the question holds a lone surrogate (U+{ord(question[at]):04X}) at character "
                          f"{at + 1}, which is not text; send the question as UTF-8 text")
    cleaned = "".join(ch for ch in unicodedata.normalize("NFC", question)
                      if unicodedata.category(ch) not in ("Cc", "Cf") or ch in "\n\t")
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        raise BadQuestion("the question is empty; type a question about the newspaper pages")
    if not any(ch.isalnum() for ch in cleaned):
        raise BadQuestion("the question has no words, only punctuation or symbols; type a question")
    if len(cleaned) > settings.max_question_chars:
        raise BadQuestion(f"the question is {len(cleaned):,} characters long; the limit is "
                          f"{settings.max_question_chars:,} — ask about one thing at a time")
    return cleaned


class HybridSearcher:
    """Searches one loaded index with one embedder; thread-safe for concurrent questions."""

    def __init__(self, index: HybridIndex, embedder, settings: Settings):
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self._lock = threading.Lock()
        self._recent: dict[str, np.ndarray] = {}
        self.fingerprint: tuple = ()

    def search(self, question: str, k: int = 5) -> list[Passage]:
        """The k best passages for an already validated question."""
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
            raise BadQuestion(f"k must be a whole number from 1 to {MAX_K}, not {k!r}")
        index = self.index
        n = len(index.chunks)
        if n == 0:
            return []
        depth = min(n, max(self.settings.fusion_depth, k))
        with self._lock:  # one query at a time through torch and faiss
            query = self._query_vector(question)[None, :]
            _, ids = index.faiss_index.search(query, depth)
            sentence_best = self._sentence_scores(query, depth)
        candidates = dict.fromkeys(int(i) for i in ids[0] if i >= 0)
        candidates.update(dict.fromkeys(sentence_best))
        signals = self._keyword_signals(question)
        for weight, scores in signals:
            candidates.update(dict.fromkeys(int(i) for i in _top(scores, depth) if scores[i] > 0))
        cand = np.fromiter(candidates, dtype=np.int64)
        dense = index.faiss_index.reconstruct_batch(cand) @ query[0]
        dense = np.maximum(dense, [sentence_best.get(int(i), -1.0) for i in cand])
        keyword_total = sum(w for w, _ in signals)
        scale = min(1.0, MAX_KEYWORD_WEIGHT / keyword_total) if keyword_total else 0.0
        fused = (1 - keyword_total * scale) * _minmax(dense)
        for weight, scores in signals:
            fused += weight * scale * _scaled(scores[cand])
        keyword = signals[0][1] if signals else np.zeros(n, dtype=np.float32)
        order = np.argsort(-fused, kind="stable")[:k]
        passages = []
        for rank, j in enumerate(order, start=1):
            c = index.chunks[cand[j]]
            passages.append(Passage(
                text=c.text, article=c.article, source=c.source, paragraph=c.paragraph,
                score=float(fused[j]), chunk_id=c.chunk_id, article_no=c.article_no, kind=c.kind,
                kicker=c.kicker, start=c.start, end=c.end, dense_score=float(dense[j]),
                keyword_score=float(keyword[cand[j]]), rank=rank,
            ))
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
            query = self._query_vector(question)
        out = []
        for p in passages:
            position = index.position(p.chunk_id)
            sentences = chunk_sentences(p.text)
            ids = np.flatnonzero(index.sentence_owner == position) if position is not None else []
            if not sentences or len(ids) != len(sentences):
                out.append([(p.text, float(index.faiss_index.reconstruct(position) @ query)
                             if position is not None else p.dense_score)])
                continue
            scores = index.sentence_index.reconstruct_batch(ids) @ query
            out.append(list(zip(sentences, map(float, scores))))
        return out

    def _sentence_scores(self, query: np.ndarray, depth: int) -> dict[int, float]:
        """Best sentence similarity per chunk, over the top sentence matches."""
        index = self.index
        if index.sentence_index is None or index.sentence_index.ntotal == 0:
            return {}
        scores, ids = index.sentence_index.search(query, min(index.sentence_index.ntotal, 3 * depth))
        best: dict[int, float] = {}
        for score, i in zip(scores[0], ids[0]):
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


def retrieve(question: str, k: int = 5, settings: Settings | None = None) -> list[Passage]:
    """The k passages that best answer the question, best first.

    Args:
        question: in Chinese or English (or another language the embedder reads).
        k: how many passages, 1–50.
        settings: configuration; `Settings.from_env()` if None.
    Returns:
        Passages with `.text .article .source .paragraph .score .chunk_id`.
    Raises:
        BadQuestion: empty or over-long question, k out of range.
    """
    settings = settings or Settings.from_env()
    cleaned = validate_question(question, settings)
    return open_searcher(settings).search(cleaned, k)


class HybridRetriever(BaseRetriever):
    """The hybrid search as a LangChain retriever returning Documents with passage metadata."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    k: int = 5
    settings: Settings | None = None

    def _get_relevant_documents(self, query: str, *,
                                run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [p.to_document() for p in retrieve(query, self.k, self.settings)]
