"""Which articles match a timeline's topic: found by the hybrid search, window by window, and by a
scan of the keyword index, judged by one rule.

- The search (`retrieve_candidates`) is the answers' hybrid search (`HybridSearcher.search`,
  filters inside the search), over the whole range and then over windows of it, a window that
  comes back full being split (`_windows`): it finds what the topic is *like* (dense), one search
  returning at most 50 passages.
- Fused scores are min-max normalised per search, so they cannot be compared across windows. The
  rule reads raw scores: an article matches when its passage holds all the topic's words (the
  evidence gate's `coverage`, `MIN_TOPIC_COVERAGE`) and its BM25 score is `MIN_KEYWORD_SHARE`
  of the best for the topic, or its cosine within `DENSE_MARGIN` of the best. Measured on
  hand-labelled candidates: eval/timeline/threshold-notes.md.
- The scan (`scan_matches`) applies the keyword half of the rule to every chunk of the index
  (one BM25 scoring, then the words checked in the chunks above the bar), so a story printed
  hundreds of times is counted in full, not up to what the searches return.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.answer.evidence import coverage, question_terms
from rag.script import search_form
from rag.search.filters import SearchFilter
from rag.search.keywords import tokenize
from rag.search.retrieve import MAX_K, HybridSearcher, Passage
from rag.textnorm import detect_language

# An article matches the topic when its passage holds this share of the topic's words …
MIN_TOPIC_COVERAGE = 0.99
# … and its BM25 score is this share of the best one for the topic, or its cosine this close to the best.
MIN_KEYWORD_SHARE = 0.35
DENSE_MARGIN = 0.02
INITIAL_WINDOWS = 4  # windows the range is first searched in, after the whole range
MAX_SEARCHES = 8  # searches per timeline, all windows together
FULL_SHARE = 0.8  # a window whose search came back full and this share matching is split in two

@dataclass
class Candidate:
    """An article the searches found: its strongest passage, the share of the topic's words in it
    (`rag.answer.evidence.coverage`) and whether it matches the topic (`_judge`)."""

    passage: Passage
    coverage: float
    matches: bool = False
    searched: bool = True  # returned by the hybrid search (False: found by the keyword scan only)


def retrieve_candidates(searcher: HybridSearcher, topic: str, filters: SearchFilter | None, lo: int | None,
              hi: int | None) -> tuple[dict[tuple, Candidate], int]:
    """The articles the searches find for a topic, keyed by (source, article number), with whether
    they match; and the number of searches run.

    Args:
        searcher: the loaded hybrid searcher.
        topic: the validated topic.
        filters: the user's filter (or None); windows keep its outlets.
        lo, hi: the ordinal days to search window by window (None: the whole-range search only).
    """
    papers = filters.papers if filters is not None else ()
    found: dict[tuple, Candidate] = {}
    index = searcher.index
    # Romanised names are read only in an English topic (`coverage`): pinyin costs ~1 ms a chunk.
    names = index.pinyin is not None and detect_language(topic) == "en"

    shares: dict[str, float] = {}  # chunk id → coverage: windows find the same chunks again

    def add(passages: list[Passage]) -> int:
        for p in passages:
            key = (p.source, p.article_no)
            held = found.get(key)
            if held is None or strength(p) > strength(held.passage):
                if p.chunk_id not in shares:
                    pinyin = set(index.chunk_pinyin(p.chunk_id)) if names else None
                    shares[p.chunk_id] = coverage(topic, [p], index.glossary, index.syllables if names else None,
                                                  pinyin)[0]
                found[key] = Candidate(p, shares[p.chunk_id])
        _judge(found)
        return sum(1 for p in passages if found[(p.source, p.article_no)].matches)

    add(searcher.search(topic, MAX_K, filters))
    searches = 1
    queue = _windows(lo, hi, INITIAL_WINDOWS) if lo is not None and hi is not None else []
    while queue and searches < MAX_SEARCHES:
        a, b = queue.pop(0)
        passages = searcher.search(topic, MAX_K, SearchFilter(a, b, papers))
        searches += 1
        matched = add(passages)
        if len(passages) == MAX_K and matched >= FULL_SHARE * MAX_K and b > a:
            middle = (a + b) // 2
            queue += [(a, middle), (middle + 1, b)]
    _judge(found)
    return found, searches


def strength(p: Passage) -> tuple:
    """How strongly a passage speaks of the topic, comparable across searches (raw scores)."""
    return (p.keyword_score, p.dense_score)


def _judge(found: dict[tuple, Candidate]) -> None:
    """Mark the candidates that match, against the best raw scores found so far."""
    if not found:
        return
    best_keyword = max(c.passage.keyword_score for c in found.values())
    best_dense = max(c.passage.dense_score for c in found.values())
    for c in found.values():
        close = ((best_keyword > 0 and c.passage.keyword_score >= MIN_KEYWORD_SHARE * best_keyword)
                 or c.passage.dense_score >= best_dense - DENSE_MARGIN)
        c.matches = c.coverage >= MIN_TOPIC_COVERAGE and close


def _windows(lo: int, hi: int, n: int) -> list[tuple[int, int]]:
    """``lo``…``hi`` (ordinal days, inclusive) cut into at most ``n`` windows of equal length."""
    days = hi - lo + 1
    n = max(1, min(n, days))
    edges = np.linspace(lo, hi + 1, n + 1).round().astype(int)
    return [(int(a), int(b) - 1) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def scan_matches(searcher: HybridSearcher, topic: str, allowed: np.ndarray | None) -> dict[tuple, tuple[int, float]]:
    """Every article whose chunk passes the keyword half of the rule, over the whole index.

    Args:
        searcher: the loaded hybrid searcher.
        topic: the validated topic.
        allowed: the filter's chunk mask, or None.
    Returns:
        (source, article number) → (position of its strongest such chunk, that chunk's BM25 score);
        {} for a topic the keyword index cannot read (an English one: the search alone finds it).
    """
    index = searcher.index
    # The scores search gives a passage as `keyword_score` (`HybridSearcher._keyword_signals`).
    scores = index.bm25.scores(tokenize(search_form(topic)))
    if allowed is not None:
        scores = np.where(allowed, scores, 0.0)
    best = float(scores.max()) if len(scores) else 0.0
    terms = question_terms(topic)
    if best <= 0 or not terms:
        return {}
    found: dict[tuple, tuple[int, float]] = {}
    for i in np.flatnonzero(scores >= MIN_KEYWORD_SHARE * best):
        chunk = index.chunks[i]
        # The words as `coverage` looks for them, in the raw text (no normalising: thousands of chunks).
        text = (chunk.heading + chunk.text).lower()
        if all(t in text for t in terms):
            key = (chunk.source, chunk.article_no)
            if key not in found or scores[i] > found[key][1]:
                found[key] = (int(i), float(scores[i]))
    return found
