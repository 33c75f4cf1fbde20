"""Reprint groups: the same story printed more than once (a wire story reprinted, lightly edited or
re-headlined), found at indexing time so that search can show one copy of it.

How (each choice measured on news-cn, eval/reports/reprints.md):
- An article is compared by its character 5-gram shingles over a key without whitespace and
  punctuation (so that "8 月 16 日" and "8月16日" match). Shingles found in `COMMON_DF` articles or
  more are boilerplate or template wording (责任编辑 lines, ad and copyright notices, CSS that web
  copies carry, "主力资金净流入…" of templated market reports) and are left out of every
  comparison: what two copies must share is their own text.
- Candidates come from a consistent sample of the shingles (a shingle is sampled when its hash is
  0 modulo `SAMPLE`, the same in every article) through an inverted index; each candidate pair is
  then verified on all its shingles. numpy does the hashing and counting, so 66,721 articles take
  30–40 s on two cores (no MinHash dependency: containment, which a shortened copy needs, is
  what the sample estimates directly).
- A pair is a reprint when the shorter article's shingles are at least `THRESHOLD` contained in
  the longer's, the shared text covers at least `MIN_COVER` of the longer one too (a short item is
  not a copy of a digest that quotes it), and, when both carry numbers, at least `MIN_NUMBERS`
  of the shorter one's runs of numbers are in the other (templated reports on different stocks
  or days share their wording, not their figures: `_number_pairs`). On 190 pairs judged by hand,
  two write-ups of one press release that each add paragraphs of their own sit at containment
  0.6–0.8 like light edits do; the threshold is set where the tuning half was ≥ 0.96 precise.
- Groups are built from matching pairs around a centre (the article with the most matches, then
  the longest), and every member must match every other member directly: neither a chain of
  partial matches nor a short stub matching many different articles pulls unrelated stories
  together (a looser rule, half of the members, let such pairs in on the labelled sample).
  Members left over form groups of their own the same way (`cluster`).
- A group's id is "g:" and a hash of its first member's source and number (corpus order), so it
  is the same for the same input. Which copy is the earliest printing is `earliest`'s question,
  by date.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from rag.ingest.article import date_order

if TYPE_CHECKING:
    from rag.ingest.article import Article

# Changing the rules below changes which chunks share a group: an index built under another
# version is rebuilt (the manifest records it: rag.search.build, rag.search.index.check_fresh).
REPRINTS_VERSION = "1"
SHINGLE = 5  # characters: long enough to be specific in Chinese, short enough to survive light edits
COMMON_DF = 50  # a shingle in this many articles is boilerplate or template wording
SAMPLE = 8  # one shingle in SAMPLE is indexed for candidates
THRESHOLD = 0.75  # containment of the shorter article's own shingles in the longer's (tuned)
MIN_COVER = 0.5  # ... and the shared shingles must be this share of the longer article's own
MIN_NUMBERS = 0.5  # share of the shorter one's number pairs (see _number_pairs) found in the other
NUMBERS_CHECKED = 3  # the number rule applies when both articles have this many number pairs
MIN_SHINGLES = 30  # articles with fewer own shingles say too little to be called a copy
CANDIDATE_MARGIN = 0.2  # the sampled estimate may fall this far below THRESHOLD and still be verified
_BATCH_CHARS = 4_000_000  # hash the corpus in slices of this many characters (bounded memory)
_BATCH_KEYS = 1 << 19  # and of fewer keys than the 20 bits a key's index has in a batch's sort keys

_NOT_WORD = re.compile(r"[\W_]+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_HASH_BITS = 44  # per-article shingle hashes; the doc index takes the 20 bits above in a batch
_MASK = np.uint64((1 << _HASH_BITS) - 1)


@dataclass(frozen=True)
class ReprintPair:
    """Two articles (indexes into the input) and how much text and how many figures they share."""

    a: int
    b: int
    containment: float  # shared own shingles / the shorter article's own shingles
    cover: float  # shared own shingles / the longer article's own shingles
    numbers: float | None  # shared number pairs / the shorter set; None when too few to judge

    def is_reprint(self, threshold: float = THRESHOLD) -> bool:
        """True when the pair passes all three rules (see the module docstring)."""
        return (self.containment >= threshold and self.cover >= MIN_COVER
                and (self.numbers is None or self.numbers >= MIN_NUMBERS))


def group_reprints(articles: Sequence[Article], threshold: float = THRESHOLD,
                   common_df: int = COMMON_DF) -> list[str | None]:
    """One reprint group id per article: copies of one story share an id.

    Args:
        articles: the corpus's articles, in corpus order.
        threshold: the containment a pair needs (`THRESHOLD`, tuned on labelled pairs).
        common_df: shingles in this many articles or more are boilerplate, left out.
    Returns:
        For each article "g:<hash>" of its group, or None when it has no copy.
    """
    texts = [a.text for a in articles]
    pairs, sizes = _score(texts, threshold, common_df)
    edges = [(p.a, p.b) for p in pairs if p.is_reprint(threshold)]
    ids: list[str | None] = [None] * len(articles)
    for members in cluster(len(articles), edges, sizes):
        first = articles[min(members)]
        gid = group_id(first.source, first.number)
        for m in members:
            ids[m] = gid
    return ids


def group_id(source: str, number: int) -> str:
    """The id of the group whose first member (in corpus order) is article ``number`` of ``source``."""
    return "g:" + hashlib.sha1(f"{source}\0{number}".encode()).hexdigest()[:12]


def earliest(members: Sequence[Article]) -> int:
    """The index of the earliest-dated member: the first printing of a story.

    Dates with a year come first, by their first possible day (a month-only date counts from the
    1st, as the index orders a group's members, rag.search.index); then month-day dates without
    a year, by month and day; undated members last. Ties go to the first in corpus order.

    Args:
        members: the articles of one group, in corpus order.
    Returns:
        An index into ``members``.
    Raises:
        ValueError: ``members`` is empty.
    """
    if not members:
        raise ValueError("earliest() of an empty group")
    return min(range(len(members)), key=lambda i: (date_order(members[i].date), i))


# --------------------------------------------------------------------------- measuring pairs


def score_pairs(texts: Sequence[str], floor: float = THRESHOLD, common_df: int = COMMON_DF,
                pairs: Sequence[tuple[int, int]] | None = None) -> list[ReprintPair]:
    """Every pair of texts whose shingle containment is at least about ``floor``, measured.

    The evaluation (eval/reprint_sample.py) calls this with a low floor to see the pairs just
    below the threshold, and with ``pairs`` to measure the pairs it labelled; `group_reprints`
    keeps the pairs that pass `ReprintPair.is_reprint`.

    Args:
        texts: article texts.
        floor: the lowest containment of interest (candidates are found down to floor − margin).
        common_df: shingles in this many texts or more are left out.
        pairs: measure exactly these (i, j), whatever their containment, instead of searching.
    Returns:
        The pairs (a < b) with containment ≥ floor in (a, b) order, or all of ``pairs``, in order.
    """
    return _score(texts, floor, common_df, pairs)[0]


def _score(texts: Sequence[str], floor: float, common_df: int,
           pairs: Sequence[tuple[int, int]] | None = None) -> tuple[list[ReprintPair], list[int]]:
    """`score_pairs`, and each text's number of own shingles (a group's centre is the longest)."""
    hashes, bounds = _own_shingles(texts, common_df)
    sizes = np.diff(bounds)
    numbers = _number_pairs(texts)
    if pairs is None:
        found = _candidates(hashes, bounds, max(0.0, floor - CANDIDATE_MARGIN))
        todo = list(zip(found[0].tolist(), found[1].tolist()))
    else:
        todo, floor = [tuple(sorted(p)) for p in pairs], 0.0
    out = []
    for x, y in todo:
        shared = _shared(hashes[bounds[x]:bounds[x + 1]], hashes[bounds[y]:bounds[y + 1]])
        small, large = sorted((int(sizes[x]), int(sizes[y])))
        containment = shared / small if small else 0.0
        if containment >= floor:
            out.append(ReprintPair(x, y, round(containment, 4), round(shared / large, 4) if large else 0.0,
                                   _number_share(numbers[x], numbers[y])))
    return out, sizes.tolist()


def _keys(texts: Sequence[str]) -> list[str]:
    """Texts without whitespace and punctuation, lower-cased: what copies are compared on."""
    return [_NOT_WORD.sub("", t).lower() for t in texts]


def _shingle_hashes(keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique 5-gram hashes of each key, concatenated, and each key's [start, end) bounds."""
    parts, sizes = [], []
    start = 0
    while start < len(keys):
        stop, chars = start, 0
        while stop < len(keys) and (chars < _BATCH_CHARS or stop == start) and stop - start < _BATCH_KEYS:
            chars += len(keys[stop]) + 1
            stop += 1
        h, s = _hash_batch(keys[start:stop])
        parts.append(h)
        sizes.append(s)
        start = stop
    if not parts:
        return np.zeros(0, np.uint64), np.zeros(1, np.int64)
    sizes_all = np.concatenate(sizes)
    return np.concatenate(parts), np.concatenate([[0], np.cumsum(sizes_all)]).astype(np.int64)


