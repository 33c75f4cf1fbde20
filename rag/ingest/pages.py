"""OCR'd newspaper pages → articles: the newspaper-page reader.

A page is OCR text of a printed newspaper page (or a bulletin). Lines are broken mid-sentence,
articles are concatenated, headlines may come before or after the text they head, photo captions
sit between articles. `parse_page` recovers the articles a reader sees from the line roles
`rag.ingest.pagelayout` assigns.

Decisions worth knowing:
- Photo captions become small articles of their own (kind "caption"), headed by their first
  sentence. In OCR order a caption often sits far from the story it illustrates, so attaching it to
  a neighbour would risk labelling it with the wrong headline.
- A heading directly followed by another heading is a kicker (引题 or section label such as
  "市内信息"); it is kept on the article it introduces, not made an article of its own.
- Headings left with no text at the end of a page are page banners, kept in `Page.banners`.
- Bylines and photo credits stay in the text as well as in `Article.byline`: archive users ask who
  reported a story or took a photo, and only the text is searched, read by the LLM and checked.
  A story's byline is its first paragraph (where it is printed, under the headline); a caption's
  or bulletin item's credit follows its text, as printed.
- Sub-headings (小标题) are sections of their story, not stories (`Article.subheads`), so a
  citation names the story. OCR keeps no type sizes, so a sub-heading is told from a headline by
  where it stands and what it looks like: after a story with a byline come two or more headed
  runs of text with no byline (nor kicker) of their own, and their headings are parallel —
  numbered in order (一、二、… / （一）… / 1. 2. …), or of one shape (the same clause marks
  "，：；", quotes and spaces in the same order, e.g. "强化党建“驱动力”，打开群众幸福门" /
  "发挥党建“牵引力”，服务企业新发展"), with a word in common and lengths within 1.5×. The
  parallel run ends at the first heading that breaks it; that one and the rest stay stories. A
  new story nearly always has a byline (or an end credit) of its own, and a list of unrelated
  headlines rarely shares one shape and a word, so both conditions must hold. Headings printed
  after their text (seed 000's layout) are left as they are: with no byline there is no story
  to hang them on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.ingest.article import Article, Page, first_sentence
from rag.ingest.pagelayout import Item, classify_lines

@dataclass
class _Draft:
    headline: str | None
    kind: str
    pos: int
    kicker: str | None = None
    byline: str | None = None
    paragraphs: list[str] = field(default_factory=list)
    subheads: list[tuple[int, str]] = field(default_factory=list)


def parse_page(text: str, source: str) -> Page:
    """Recover the articles of one page.

    Args:
        text: the decoded page.
        source: the page's file name, carried by every article.
    Returns:
        The page with its articles numbered in reading order (1, 2, …).
    """
    items = classify_lines(text)
    content = [it for it in items if it.role in ("heading", "para", "bullet", "notice")]
    headings_after = bool(content) and content[0].role == "para" and content[-1].role == "heading"
    if headings_after:
        drafts, banners = _assemble_headings_after(items)
    else:
        drafts, banners = _assemble_headings_before(items)
        drafts = _merge_subheads(sorted(drafts, key=lambda d: d.pos))
    drafts = [d for d in drafts if d.paragraphs]
    drafts.sort(key=lambda d: d.pos)
    articles = []
    for number, d in enumerate(drafts, start=1):
        headline = d.headline or first_sentence(d.paragraphs[0])
        paragraphs, subheads = _with_byline(d)
        articles.append(Article(source, number, headline, d.kind, paragraphs, d.kicker, d.byline,
                                subheads=subheads))
    return Page(source, articles, banners)


def _with_byline(d: _Draft) -> tuple[tuple[str, ...], tuple[tuple[int, str], ...]]:
    """The draft's paragraphs with its byline or credit among them (see the module docstring), and
    its sub-headings renumbered to match."""
    if not d.byline or any(d.byline in p for p in d.paragraphs):
        return tuple(d.paragraphs), tuple(d.subheads)
    if d.kind in ("caption", "bulletin"):
        return (*d.paragraphs[:-1], f"{d.paragraphs[-1]} {d.byline}"), tuple(d.subheads)
    # A sub-heading right under the byline heads it too: a byline is no chunk of its own.
    return (d.byline, *d.paragraphs), tuple((i + 1 if i else 0, title) for i, title in d.subheads)


def _caption(item: Item) -> _Draft:
    return _Draft(first_sentence(item.text), "caption", item.pos, byline=item.credit, paragraphs=[item.text])


def _assemble_headings_before(items: list[Item]) -> tuple[list[_Draft], list[str]]:
    """The usual layout: a headline (maybe with kicker and byline) and then its text."""
    drafts: list[_Draft] = []
    pending: list[Item] = []  # headings not yet followed by text
    current: _Draft | None = None
    bullet_section: str | None = None

    def open_from_pending(pos: int, kind: str = "article") -> _Draft:
        nonlocal pending
        headline = pending[-1].text if pending else None
        kicker = " ".join(h.text for h in pending[:-1]) or None
        draft = _Draft(headline, kind, pending[0].pos if pending else pos, kicker)
        pending = []
        drafts.append(draft)
        return draft

    for item in items:
        if item.role == "heading":
            pending.append(item)
        elif item.role == "byline" and pending:
            current = open_from_pending(item.pos)
            current.byline = item.text
        elif item.role in ("byline", "endcredit") and current is not None:
            current.byline = f"{current.byline} {item.text}" if current.byline else item.text
        elif item.role == "caption":
            drafts.append(_caption(item))
        elif item.role == "bullet":
            if pending:
                bullet_section = " ".join(h.text for h in pending)
                pending = []
            current = _Draft(first_sentence(item.text, 60), "bulletin", item.pos, bullet_section)
            current.byline = item.credit
            current.paragraphs.append(item.text)
            drafts.append(current)
        elif item.role == "notice":
            if current is None or current.kind != "notice" or pending:
                pending = []
                current = _Draft(first_sentence(item.text), "notice", item.pos)
                drafts.append(current)
            current.paragraphs.append(item.text)
        elif item.role == "para":
            if pending:
                current = open_from_pending(item.pos)
                bullet_section = None
            elif current is None or current.kind in ("notice",):
                current = _Draft(None, "article", item.pos)
                drafts.append(current)
            current.paragraphs.append(item.text)
    return drafts, [h.text for h in pending]


# Marks that give a heading its shape. "、" is left out: it joins a list inside one clause
# ("党委书记、村委会主任"), it does not set clauses side by side.
_SHAPE_MARKS = re.compile(r"[，：；“”「」 ]")
_SHAPE_WIDTH = str.maketrans({",": "，", ":": "：", ";": "；", "\u3000": " "})
_CN_DIGITS = {c: n for n, c in enumerate("一二三四五六七八九", start=1)}
# "一、" "（二）" "3." "4、": an ordinal with its mark (a bare "一" starts words such as "一个").
_NUMERAL = r"([一二三四五六七八九十]{1,3}|\d{1,2})"
_ORDINAL = re.compile(rf"^\s*(?:[（(]{_NUMERAL}[)）]|{_NUMERAL}[、．.](?!\d))")
SUBHEAD_LENGTH_RATIO = 1.5  # parallel sub-headings are of about one length; headlines vary more


def _merge_subheads(drafts: list[_Draft]) -> list[_Draft]:
    """Fold the parallel sub-headed runs after a bylined story into it (see the module docstring).

    Args:
        drafts: one page's drafts in reading order.
    Returns:
        The drafts left, the stories holding their sections' paragraphs and `subheads`.
    """
    out: list[_Draft] = []
    i = 0
    while i < len(drafts):
        story = drafts[i]
        out.append(story)
        i += 1
        if not (story.kind == "article" and story.headline and story.byline):
            continue
        run: list[int] = []  # the candidate sections, captions between them skipped
        for j in range(i, len(drafts)):
            d = drafts[j]
            if d.kind == "caption":
                continue
            if not (d.kind == "article" and d.headline and not d.byline and not d.kicker):
                break
            run.append(j)
        n = _parallel_prefix([drafts[j].headline for j in run])
        if n < 2:
            continue
        sections = set(run[:n])
        for j in range(i, run[n - 1] + 1):
            d = drafts[j]
            if j in sections:
                story.subheads.append((len(story.paragraphs), d.headline))
                story.paragraphs.extend(d.paragraphs)
            else:
                out.append(d)  # a photo caption printed between two sections stays a caption
        i = run[n - 1] + 1
    return out


def _parallel_prefix(headings: list[str]) -> int:
    """How many of the headings, from the first, are parallel to one another (0 or at least 2)."""
    longest = 0
    for n in range(2, len(headings) + 1):
        if not _parallel(headings[:n]):
            break
        longest = n
    return longest


def _parallel(headings: list[str]) -> bool:
    """Numbered in order, or one shape with a word in common and lengths within the ratio."""
    numbers = [_ordinal(h) for h in headings]
    if None not in numbers and all(b == a + 1 for a, b in zip(numbers, numbers[1:])):
        return True
    shapes = {_shape(h) for h in headings}
    if len(shapes) != 1 or not shapes.pop():
        return False  # a bare phrase has no shape to match: too weak to tell a sub-heading by
    lengths = [len(_SHAPE_MARKS.sub("", h.translate(_SHAPE_WIDTH))) for h in headings]
    if max(lengths) > SUBHEAD_LENGTH_RATIO * min(lengths):
        return False
    return bool(set.intersection(*(_words(h) for h in headings)))


def _shape(heading: str) -> str:
    return "".join(_SHAPE_MARKS.findall(heading.translate(_SHAPE_WIDTH)))


def _words(heading: str) -> set[str]:
    """The heading's character bigrams, inside its clauses (none across a mark)."""
    clauses = _SHAPE_MARKS.split(heading.translate(_SHAPE_WIDTH))
    return {c[k : k + 2] for c in clauses for k in range(len(c) - 1) if c[k : k + 2].isalnum()}


