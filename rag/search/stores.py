"""Vector stores: what fusion asks of a dense index, and the FAISS store (the default).

Fusion (`rag.search.retrieve`) needs three things of the vectors of chunks and of sentences: the
``depth`` nearest to a question (among the rows a filter allows), the stored vectors of given rows
(to score the keyword candidates densely), and how many there are. `VectorStore` is that and no
more; `FaissStore` answers it from a FAISS index in memory, `rag.search.milvus.MilvusStore` from
Milvus collections. Rows are numbered as `HybridIndex.chunks` (or the sentence rows) are.

The keyword index (BM25 over jieba and pinyin tokens, `rag.search.keywords`) and the chunk store
(chunks.jsonl) stay in-process for either store: Milvus's own BM25 is a later step.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from rag.config import Settings
from rag.errors import RagError
from rag.search.filters import SearchFilter

STORES = ("faiss", "milvus")
# Below this share of the index a filtered dense search scores the allowed vectors directly: an
# HNSW graph searched with a selective filter finds too few of them.
EXACT_BELOW_SHARE = 0.1


# Scores this close are a tie (identical vectors: a sentence printed twice, a reprint).
TIE = 1e-6
# How many rows past ``depth`` are asked for, to see who ties with the last one kept.
TIE_ROOM = 16


def search_with_ties(store: VectorStore, query: np.ndarray, depth: int, allowed: np.ndarray | None = None,
                     filters: SearchFilter | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`VectorStore.search`, with every row that ties with the ``depth``-th kept too.

    Which of equal scores a store returns first is its own choice (FAISS and Milvus choose
    differently), so a cut through a tie would make the candidates, and so the fused ranking,
    depend on the store.
    """
    ids, scores = store.search(query, min(store.ntotal, depth + TIE_ROOM), allowed, filters)
    real = int((ids >= 0).sum())
    if real <= depth:
        return ids, scores
    keep = depth + int((scores[depth:real] >= scores[depth - 1] - TIE).sum())
    return ids[:keep], scores[:keep]


class VectorStore(Protocol):
    """The dense side of the hybrid index, as fusion uses it."""

    ntotal: int
    dim: int

    def search(self, query: np.ndarray, depth: int, allowed: np.ndarray | None = None,
               filters: SearchFilter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Ids and inner-product scores of the ``depth`` nearest rows, best first (ids may end in -1).

        Args:
            query: (1, dim) float32, L2-normalised.
            depth: how many rows at most.
            allowed: which rows may be returned (a boolean array over all rows), or None for all.
            filters: the same rule as a `SearchFilter`, for a store that filters by fields of its own
                (Milvus); given with ``allowed`` or not at all.
        """

    def vectors(self, ids) -> np.ndarray:
        """The stored vectors of rows ``ids``, (len(ids), dim) float32, in that order."""


def check_store(settings: Settings) -> str:
    """The configured store's name.

    Raises:
        RagError: RAG_STORE names no store.
    """
    if settings.store not in STORES:
        raise RagError(f"RAG_STORE={settings.store!r} is not a store", f"set it to one of {', '.join(STORES)}")
    return settings.store


def best_first(scores: np.ndarray, depth: int) -> np.ndarray:
    """Positions of the ``depth`` highest scores, best first, without sorting them all (100k+)."""
    if depth >= len(scores):
        return np.argsort(-scores, kind="stable")
    top = np.argpartition(-scores, depth - 1)[:depth]
    return top[np.argsort(-scores[top], kind="stable")]


class FaissStore:
    """A FAISS index (Flat or HNSW, `rag.search.build.vector_index`) as a `VectorStore`."""

    def __init__(self, faiss_index):
        self.index = faiss_index

    @property
    def ntotal(self) -> int:
        return self.index.ntotal

    @property
    def dim(self) -> int:
        return self.index.d

    def vectors(self, ids) -> np.ndarray:
        return self.index.reconstruct_batch(np.asarray(ids, dtype=np.int64))

    def search(self, query: np.ndarray, depth: int, allowed: np.ndarray | None = None,
               filters: SearchFilter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """See `VectorStore.search`. A filter is a FAISS id selector inside the search; where it leaves
        under EXACT_BELOW_SHARE of an HNSW index, the allowed vectors are scored directly instead
        (exact, and cheap there). ``filters`` is not needed: ``allowed`` says it all."""
        import faiss

        from rag.search.index import HNSW_EF_SEARCH

        faiss_index = self.index
        if allowed is None:
            scores, ids = faiss_index.search(query, depth)
            return ids[0], scores[0]
        keep = np.flatnonzero(allowed)
        depth = min(depth, len(keep))
        hnsw = hasattr(faiss_index, "hnsw")
        if hnsw and len(keep) < EXACT_BELOW_SHARE * faiss_index.ntotal:
            exact = faiss_index.reconstruct_batch(keep) @ query[0]
            top = best_first(exact, depth)
            return keep[top], exact[top]
        bits = np.packbits(allowed.astype(np.uint8), bitorder="little")
        selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits))
        if hnsw:  # the graph visits disallowed nodes too: widen the beam by the share left out
            ef = int(min(4096, max(HNSW_EF_SEARCH, depth) * faiss_index.ntotal / len(keep)))
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=ef)
        else:
            params = faiss.SearchParameters(sel=selector)
        scores, ids = faiss_index.search(query, depth, params=params)
        del bits  # kept alive until the search is done: the selector points into it
        return ids[0], scores[0]