def _hash_batch(keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Hashes (per key sorted and unique) and counts for one batch of keys (fewer than 2**20)."""
    lengths = np.fromiter((len(k) for k in keys), np.int64, len(keys))
    codes = np.frombuffer("\0".join(keys).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    n = len(codes) - SHINGLE + 1
    if n <= 0:
        return np.zeros(0, np.uint64), np.zeros(len(keys), np.int64)
    h = np.zeros(n, np.uint64)
    for j in range(SHINGLE):  # polynomial hash of the window; uint64 wraps, as intended
        h = h * np.uint64(1_000_003) + codes[j:j + n]
    h ^= h >> np.uint64(33)  # splitmix64's finaliser: the low bits (sampling) are as good as the high
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    seps = np.concatenate([[0], np.cumsum(codes == 0)])
    doc = np.repeat(np.arange(len(keys), dtype=np.uint64), lengths + 1)[:n]
    keep = (seps[SHINGLE:SHINGLE + n] - seps[:n]) == 0  # a window across two keys is no shingle
    combined = (doc[keep] << np.uint64(_HASH_BITS)) | (h[keep] & _MASK)
    combined.sort()  # (np.unique is many times slower than sort + diff on numpy 2.4)
    combined = combined[np.concatenate([[True], combined[1:] != combined[:-1]])]
    counts = np.bincount((combined >> np.uint64(_HASH_BITS)).astype(np.int64), minlength=len(keys))
    return combined & _MASK, counts


def _own_shingles(texts: Sequence[str], common_df: int) -> tuple[np.ndarray, np.ndarray]:
    """Each text's shingle hashes without the common ones; texts with too few own ones get none."""
    hashes, bounds = _shingle_hashes(_keys(texts))
    if not len(hashes):
        return hashes, np.zeros(len(texts) + 1, np.int64)
    ordered = np.sort(hashes)
    runs = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1], [True]]))
    common = ordered[runs[:-1]][np.diff(runs) >= common_df]
    del ordered, runs  # a copy of every shingle: free it before the next one (memory peaks here)
    keep = ~_member(hashes, common)
    doc = np.repeat(np.arange(len(texts), dtype=np.int32), np.diff(bounds))
    sizes = np.bincount(doc[keep], minlength=len(texts))
    keep &= (sizes >= MIN_SHINGLES)[doc]
    sizes = np.bincount(doc[keep], minlength=len(texts))
    return hashes[keep], np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def _member(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Which values are in the sorted table (np.isin sorts through np.unique, which is slow here)."""
    if not len(table):
        return np.zeros(len(values), bool)
    out = np.empty(len(values), bool)
    for start in range(0, len(values), 1 << 22):  # in slices: the positions would double the memory
        part = values[start:start + (1 << 22)]
        at = np.searchsorted(table, part)
        at[at == len(table)] = 0
        out[start:start + len(part)] = table[at] == part
    return out


def _candidates(hashes: np.ndarray, bounds: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a < b) whose sampled shingles suggest a containment of at least ``floor``."""
    doc = np.repeat(np.arange(len(bounds) - 1, dtype=np.int32), np.diff(bounds))
    picked = (hashes % np.uint64(SAMPLE)) == 0
    s_hash, s_doc = hashes[picked], doc[picked]
    order = np.argsort(s_hash, kind="stable")  # stable: each posting list stays in doc order
    s_hash, s_doc = s_hash[order], s_doc[order]
    runs = np.flatnonzero(np.concatenate([[True], s_hash[1:] != s_hash[:-1], [True]]))
    starts, lengths = runs[:-1], np.diff(runs)
    pairs = []
    # Posting lists are shorter than common_df (common shingles are gone), so all pairs is cheap.
    for k in sorted(set(lengths[lengths >= 2].tolist())):
        docs = s_doc[starts[lengths == k][:, None] + np.arange(k)[None, :]]
        i, j = np.triu_indices(k, 1)
        pairs.append((docs[:, i].ravel().astype(np.uint64) << np.uint64(32)) | docs[:, j].ravel().astype(np.uint64))
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    flat = np.sort(np.concatenate(pairs))
    runs = np.flatnonzero(np.concatenate([[True], flat[1:] != flat[:-1], [True]]))
    shared, flat = np.diff(runs), flat[runs[:-1]]
    a = (flat >> np.uint64(32)).astype(np.int64)
    b = (flat & np.uint64(0xFFFFFFFF)).astype(np.int64)
    sampled = np.bincount(s_doc, minlength=len(bounds) - 1)
    estimate = shared / np.maximum(1, np.minimum(sampled[a], sampled[b]))
    keep = (estimate >= floor) & (shared >= 2)
    return a[keep], b[keep]


def _shared(x: np.ndarray, y: np.ndarray) -> int:
    """How many hashes two sorted unique arrays share."""
    if len(x) > len(y):
        x, y = y, x
    if not len(x):
        return 0
    at = np.searchsorted(y, x)
    at[at == len(y)] = 0
    return int(np.count_nonzero(y[at] == x))


def _number_pairs(texts: Sequence[str]) -> list[set[tuple[str, str]]]:
    """Each text's numbers as pairs of neighbours in reading order ("2023", "08"), ("08", "07").

    Pairs, not single numbers: a templated report on another day or stock shares most of its
    numbers one by one (2023, percentages, A50) but few runs of them, while a copy keeps the runs.
    """
    out = []
    for t in texts:
        found = _NUMBER.findall(t)
        out.append(set(zip(found, found[1:])))
    return out


def _number_share(x: set, y: set) -> float | None:
    """Shared number pairs / the shorter set, or None when either has fewer than NUMBERS_CHECKED."""
    small = min(len(x), len(y))
    return round(len(x & y) / small, 4) if small >= NUMBERS_CHECKED else None


# --------------------------------------------------------------------------- grouping


def cluster(n: int, edges: Sequence[tuple[int, int]], sizes: Sequence[int]) -> list[list[int]]:
    """Groups of two or more from matching pairs, every member matching every other.

    Within a connected set of matches the centre is the item with the most matches (then the
    largest, then the first); the centre's matches join its group, best connected first, each
    only when it matches every member already in it, so that any two members of a group are a
    matching pair: neither a chain of partial matches nor a short stub matching many different
    long articles makes them one group. Items left over are grouped again the same way.

    Args:
        n: how many items.
        edges: matching pairs (i, j).
        sizes: each item's size (own shingles); the larger is the centre when matches tie.
    Returns:
        The groups, each a sorted list of item indexes, in order of their first member.
    """
    neighbours: dict[int, set[int]] = {}
    for i, j in edges:
        if i != j and 0 <= i < n and 0 <= j < n:
            neighbours.setdefault(i, set()).add(j)
            neighbours.setdefault(j, set()).add(i)
    groups = []
    for component in _components(neighbours):
        left = set(component)
        while len(left) >= 2:
            def rank(m: int) -> tuple:
                return (len(neighbours[m] & left), sizes[m] if m < len(sizes) else 0, -m)
            centre = max(left, key=rank)
            members = [centre]
            for m in sorted(neighbours[centre] & left, key=rank, reverse=True):
                if neighbours[m].issuperset(members):
                    members.append(m)
            if len(members) < 2:
                break  # the best-connected item matches nothing left: neither do the others
            groups.append(sorted(members))
            left -= set(members)
    return sorted(groups)


def _components(neighbours: dict[int, set[int]]) -> list[list[int]]:
    """Connected components of a graph given as adjacency sets."""
    seen: set[int] = set()
    out = []
    for start in sorted(neighbours):
        if start in seen:
            continue
        stack, part = [start], []
        seen.add(start)
        while stack:
            node = stack.pop()
            part.append(node)
            for other in neighbours[node]:
                if other not in seen:
                    seen.add(other)
                    stack.append(other)
        out.append(part)
    return out
