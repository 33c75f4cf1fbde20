"""Chinese keyword search: jieba tokens scored with BM25."""

from __future__ import annotations

import json
import logging
import re
from array import array
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

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


def keywords_of(text: str) -> tuple[list[str], list[str]]:
    """A chunk's jieba tokens and pinyin tokens as the index stores them: of its search form
    (Simplified; rag.script)."""
    words, sounds = _keywords_of(text)
    return list(words), list(sounds)


# A rebuild in the same process (the chat's upload, `rag add`) reads mostly the texts it read last
# time; tokenising is most of a small archive's build (seeds: 0.6 of 0.9 s). Bounded, so a large
# archive's build keeps no more than a few MB of it.
@lru_cache(maxsize=4096)
def _keywords_of(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    from rag.script import search_form
    from rag.search.crossling import pinyin_tokens

    text = search_form(text)
    return tuple(tokenize(text)), tuple(pinyin_tokens(text))


def pinyin_of(text: str) -> list[str]:
    """A chunk's pinyin tokens as the index stores them (the second half of ``keywords_of``)."""
    from rag.script import search_form
    from rag.search.crossling import pinyin_tokens

    return pinyin_tokens(search_form(text))


# jieba's dictionary counts from its own corpus: 音乐 6216, 集团 12298, 马斯克 3, 汇丰 48.
COMMON_WORD_FREQ = 1000


def common_word(word: str) -> bool:
    """Whether jieba's dictionary counts a word as a common one (a name of no one thing)."""
    return _jieba().dt.FREQ.get(word, 0) >= COMMON_WORD_FREQ


def words(text: str) -> list[str]:
    """Jieba's words of a text (precise mode, no sub-words), lower-cased, without punctuation
    and stopwords."""
    return [t for t in (t.strip() for t in _jieba().cut(text.lower()))
            if t and _TOKEN_OK.search(t) and t not in KEYWORD_STOPWORDS]


class BM25Builder:
    """Token lists in, one passage at a time, to a BM25Index: what loading an archive's index
    needs, since holding every passage's token list at once (gigabytes of Python strings at
    200,000 chunks) is what made it slow and large. Entries go into typed arrays, not lists."""

    def __init__(self):
        self.words: dict[str, int] = {}
        self.rows, self.columns, self.counts, self.lengths = array("i"), array("i"), array("i"), array("i")
        self.size = 0

    def add(self, tokens: list[str]) -> None:
        """The next passage's tokens."""
        # An empty passage still gets a well-defined score (0): give it a placeholder.
        tokens = tokens or ["\u0000"]
        for word, count in Counter(tokens).items():
            self.rows.append(self.size)
            self.columns.append(self.words.setdefault(word, len(self.words)))
            self.counts.append(count)
        self.lengths.append(len(tokens))
        self.size += 1

    def build(self) -> "BM25Index":
        """The index of the passages added."""
        index = BM25Index.__new__(BM25Index)
        self.fill(index)
        return index

    def fill(self, index: "BM25Index") -> None:
        from scipy.sparse import csc_matrix

        size = self.size
        if not size:  # an empty corpus: one placeholder passage, scored 0, never returned
            self.add([])
        rows_a, columns_a = np.frombuffer(self.rows, dtype=np.int32), np.frombuffer(self.columns, dtype=np.int32)
        tf = np.frombuffer(self.counts, dtype=np.int32).astype(np.float64)
        length = np.frombuffer(self.lengths, dtype=np.int32).astype(np.float64)
        k1, b = BM25Index.K1, BM25Index.B
        norm = k1 * (1 - b + b * length / length.mean())
        weights = tf * (k1 + 1) / (tf + norm[rows_a])
        index._words = self.words
        index._weights = csc_matrix((weights.astype(np.float32), (rows_a, columns_a)),
                                    shape=(self.size, len(self.words)))
        df = np.bincount(columns_a, minlength=len(self.words))
        idf = np.log(self.size - df + 0.5) - np.log(df + 0.5)
        idf[idf < 0] = BM25Index.EPSILON * idf.mean()
        index._idf = idf
        # Only the count is kept, not the token lists: the matrix holds all a search needs.
        index.size = size


class BM25Index:
    """Okapi BM25 over tokenised passages, as a sparse passage × word matrix of term weights.

    The scores are rank-bm25's ``BM25Okapi`` (k1 1.5, b 0.75, an idf below zero raised to 0.25 ×
    the mean idf), but a query reads only its words' columns instead of looping over every
    passage in Python: what keeps keyword search fast at 100k passages. Built from token lists,
    so the index persists as JSON.
    """

    K1, B, EPSILON = 1.5, 0.75, 0.25

    def __init__(self, tokenized: Iterable[list[str]]):
        builder = BM25Builder()
        for tokens in tokenized:
            builder.add(tokens)
        builder.fill(self)

    ARRAYS = ("data", "indices", "indptr", "idf")

    @property
    def vocabulary(self):
        """The indexed words: a view of the word → column map (a set of them cost news-cn ~20 MB more)."""
        return self._words.keys()

    def save(self, folder: Path, name: str) -> tuple[str, ...]:
        """Write the index as ``name.*`` files in ``folder``, for `load`; returns their names.

        Why files of their own: read back memory-mapped, a query touches only its words' columns,
        so a served archive keeps a few pages of the matrices resident instead of all of them
        (news-cn's words and pinyin matrices are ~360 MB), and loading needs no token lists.
        """
        weights = self._weights
        arrays = dict(zip(self.ARRAYS, (weights.data, weights.indices, weights.indptr, self._idf)))
        names = []
        for key, array in arrays.items():
            names.append(f"{name}.{key}.npy")
            np.save(folder / names[-1], np.ascontiguousarray(array))
        names.append(f"{name}.words.json")
        words = sorted(self._words, key=self._words.__getitem__)  # in column order
        (folder / names[-1]).write_text(json.dumps({"size": self.size, "rows": weights.shape[0], "words": words},
                                                   ensure_ascii=False), encoding="utf-8")
        return tuple(names)

    @classmethod
    def load(cls, folder: Path, name: str) -> "BM25Index":
        """The index `save` wrote, its matrix memory-mapped (read-only).

        Raises:
            OSError, ValueError, KeyError: a file is missing or not what `save` writes.
        """
        from scipy.sparse import csc_matrix

        meta = json.loads((folder / f"{name}.words.json").read_text(encoding="utf-8"))
        data, indices, indptr, idf = (np.load(folder / f"{name}.{key}.npy", mmap_mode="r") for key in cls.ARRAYS)
        if indices.dtype != np.int32 or indptr.dtype != np.int32 or len(indptr) != len(meta["words"]) + 1:
            raise ValueError(f"{name}: the keyword matrix does not match its vocabulary")
        index = cls.__new__(cls)
        index._words = {word: i for i, word in enumerate(meta["words"])}
        # int32 indices: scipy takes the mapped arrays as they are (no copy, no scan of their contents).
        index._weights = csc_matrix((data, indices, indptr), shape=(meta["rows"], len(meta["words"])), copy=False)
        index._idf = np.array(idf)
        index.size = meta["size"]
        return index

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every passage for the query tokens (a repeated token counts again)."""
        known = Counter(self._words[t] for t in query_tokens if t in self._words)
        if not known:
            return np.zeros(self.size, dtype=np.float32)
        columns = list(known)
        weights = np.asarray([self._idf[c] * known[c] for c in columns])
        return np.asarray(self._weights[:, columns] @ weights, dtype=np.float32)[: self.size]

    def coverage(self, query_tokens: list[str]) -> float:
        """Share of the query's tokens that occur in the corpus (0 for an English question)."""
        if not query_tokens:
            return 0.0
        return sum(1 for t in query_tokens if t in self.vocabulary) / len(query_tokens)