def _ordinal(heading: str) -> int | None:
    """The number a numbered heading starts with ("三、" → 3, "（十二）" → 12, "4." → 4), or None."""
    found = _ORDINAL.match(heading)
    if not found:
        return None
    token = found.group(1) or found.group(2)
    if token.isdigit():
        return int(token)
    tens, ten, units = token.partition("十")
    if not ten:
        return _CN_DIGITS.get(token)
    if len(tens) > 1 or len(units) > 1 or any(c not in _CN_DIGITS for c in tens + units):
        return None
    return _CN_DIGITS.get(tens, 1) * 10 + _CN_DIGITS.get(units, 0)


def _assemble_headings_after(items: list[Item]) -> tuple[list[_Draft], list[str]]:
    """OCR that printed each section's heading after its text (seed 000's layout).

    A heading labels the text run just before it. Headings that follow another heading label
    nothing by position; each is matched to the run whose paragraphs share most of its words,
    splitting that run where the two headings' vocabularies part.
    """
    runs: list[list[Item]] = [[]]
    labels: list[Item | None] = []
    dangling: list[Item] = []
    drafts: list[_Draft] = []
    for item in items:
        if item.role == "para":
            runs[-1].append(item)
        elif item.role == "heading":
            if runs[-1]:
                labels.append(item)
                runs.append([])
            else:
                dangling.append(item)
        elif item.role == "caption":
            drafts.append(_caption(item))
    if not runs[-1]:
        runs.pop()
    labels += [None] * (len(runs) - len(labels))
    sections = list(zip(runs, labels))
    banners = []
    for heading in dangling:
        best = _best_split(sections, heading)
        if best is None:
            banners.append(heading.text)
            continue
        index, cut, heading_first = best
        paras, label = sections[index]
        first, second = (heading, label) if heading_first else (label, heading)
        sections[index : index + 1] = [(paras[:cut], first), (paras[cut:], second)]
    for paras, label in sections:
        draft = _Draft(label.text if label else None, "article", paras[0].pos)
        draft.paragraphs = [p.text for p in paras]
        drafts.append(draft)
    return drafts, banners


def _bigrams(text: str) -> set[str]:
    chars = re.sub(r"[^\w]", "", text)
    return {chars[i : i + 2] for i in range(len(chars) - 1)}


def _best_split(sections, heading: Item):
    """Where a heading without text fits best: (section, cut, heading_first) or None."""
    grams = _bigrams(heading.text)
    best, best_gain = None, 0
    for index, (paras, label) in enumerate(sections):
        label_grams = _bigrams(label.text) if label else set()
        mine = [len(grams & _bigrams(p.text)) for p in paras]
        theirs = [len(label_grams & _bigrams(p.text)) for p in paras]
        whole = sum(theirs)
        for cut in range(1, len(paras)):
            for heading_first in (False, True):
                head, tail = (mine, theirs) if heading_first else (theirs, mine)
                gain = sum(head[:cut]) + sum(tail[cut:]) - whole
                # Strictly better only: ties keep the earliest cut, where sections usually start.
                if gain > best_gain:
                    best, best_gain = (index, cut, heading_first), gain
    return best
