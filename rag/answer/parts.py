"""Two-part questions: split into their parts by rules, and which parts an answer answers.

A question that asks two things ("A和B分别…", "X有多少…？Y又是多少？", "…, and how many …?")
is searched, gated and verified part by part (rag.answer.pipeline): one search for both tends to
bring back one article, and one gate measures the whole question against it. The rules cover the
common patterns; what they do not recognise stays one question, as before.

- Sentences: a question of several question sentences ("？"), or two clauses that each hold a
  question word ("…是谁，担任什么职务？"), is one part per sentence.
- A list with 分别/respectively ("水头镇在老旧小区改造和货运行业分别组建了…") is one part per item,
  each with the words around the list; "各" is not split, as it asks one figure for all.
- English ", and how many …", ", and in B?", ", compared with B?" patterns.
- A part that leans on the one before ("他还是…", "Y又是多少？", "how fast did it grow?") carries
  that part as its `context`: searched and gated with it, and answered by its sentences too.

The LLM reads passages of every part that passes its gate: taken from the parts' searches in
turn, at most two of one article, the context budget shared (`part_excerpts`); it is asked the
whole question, or only the parts that passed when another was refused. Which part an
answer sentence answers is read from the words only that part has (the items of the
list, the subject of the sentence); a sentence that names no part goes to the parts left without
one, so that a correct answer in unexpected words is not called partial.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.answer.asked import Asked, asked_quantity, check_figures
from rag.answer.evidence import NO_ASKED_FIGURE, question_terms
from rag.answer.excerpts import select_excerpts
from rag.script import search_form
from rag.textnorm import CJK_RE, match_key

_QUESTION_WORD = re.compile(r"谁|什么|哪|如何|怎么|怎样|是否|何时|为何|为什么")
# A part that starts so, or is this short, leans on the part before it for its subject.
_LEANS = re.compile(r"^(?:他|她|它|其|该|此|这|那|又|还|并|且|分别|其中|共|一共|总共|全部|担任|是|有|在|为|以及|和|与|"
                    r"全[县市区镇乡省村]|各)")
# ("there" and "that" are no pronouns in "are there", "that later became".)
_EN_LEANS = re.compile(r"\b(?:it|its|they|their|them|he|his|she|her|these|those)\b", re.I)
_LIST_JOIN = re.compile(r"以及|和|与|及|、")
# Where the words shared by every item end and the first item begins ("水头镇在|老旧小区改造"): a
# preposition, not the same character inside a word (所在, 作为, 共同, 同时).
_PREFIX_END = re.compile(r".*(?<![所现存正实作成因认共如不相])(?:在|对|给|为|向|从|把|将|让|跟|同)(?![时近接口上事线])")
_EN_WH = r"(?:how|what|which|who|whom|whose|where|when|why|did|does|do|is|are|was|were|has|have|had|can)\b"
_EN_AND_WH = re.compile(rf",?\s+and\s+(?={_EN_WH})", re.I)
_EN_PREPOSITIONS = r"in|at|for|of|around|on|from|with|by|to"
_EN_AND_PREP = re.compile(rf",?\s+and\s+(?P<prep>{_EN_PREPOSITIONS})\s+(?!{_EN_WH})(?P<item>[^,?]+?)"
                          r"(?:,?\s*respectively)?\s*\?*$", re.I)
_EN_COMPARED = re.compile(r",?\s+(?:compared (?:with|to)|versus|vs\.?)\s+(?P<item>[^,?]+?)\s*\?*$", re.I)
_EN_RESPECTIVELY = re.compile(r",?\s+and\s+(?P<item>[^,?]+?),?\s*respectively\s*\?*$", re.I)


@dataclass(frozen=True)
class Part:
    """One part of a question: its words, and the part before it where it leans on that one."""

    text: str
    context: str = ""

    @property
    def query(self) -> str:
        """The part as it is searched and gated: with its context where it has one."""
        return f"{self.context} {self.text}" if self.context else self.text

    def asked(self) -> Asked | None:
        """The quantity the part asks for; "又是多少" asks for the kind its context asked for."""
        asked = asked_quantity(self.text)
        if asked is not None and not asked.kinds and self.context:
            return asked_quantity(self.context) or asked
        return asked


def split_parts(question: str) -> list[Part]:
    """The parts of a question; one part (the question itself) when no rule applies.

    Args:
        question: Chinese (Simplified or Traditional: parts come back in Simplified) or English.
    Returns:
        The parts, in order; a part leaning on the one before carries it as `context`.
    """
    question = search_form(question).strip()
    pieces = _chinese_pieces(question) if CJK_RE.search(question) else _english_pieces(question)
    parts: list[Part] = []
    # lean: True for a clause that shares its sentence's subject, False for a part a rule made
    # with every word it needs, None where its words decide (`_leans`).
    for text, lean in pieces:
        if parts and (lean or lean is None and _leans(text)):
            parts.append(Part(text, parts[-1].query))
        else:
            parts.append(Part(text))
    return parts if len(parts) > 1 else [Part(question)]


def _leans(text: str) -> bool:
    if CJK_RE.search(text):
        return (bool(_LEANS.match(text)) or "又" in text or text.rstrip("？?").endswith("呢")
                or len(CJK_RE.findall(text)) < 6)
    return bool(_EN_LEANS.search(text)) or len(text.split()) <= 3


def _chinese_pieces(question: str) -> list[tuple[str, bool | None]]:
    """Question sentences (and clauses that each ask something: "…是谁，担任什么职务？", the second
    leaning on the first), each split further where it lists items with 分别."""
    sentences = [(s, None) for s in re.findall(r"[^？?]+[？?]?", question) if _asks(s)]
    if len(sentences) <= 1 and question.count("，") == 1:
        left, right = question.split("，")
        if _asks(left) and _asks(right) and len(CJK_RE.findall(left)) >= 4:
            sentences = [(left + "？", None), (right if right.endswith(("？", "?")) else right + "？", True)]
    if len(sentences) <= 1:
        sentences = [(question, None)]
    out = []
    for sentence, lean in sentences:
        items = _chinese_list(sentence)
        out += [(item, False) for item in items] if len(items) > 1 else [(sentence, lean)]
    return out


def _asks(text: str) -> bool:
    """Whether a Chinese sentence or clause asks something (a question word, or for a number)."""
    return bool(_QUESTION_WORD.search(text)) or asked_quantity(text) is not None


def _split_outside_quotes(text: str) -> list[str]:
    """The text split at 和/与/及/以及/、, but not inside quotation marks ("“和食堂”")."""
    items, depth, last = [], 0, 0
    for m in re.finditer(rf"[“「『”」』]|{_LIST_JOIN.pattern}", text):
        mark = m.group(0)
        if mark in "“「『":
            depth += 1
        elif mark in "”」』":
            depth = max(0, depth - 1)
        elif depth == 0:
            items.append(text[last:m.start()])
            last = m.end()
    return items + [text[last:]]


def _chinese_list(sentence: str) -> list[str]:
    """"A和B分别…" → ["A…", "B…"] with the shared words; [sentence] when it is no such list."""
    at = sentence.find("分别")
    if at <= 0:
        return [sentence]
    head, rest = sentence[:at], sentence[at + 2:]
    cut = max(head.rfind("，"), head.rfind(","))
    before, listed = head[:cut + 1], head[cut + 1:]
    items = _split_outside_quotes(listed)
    if len(items) < 2 or not all(items):
        return [sentence]
    # The first item starts after the shared words ("水头镇在"); "的" ends them too when the
    # other items have none of their own ("清泉村的猕猴桃和杨梅").
    prefix = _PREFIX_END.match(items[0])
    shared = prefix.group(0) if prefix and prefix.end() < len(items[0]) else ""
    if not shared and "的" in items[0] and not any("的" in i for i in items[1:]):
        shared = items[0][: items[0].rfind("的") + 1]
    items[0] = items[0][len(shared):]
    # "东跳村和清泉村的电商培训": the last item's noun goes with every item.
    tail = ""
    if "的" in items[-1] and not any("的" in i for i in items[:-1]):
        items[-1], tail = items[-1].split("的", 1)[0], "的" + items[-1].split("的", 1)[1]
    if not all(items):
        return [sentence]
    return [before + shared + item + tail + rest for item in items]


def _english_pieces(question: str) -> list[tuple[str, bool | None]]:
    """English two-part patterns (see the module docstring); [question] when none applies."""
    text = question.strip()
    for pattern in (_EN_AND_PREP, _EN_COMPARED, _EN_RESPECTIVELY):
        m = pattern.search(text)
        if not m:
            continue
        left = text[:m.start()].rstrip(" ,")
        # The first item follows the left part's last preposition (the one the second item
        # repeats: "in A, and in B"); the second takes its place.
        spots = list(re.finditer(rf"\b(?:{m.groupdict().get('prep') or _EN_PREPOSITIONS})\s+", left, re.I))
        if spots:
            return [(left + "?", False), (left[:spots[-1].end()] + m.group("item").strip() + "?", False)]
    pieces = _EN_AND_WH.split(text, maxsplit=1)
    # "…, and how many …": the first part asks something of its own ("Where and when…" stays one).
    if len(pieces) == 2 and re.search(rf"\b{_EN_WH}", pieces[0], re.I) and len(pieces[0].split()) >= 3 \
            and pieces[1].strip(" ?"):
        second = pieces[1].strip()
        second = second if second.endswith("?") else second + "?"
        return [(pieces[0].rstrip(" ,") + "?", None), (second[:1].upper() + second[1:], None)]
    return [(text, None)]


def part_terms(parts: list[Part]) -> list[set[str]]:
    """Per part, the content words only it has (how an answer sentence is matched to a part)."""
    # Single characters ("大", "场") are in too many sentences to tell parts apart, unless they are
    # all that does ("K序列" and "M序列": k and m).
    every = [set(question_terms(p.text)) for p in parts]
    terms = [{t for t in ts if len(t) > (1 if CJK_RE.search(t) else 2)} for ts in every]
    own = [t - set().union(*(o for j, o in enumerate(terms) if j != i)) for i, t in enumerate(terms)]
    return [mine or ts - set().union(*(o for j, o in enumerate(every) if j != i))
            for i, (mine, ts) in enumerate(zip(own, every))]


def sentences_for_parts(parts: list[Part], sentences: list[str]) -> list[list[str]]:
    """Per part, the answer sentences that answer it.

    A sentence belongs to each part whose own words it contains; a part leaning on the one before
    it and named by no sentence may be answered by that one's ("…was 44.57万元, which grew by 32%"
    answers "how fast did it grow?"); a sentence naming no part goes to every part left without a
    sentence, and a part with no words of its own ("how many?") takes every sentence.
    """
    terms = part_terms(parts)
    keys = [match_key(s).lower() for s in sentences]
    owned = [[s for s, key in zip(sentences, keys) if any(t in key for t in own)] for own in terms]
    free = [s for s, key in zip(sentences, keys) if not any(t in key for own in terms for t in own)]
    out = []
    for i, (part, own, mine) in enumerate(zip(parts, terms, owned)):
        if not own:
            out.append(list(sentences))
        else:
            out.append(mine or (owned[i - 1] if part.context and i else []) + free)
    return out


def unanswered(parts: list[Part], gates: list[str], supported: list[str]) -> list[tuple[int, str]]:
    """The parts an answer leaves unanswered, with why.

    Args:
        parts: the question's parts.
        gates: per part, why the evidence gate refused it ("" where it passed).
        supported: the answer's supported sentences.
    Returns:
        (part index, reason) for each part refused by the gate, answered by no supported sentence
        ("no support"), or asking for a quantity that its sentences do not give
        (`rag.answer.asked.check_figures`).
    """
    out = []
    own = part_terms(parts)
    for i, (part, mine) in enumerate(zip(parts, sentences_for_parts(parts, supported))):
        why = gates[i] if i < len(gates) else ""
        asked = part.asked()
        # The gate judged only the part's own search; a supported sentence that names the part and
        # gives a figure of its kind from a passage another part found answers it all the same.
        named = [s for s in mine if any(t in match_key(s).lower() for t in own[i])]
        if why.startswith(NO_ASKED_FIGURE) and asked is not None and named \
                and not check_figures(asked, named, part.query):
            why = ""
        elif not why:
            why = "no support" if not mine else check_figures(asked, mine, part.query) if asked is not None else ""
        if why:
            out.append((i, why))
    return out


def _in_turn(found: list[list], per_article: int | None):
    """(part, passage) pairs: each part's best, then each one's second…; each passage once, at most
    `per_article` from one article."""
    seen, articles = set(), {}
    for rank in range(max((len(f) for f in found), default=0)):
        for i, passages in enumerate(found):
            if rank >= len(passages):
                continue
            p = passages[rank]
            key = (p.source, p.article_no)
            if p.chunk_id in seen or (per_article is not None and articles.get(key, 0) >= per_article):
                continue
            seen.add(p.chunk_id)
            articles[key] = articles.get(key, 0) + 1
            yield i, p


def interleave(found: list[list], limit: int) -> list:
    """The passages of several searches (one per part) taken in turn, best first, each once.

    Args:
        found: per part, its passages best first.
        limit: at most this many.
    """
    return [p for _, p in _in_turn(found, None)][:limit]


def context_passages(found: list[list], limit: int, per_article: int = 2) -> list[list]:
    """Per part, the passages the LLM reads for it: taken in turn, so that every part has some,
    at most `per_article` from one article and `limit` in all (raised to one per part)."""
    chosen: list[list] = [[] for _ in found]
    for n, (i, p) in enumerate(_in_turn(found, per_article)):
        if n == max(limit, len(found)):
            break
        chosen[i].append(p)
    return chosen


def part_excerpts(parts: list[Part], found: list[list], searcher, budget: int, limit: int) -> list:
    """What the LLM reads for a question of several parts: passages for every part
    (`context_passages`), each part's sentences ranked against that part, the budget shared.

    Args:
        parts: the parts the gate let through, and `found`, their passages best first.
        searcher: gives each passage's sentences with their similarity (`excerpt_scores`).
        budget: characters of passage text in all; `limit`: passages in all.
    Returns:
        `rag.answer.excerpts.Excerpt`s, part by part.
    """
    excerpts = []
    for part, chosen in zip(parts, context_passages(found, limit)):
        if chosen:
            scores = searcher.excerpt_scores(part.query, chosen)
            excerpts += select_excerpts(chosen, scores, budget // len(parts), len(chosen))
    return excerpts
