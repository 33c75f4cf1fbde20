"""The evidence gate: is there anything in the retrieved passages worth asking the LLM about?

Similarity scores cannot tell: the multilingual embedder rates an unrelated question ("巴黎今天的
天气怎么样？") about as close to the pages as a real one. What separates them is whether the
passages contain the question's words: Chinese words as jieba cuts them, English words through
the CC-CEDICT glossary, romanised names ("Ding Zhifa") through pinyin. Question words
("哪一年", "roughly") are left out. The threshold was set from the public set (see
`Settings.min_coverage`); numbers and ordinals the question names must be stated outright
(`rag.answer.quantities.missing_specifics`), and a question for a definite kind of quantity
("多少户", "how much money") needs a passage with a figure that can be of it
(`rag.answer.asked.passages_lack`).
"""

from __future__ import annotations

from rag.search.crossling import english_words, gloss, pinyin_tokens, romanised_name_tokens
from rag.search.keywords import words
from rag.answer.asked import asked_quantity, passages_lack
from rag.answer.quantities import missing_specifics
from rag.textnorm import QUESTION_WORDS, detect_language, match_key


def question_terms(question: str) -> list[str]:
    """The content words of a question (lower-cased), in order."""
    found = english_words(question) if detect_language(question) == "en" else words(question)
    return [w for w in found if w not in QUESTION_WORDS]


def coverage(question: str, passages, glossary: dict | None = None, syllables: set[str] | None = None,
             pinyin: set[str] | None = None) -> tuple[float, list[str]]:
    """Share of the question's content words found in the passages, and the words not found.

    Args:
        question: Chinese or English.
        passages: retrieved passages (their headline and text are searched).
        glossary: English word → Chinese words (`rag.search.crossling.build_glossary`), for English.
        syllables: the corpus's pinyin syllables, to read romanised names.
        pinyin: the passages' pinyin tokens if already known (the index stores them); computed
            from the passages' text otherwise.
    Returns:
        (coverage in [0, 1], missing words); (1.0, []) for a question with no content words.
    """
    terms = question_terms(question)
    if not terms:
        return 1.0, []
    haystack = match_key("".join(p.heading + p.text for p in passages)).lower()
    english = detect_language(question) == "en"
    if english and syllables and pinyin is None:
        pinyin = set(pinyin_tokens(haystack))
    pinyin = pinyin or set()
    found = []
    for term in terms:
        if term in haystack:
            found.append(True)
        elif english:
            translations = gloss(term, glossary or {})
            names = romanised_name_tokens(term.capitalize(), syllables) if syllables else []
            found.append(any(t in haystack for t in translations) or any(n in pinyin for n in names))
        else:
            found.append(False)
    return sum(found) / len(terms), [t for t, ok in zip(terms, found) if not ok]


# Why the gate refuses a question whose passages hold no figure of its kind (rag.answer.parts reads it).
NO_ASKED_FIGURE = "no figure of the asked kind"


def gate(question: str, passages, index, min_coverage: float) -> str:
    """Why the passages cannot answer the question, or "" when the LLM should be asked.

    Args:
        question: the (standalone) question.
        passages: the retrieved passages, best first.
        index: the loaded `HybridIndex` (glossary and pinyin syllables).
        min_coverage: the least share of question words the passages must contain.
    """
    if not passages:
        return "nothing retrieved"
    texts = [p.heading + p.text for p in passages]
    absent = missing_specifics(question, texts)
    if absent:
        return f"not in the documents: {', '.join(absent)}"
    asked = asked_quantity(question)
    if asked is not None and passages_lack(asked, texts):
        return f"{NO_ASKED_FIGURE} ({'/'.join(sorted(asked.kinds))}) in the documents"
    stored = {t for p in passages for t in index.chunk_pinyin(p.chunk_id)} if index.pinyin is not None else None
    share, missing = coverage(question, passages, index.glossary, index.syllables if index.pinyin else None,
                              stored)
    if share < min_coverage:
        return f"weak evidence: {share:.0%} of the question's words found (missing: {', '.join(missing)})"
    return ""
