"""Chinese keyword search: jieba tokens scored with BM25 (rank-bm25)."""

from __future__ import annotations

import logging
import re
from functools import lru_cache

import numpy as np

TOKENIZER_ID = "jieba-search-v1"

# Function words that match everywhere and carry no topic; kept short on purpose.
STOPWORDS = frozenset(
    "的 了 是 在 和 与 及 等 也 都 而 就 被 把 对 为 以 之 其 这 那 有 个 着 将 从 到 于 由 并 或 "
    "吗 呢 吧 啊 哪 什么 多少 几 怎么 如何 哪些 哪个 谁 是否 为什么 "
    "the a an of in on at to for is are was were be by with and or what which who how many much "
    "did does do when where why this that from as it its about".split()
)
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
        if token and _TOKEN_OK.search(token) and token not in STOPWORDS:
            tokens.append(token)
    return tokens


def words(text: str) -> list[str]:
    """Jieba's words of a text (precise mode, no sub-words), lower-cased, without punctuation
    and stopwords."""
    return [t for t in (t.strip() for t in _jieba().cut(text.lower()))
            if t and _TOKEN_OK.search(t) and t not in STOPWORDS]


class BM25Index:
    """BM25 over tokenised passages; built from token lists so it can be persisted as JSON."""

    def __init__(self, tokenized: list[list[str]]):
        from rank_bm25 import BM25Okapi

        self.tokenized = tokenized
        # rank-bm25 divides by zero on an empty corpus or empty documents: give each a placeholder.
        safe = [tokens or ["\u0000"] for tokens in tokenized] or [["\u0000"]]
        self._bm25 = BM25Okapi(safe)
        self.vocabulary = set(self._bm25.idf)

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every passage for the query tokens."""
        known = [t for t in query_tokens if t in self.vocabulary]
        if not known:
            return np.zeros(len(self.tokenized), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(known), dtype=np.float32)[: len(self.tokenized)]

    def coverage(self, query_tokens: list[str]) -> float:
        """Share of the query's tokens that occur in the corpus (0 for an English question)."""
        if not query_tokens:
            return 0.0
        return sum(1 for t in query_tokens if t in self.vocabulary) / len(query_tokens)
