"""Chinese keyword search: jieba tokens scored with BM25."""

from __future__ import annotations

import logging
import re
from collections import Counter
from functools import lru_cache

import numpy as np

from rag.textnorm import KEYWORD_STOPWORDS

# v2: pinyin and keyword runs read Extension A and compatibility ideographs as Chinese too
# (rag.textnorm.CJK), so an index built before is rebuilt rather than read with other tokens.
TOKENIZER_ID = "jieba-search-v2"

_TOKEN_OK = re.compile(r"[\w]", re.UNICODE)


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def tokenize(text: str) -> list[str]:
    """Search-mode jieba tokens, lower-cased, without punctuation and stopwords.

    Args:
        text: Chinese, English or mixed text.
    Returns:
        Tokens; long words also yield their sub-words ("乡村振兴" → "乡村", "振兴", "乡村振兴").
    """
    tokens = []
    for token in _jieba().cut_for_search(text.lower()):
        token = token.strip()
        if token and _TOKEN_OK.search(token) and token not in KEYWORD_STOPWORDS:
            tokens.append(token)
    return tokens


def words(text: str) -> list[str]:
    """Jieba's words of a text (precise mode, no sub-words), lower-cased, without punctuation
    and stopwords."""
    return [t for t in (t.strip() for t in _jieba().cut(text.lower()))
            if t and _TOKEN_OK.search(t) and t not in KEYWORD_STOPWORDS]


class BM25Index:
    """Okapi BM25 over tokenised passages, as a sparse passage × word matrix of term weights.

    The scores are rank-bm25's ``BM25Okapi`` (k1 1.5, b 0.75, an idf below zero raised to 0.25 ×
    the mean idf), but a query reads only its words' columns instead of looping over every
    passage in Python: what keeps keyword search fast at 100k passages. Built from token lists,
    so the index persists as JSON.
    """

    K1, B, EPSILON = 1.5, 0.75, 0.25

    def __init__(self, tokenized: list[list[str]]):
        from scipy.sparse import csc_matrix

        self.tokenized = tokenized
        # An empty corpus or passage still gets a well-defined score (0): give each a placeholder.
        safe = [tokens or ["\u0000"] for tokens in tokenized] or [["\u0000"]]
        self._words: dict[str, int] = {}
        rows, columns, counts = [], [], []
        for row, tokens in enumerate(safe):
            for word, count in Counter(tokens).items():
                rows.append(row)
                columns.append(self._words.setdefault(word, len(self._words)))
                counts.append(count)
        rows_a, columns_a, tf = np.asarray(rows), np.asarray(columns), np.asarray(counts, dtype=np.float64)
        length = np.asarray([len(tokens) for tokens in safe], dtype=np.float64)
        norm = self.K1 * (1 - self.B + self.B * length / length.mean())
        weights = tf * (self.K1 + 1) / (tf + norm[rows_a])
        self._weights = csc_matrix((weights.astype(np.float32), (rows_a, columns_a)),
                                   shape=(len(safe), len(self._words)))
        df = np.bincount(columns_a, minlength=len(self._words))
        idf = np.log(len(safe) - df + 0.5) - np.log(df + 0.5)
        idf[idf < 0] = self.EPSILON * idf.mean()
        self._idf = idf
        self.vocabulary = set(self._words)

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every passage for the query tokens (a repeated token counts again)."""
        known = Counter(self._words[t] for t in query_tokens if t in self._words)
        if not known:
            return np.zeros(len(self.tokenized), dtype=np.float32)
        columns = list(known)
        weights = np.asarray([self._idf[c] * known[c] for c in columns])
        return np.asarray(self._weights[:, columns] @ weights, dtype=np.float32)[: len(self.tokenized)]

    def coverage(self, query_tokens: list[str]) -> float:
        """Share of the query's tokens that occur in the corpus (0 for an English question)."""
        if not query_tokens:
            return 0.0
        return sum(1 for t in query_tokens if t in self.vocabulary) / len(query_tokens)
