"""Citations checked by code: markers parsed and verified, missing ones attached, gaps flagged.

The model is small: it forgets markers, cites the wrong passage and now and then states what no
passage says. Every answer sentence therefore goes through `verify_answer`:

- its [n] markers are parsed; out-of-range markers and markers whose passage does not support the
  sentence are dropped;
- a sentence left without a marker gets the passage that supports it best, if one does;
- a sentence that no passage supports is kept but flagged (`supported=False`, shown with [?]);
- a passage vouches only for sentences whose numbers it states (by value: "42 million" is
  "4200多万"); numbers that appear in no passage are listed as unverified;
- nor for a sentence naming a head ("部长", "书记") where the passage has only the deputy
  ("副部长"): a restated title is not checked by the overlap measure, so it is checked here; nor,
  for a question asking who holds an office, where the passage does not give the name that
  office (rag.answer.roles);
- an English amount whose digits are a passage's but whose multiplier is wrong ("300 million"
  for "300万", 3 million) is corrected, and the correction recorded.

Support is judged on what the sentence adds to the question: a sentence that only restates the
question ("大观区区委书记叫……") must have its new words in the passage, and one that adds nothing
is not an answer. What a Chinese sentence restates must be the passage's subject too: a passage
about a luggage maker's output does not vouch for "织里童装产业一年的产值是4200多万元" because it
states 4200多万元 — at least half of the question's words the sentence repeats must be in it
(`restated_share`). Chinese sentences are measured by character-pair overlap with the passage;
English ones, which cannot overlap with Chinese text, by embedding similarity when an embedder
is given, plus their numbers, any Chinese names they copy and, given the index's glossary, the
words it translates ("Dublin" → 都柏林).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from rag.answer import quantities
from rag.answer.evidence import question_terms
from rag.answer.roles import asked_role, held_as_deputy, role_unbound
from rag.search.crossling import gloss
from rag.textnorm import (CJK_RE, CJK_RUN, FUNCTION_WORDS, detect_language, match_key, passage_key,
                          split_sentences)

# A citation marker as the model writes it: [1], 【2】, ［1, 3］, [1，2、4] (group 1: the numbers).
# The one pattern for parsing answers here and for showing markers while an answer streams
# (rag.app.chatview).
MARKER_PATTERN = r"[\[【［]\s*(\d{1,2}(?:\s*[,，、]\s*\d{1,2})*)\s*[\]】］]"
MARKER = re.compile(r"\s*" + MARKER_PATTERN)  # with the space before it, which goes with it
_LEADING_MARKERS = re.compile(rf"^(?:{MARKER.pattern})+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_LATIN_WORD = re.compile(r"[A-Za-z]{3,}")
# "根据第1和第2段，…", "According to passage [4], …": the model pointing at passages, not a claim.
_ATTRIBUTION = re.compile(
    r"^(?:根据|依据|据|从)[^，,：:。]{0,12}?(?:段落?|篇|资料|材料|文章|报道|内容|passages?)[^，,：:。]{0,4}[，,：:]\s*"
    r"|^according to (?:the )?(?:passages?|documents?|articles?|pages?)\s*(?:\d{1,2}\s*(?:,|and|&)?\s*)*,?\s*",
    re.I)
_EN_SENTENCE = re.compile(r".+?(?:[.!?](?=\s|$)|\n|$)", re.S)  # a line break ends a claim too (a list)
# Titles whose deputy ("副…") is another person; a passage with only the deputy's title does not
# vouch for a sentence giving the head's.
_HEAD_TITLE = re.compile(r"(?<!副)(书记|主任|主席|部长|局长|厅长|处长|科长|省长|市长|县长|区长|镇长|乡长|村长|"
                         r"院长|校长|所长|站长|社长|厂长|队长|组长|经理)")
UNSUPPORTED_MARK = "[?]"
# A sentence counts as supported when this share of its Chinese character pairs and numbers
# occurs in the passage, or when its embedding is this similar to one of the passage's sentences.
LEXICAL_SUPPORT = 0.5
EMBEDDING_SUPPORT = 0.86
# A marker the model wrote is kept at a lower bar than one we attach ourselves.
LEXICAL_KEEP = 0.25
EMBEDDING_KEEP = 0.83
# ... and lower still for an English sentence that gives figures beyond the question's, every one
# of which that passage states by value ("over 40 million yuan" for "超4千万元"): the figures are
# checked exactly, and their words cannot overlap with Chinese text.
EMBEDDING_KEEP_FIGURES = 0.80
# The least share of the question's words a Chinese sentence repeats that its passage must have
# (on the held-out seeds set's dev half, passages of right answers had 0.71 or more; the wrong
# subject's 0.2).
RESTATED_SUPPORT = 0.5
# What a photo caption is about without printing it: the photo. "这张照片是李士明拍的" restates
# "照片" from the question, and the caption "…红色教育基地。 李士明/摄" is its subject all the same.
CAPTION_WORDS = "照片图片图中摄影"


@dataclass(frozen=True)
class Citation:
    """A passage an answer cites, with the text that supports the answer."""

    n: int
    article: str
    source: str
    paragraph: int
    quote: str
    score: float
    supported: bool
    chunk_id: str
    # Where the article was printed, as the reader sees it in the citation.
    label: str = ""  # "headline › sub-heading" inside a story with sub-headings, else the headline
    paper: str | None = None
    date: str | None = None
    page: str | None = None
    provenance: str = ""  # "outlet · date · page" with what is known
    also_in: tuple[str, ...] = ()  # other printings of a reprinted story, earliest first


@dataclass
class CheckedSentence:
    text: str  # without markers
    cites: list[int] = field(default_factory=list)
    supported: bool = False
    unverified_numbers: list[str] = field(default_factory=list)
    corrected_numbers: list[tuple[str, str]] = field(default_factory=list)  # (wrong, right)
    restates: bool = False  # adds nothing to the question


def split_answer(text: str) -> list[tuple[str, list[int]]]:
    """Answer text → (sentence without markers, markers) pairs; markers after a full stop count
    for the sentence before it ("…5项。[2]"). A sentence said again is kept once, where first said:
    a small model caught in a loop repeats its answer until it runs out of tokens."""
    pieces: list[tuple[str, list[int]]] = []
    said: dict[str, int] = {}
    text = text.strip()
    for raw in _sentences(text):
        leading = _LEADING_MARKERS.match(raw)
        if leading and pieces:  # "…组织。[1][3] 另一句": the markers close the sentence before
            pieces[-1][1].extend(_marker_numbers(leading.group(0)))
            raw = raw[leading.end():]
        markers = _marker_numbers(raw)
        clean = MARKER.sub("", raw).strip()
        attribution = _ATTRIBUTION.match(clean)
        if attribution and attribution.end() < len(clean):
            markers += [int(n) for n in re.findall(r"\d{1,2}", attribution.group(0))]
            clean = clean[attribution.end():]
            clean = clean[:1].upper() + clean[1:]
        if not clean or not re.search(r"\w", clean):
            if pieces and markers:
                pieces[-1][1].extend(markers)
            continue
        key = match_key(clean)
        if key in said:
            pieces[said[key]][1].extend(m for m in markers if m not in pieces[said[key]][1])
            continue
        said[key] = len(pieces)
        pieces.append((clean, markers))
    return pieces


def keep_language(text: str, language: str) -> str:
    """The answer without its sentences in another language than `language`, when some are in it.

    Asked in English, the small model often pastes the Chinese passage after its answer; the
    passage is shown as the citation's quote anyway. An answer with no sentence in `language` is
    returned as it is (it is translated instead). The items of a list its own sentence opens
    ("…three initiatives: 1. “太湖夜读” 2. …") are its answer, in whatever language: they stay.
    """
    pieces = split_answer(text)
    spoken = [detect_language(s) for s, _ in pieces]
    if language not in spoken or all(lang in (language, "other") for lang in spoken):
        return text
    kept, listing = [], False
    for (sentence, markers), lang in zip(pieces, spoken):
        if lang in (language, "other") or listing:
            kept.append(sentence + "".join(f"[{n}]" for n in markers))
            listing = sentence.rstrip().endswith((":", "：")) or (listing and lang != language)
    return " ".join(kept)


def _marker_numbers(text: str) -> list[int]:
    return [int(n) for m in MARKER.finditer(text) for n in re.split(r"[,，、]", m.group(1))]


# A marker followed by a space and more Chinese closes a claim though no full stop follows: the
# model lists "薛晨：27岁 [1] 夏欣怡：19岁 [3]", two claims from two passages.
_INLINE_CLOSE = re.compile(r"(?<=[\]】］])\s+(?=[\u4e00-\u9fff])")


# A list item's number ("…as follows: 1. 太湖夜读 [1] 2. 民星进城 [1]", "：1、…", "（2）…", "①…") is no
# figure of the answer: read as one, "2" is missing from the passage and sinks a true item. It
# stands at the start, after a line break, a colon, a semicolon, a full stop or a marker; a
# dotted one has a space after it (not "1.4万").
_LIST_NUMBER = re.compile(r"(^|\n|[:：;；。\]】］]\s*)(?:\d{1,2}\.(?=\s)|\d{1,2}[、)）]|[（(]\d{1,2}[)）]|[\u2460-\u2473])\s*")


def _sentences(text: str) -> list[str]:
    # After a marker the item number goes for a space, so that the marker still closes its claim.
    text = _LIST_NUMBER.sub(lambda m: m.group(1) + " " if m.group(1)[-1:] in "]】］" else m.group(1), text)
    out = []
    for part in split_sentences(text) if CJK_RE.search(text) else [text]:
        for piece in _INLINE_CLOSE.split(part):
            out.extend(s for s in _EN_SENTENCE.findall(piece) if s.strip())
    # Re-attach marker-only fragments ("[2]") to what precedes them.
    merged: list[str] = []
    for piece in out:
        if merged and not MARKER.sub("", piece).strip(" .。"):
            merged[-1] += piece
        else:
            merged.append(piece)
    return merged


def _units(text: str, latin: bool = True) -> set[str]:
    """Chinese character pairs, numbers and (if `latin`) longer Latin content words of a text."""
    key = match_key(text)
    runs = CJK_RUN.findall(key)
    units = {run[i:i + 2] for run in runs for i in range(len(run) - 1)}
    units |= {n.replace(",", "") for n in _NUMBER.findall(key)}
    latin_words = _LATIN_WORD.findall(text) if latin else []
    if latin_words:
        units |= {w.lower() for w in latin_words} - FUNCTION_WORDS
        # An English sentence quoting the passage's own short Chinese term ("元·构", a theme) says
        # something in it: its lone characters count, or the sentence would read as a restatement.
        units |= {run for run in runs if len(run) == 1}
    return units


def novel_units(sentence: str, question: str = "") -> set[str]:
    """What a sentence says beyond the question: its units that the question does not have."""
    return _units(sentence) - _units(question)


def lexical_support(sentence: str, passage: str, question: str = "", glossary: dict | None = None) -> float:
    """Share of the sentence's new character pairs, numbers and words that occur in the passage.

    Args:
        sentence: an answer sentence.
        passage: the passage text.
        question: units the question already has don't count (restating it proves nothing).
        glossary: English word → the corpus's Chinese words (rag.search.crossling), so that an
            English sentence's words can be found in a Chinese passage.
    """
    haystack = passage_key(passage).replace(",", "").lower()
    units = novel_units(sentence, question)
    glossed: dict[str, set[str]] = {}
    if not _LATIN_WORD.search(haystack):  # English words can't be found in Chinese text, only their glosses
        words = {u for u in units if u.isalpha() and not CJK_RE.search(u)}
        units -= words
        # Single characters ("set" → 组, 套) are in nearly every passage: only words count.
        glossed = {w: found for w in words if (found := {t for t in gloss(w, glossary) if len(t) > 1})} \
            if glossary else {}
    if not units and not glossed:
        return 0.0
    # A number may be written in the passage as Chinese numerals ("6" for "六方").
    found = sum(1 for u in units if u in haystack or (_NUMBER.fullmatch(u) and not quantities.missing(u, [passage])))
    share = found / len(units) if units else 0.0
    if not glossed:
        return share
    # The glossed words add to the evidence, never take from it: a gloss the passage words otherwise
    # ("holds" for 拥有) must not sink a sentence whose figures it states.
    translated = sum(any(t in haystack for t in words) for words in glossed.values())
    return max(share, (found + translated) / (len(units) + len(glossed)))


def restated_share(sentence: str, passage: str, question: str) -> float:
    """Share of the question's content words that the sentence repeats and the passage has (1.0
    when it repeats none, or is not Chinese: English words cannot be found in Chinese text)."""
    if not question or not CJK_RE.search(sentence):
        return 1.0
    repeated = [w for w in question_terms(question) if CJK_RE.search(w) and w in sentence]
    if not repeated:
        return 1.0
    haystack = passage_key(passage).lower()
    return sum(w in haystack for w in repeated) / len(repeated)


def _gives_figures(sentence: str, named: set[float]) -> bool:
    """Whether an English sentence states numbers beyond ``named`` (the question's values)."""
    if CJK_RE.search(sentence):
        return False
    return any(q.value not in named for q in quantities.quantities(sentence))


def numbers_missing(sentence: str, passages: list[str]) -> list[str]:
    """Numbers of the sentence that none of the passages states (compared as quantities)."""
    return quantities.missing(sentence, passages)


def titles_missing(sentence: str, passage: str) -> list[str]:
    """Head titles of the sentence ("部长") that the passage has only as a deputy's ("副部长")."""
    key = passage_key(passage)
    return sorted(t for t in set(_HEAD_TITLE.findall(match_key(sentence)))
                  if t in key and all(held_as_deputy(key, m.start()) for m in re.finditer(t, key)))


class SupportScorer:
    """Scores how well each passage supports a sentence (lexical, plus embeddings if available)."""

    def __init__(self, passages, embedder=None, glossary: dict | None = None):
        self.passages = passages
        self.embedder = embedder
        self.glossary = glossary
        self._sentences = [[s for s in split_sentences(p.text) if s.strip()] or [p.text] for p in passages]
        self._vectors = None
        if embedder is not None:
            flat = [s for group in self._sentences for s in group]
            vectors = embedder.embed_passages(flat, show_progress=False) if flat else np.zeros((0, 1))
            self._vectors, start = [], 0
            for group in self._sentences:
                self._vectors.append(vectors[start:start + len(group)])
                start += len(group)

    def score(self, sentence: str, question: str = "") -> list[tuple[float, float, str]]:
        """Per passage: (lexical support of what the sentence adds to the question, best embedding
        similarity, best-matching passage sentence). Embeddings are used for sentences that are
        not Chinese only: for Chinese, restating the question alone would score high."""
        english = not CJK_RE.search(sentence)
        vector = self.embedder.embed_queries([sentence])[0] if self.embedder is not None and english else None
        out = []
        for i, passage in enumerate(self.passages):
            lexical = lexical_support(sentence, passage.text, question, self.glossary)
            group = self._sentences[i]
            best_lex = max(range(len(group)), key=lambda j: lexical_support(sentence, group[j], question,
                                                                             self.glossary))
            similarity, quote = 0.0, group[best_lex]
            if vector is not None and len(self._vectors[i]):
                sims = self._vectors[i] @ vector
                similarity = float(sims.max())
                if lexical < LEXICAL_SUPPORT:
                    quote = group[int(sims.argmax())]
            out.append((lexical, similarity, quote.strip()))
        return out


def verify_answer(text: str, passages, embedder=None, question: str = "",
                  glossary: dict | None = None) -> tuple[str, list[Citation], list[CheckedSentence]]:
    """Check an answer's citations against the passages it was written from.

    Args:
        text: the model's answer with [n] markers (n counts passages from 1).
        passages: the passages as numbered in the prompt.
        embedder: optional, with embed_queries/embed_passages, for cross-language support.
        question: the question answered; a sentence must add something to it, and what it adds
            is what has to be supported.
        glossary: the index's English → Chinese glossary, to find an English sentence's words.
    Returns:
        (answer text with verified markers and [?] on unsupported sentences, citations in order of
        first use, the checked sentences).
    """
    scorer = SupportScorer(passages, embedder, glossary)
    checked: list[CheckedSentence] = []
    quotes: dict[int, tuple[float, str]] = {}
    texts = [p.text for p in passages]
    role = asked_role(question) if question else None
    named = {q.value for q in quantities.quantities(question, words=True)}
    for sentence, markers in split_answer(text):
        corrections = quantities.fix_english_amounts(sentence, texts) if not CJK_RE.search(sentence) else []
        for wrong, right in corrections:
            sentence = sentence.replace(wrong, right, 1)
        scores = scorer.score(sentence, question)
        item = CheckedSentence(sentence, corrected_numbers=corrections)
        new = novel_units(sentence, question)
        if not new:  # restates the question, answers nothing
            item.restates = True
            checked.append(item)
            continue
        # A passage can only vouch for a sentence whose numbers and head titles it contains, whose
        # subject it is about, and whose name it gives the asked office to.
        numbers_ok = [not numbers_missing(sentence, [p.text]) and not titles_missing(sentence, p.heading + p.text)
                      and restated_share(sentence, p.heading + p.text + (CAPTION_WORDS if p.kind == "caption" else ""),
                                         question) >= RESTATED_SUPPORT
                      and not (role and role_unbound(role, new, p.heading + p.text)) for p in passages]
        keep = EMBEDDING_KEEP_FIGURES if _gives_figures(sentence, named) else EMBEDDING_KEEP
        for n in dict.fromkeys(markers):
            if 1 <= n <= len(passages) and numbers_ok[n - 1]:
                lexical, similarity, quote = scores[n - 1]
                if lexical >= LEXICAL_KEEP or similarity >= keep:
                    item.cites.append(n)
        if not item.cites:
            strength = [max(lex / LEXICAL_SUPPORT, sim / EMBEDDING_SUPPORT) if ok else 0.0
                        for (lex, sim, _), ok in zip(scores, numbers_ok)]
            best = int(np.argmax(strength)) if strength else -1
            if best >= 0 and strength[best] >= 1.0:
                item.cites.append(best + 1)
        item.supported = bool(item.cites)
        item.unverified_numbers = numbers_missing(sentence, [p.text for p in passages])
        for n in item.cites:
            lexical, similarity, quote = scores[n - 1]
            strength = max(lexical, similarity)
            if n not in quotes or strength > quotes[n][0]:
                quotes[n] = (strength, quote)
        checked.append(item)
    citations = []
    for n in dict.fromkeys(n for item in checked for n in item.cites):
        p = passages[n - 1]
        strength, quote = quotes[n]
        citations.append(Citation(n, p.article, p.source, p.paragraph, quote, round(strength, 4), True, p.chunk_id,
                                  p.label, p.paper, p.date, p.page, p.provenance, tuple(p.also_in)))
    return render(checked), citations, checked


def render(checked: list[CheckedSentence]) -> str:
    """Sentences with their markers; an unsupported sentence carries [?] instead."""
    parts = []
    for item in checked:
        marks = "".join(f"[{n}]" for n in item.cites) if item.supported else UNSUPPORTED_MARK
        text = item.text
        # Markers go before the final full stop in Chinese ("…5项[2]。"), after it in English.
        if text and text[-1] in "。！？" and CJK_RE.search(text):
            parts.append(text[:-1] + marks + text[-1])
        else:
            parts.append(f"{text}{marks}" if not text.endswith((".", "!", "?")) else f"{text[:-1]}{marks}{text[-1]}")
    joiner = "" if any(CJK_RE.search(i.text) for i in checked) else " "
    return joiner.join(parts)
