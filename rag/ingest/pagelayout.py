"""Line roles on an OCR'd page: which lines are headings, bylines, captions, body text.

`classify_lines` turns a page into a flat list of `Item`s (headings, paragraphs with their broken
lines joined, captions with their credits, bylines…) that `rag.ingest.corpus` assembles into articles.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

from rag.textnorm import (
    CJK,
    clean_body,
    clean_heading,
    cjk_ratio,
    ends_sentence,
    match_key,
    normalize_chars,
    split_sentences,
)

MARKDOWN_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(\S.*)$")
CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
JUNK = re.compile(rf"^[{CIRCLED}\s]+$|^扫一扫|^[\W_]+$")
CAPTION_LINE = re.compile(rf"^[{CIRCLED}]\s*(?=\S)")
# Photo and text credits: "李士明/摄", "本报记者 吕之暹 拍友 周晨磊 摄", "小古城村供图".
CREDIT = re.compile(r"(/摄|/文|供图|摄影|\s摄)$|/文\s|/文/摄")
INLINE_CREDIT = re.compile(rf"^(.*[。！？”])\s*([^。！？{CIRCLED}]{{1,24}}(?:/摄|/文|供图|\s摄))\s*[{CIRCLED}\s]*$")
END_CREDIT = re.compile(r"^[（(][^（）()]{2,30}(整理|报道|供稿|采写)[）)]$")
NOTICE = re.compile(r"^(报|送|发|抄送|主送|抄报)[：:]")
DATE_LABEL = re.compile(r"^\d{4}\s*年(\s*\d{1,2}\s*月(\s*\d{1,2}\s*日)?)?$")
BULLET = re.compile(r"^[△▲◆■●]\s*")
BYLINE_PREFIX = re.compile(r"^(本报记者|本报通讯员|本报评论员|特约记者|记者|通讯员|文/|文：|撰稿)")
NAME_TOKEN = re.compile(f"[{CJK}]{{1,4}}")
ATTRIBUTION = re.compile(r"（([^（）]{2,24})）$")
MIN_DUPLICATE_CHARS = 8
HEADING_MAX_CHARS = 40
HEADING_RATIO = 0.7


@dataclass
class Item:
    """One unit of a page in reading order."""

    role: str  # heading, para, bullet, notice, caption, byline, endcredit
    text: str
    pos: int  # line number where it starts
    credit: str | None = None


def _is_byline(text: str, single_name_ok: bool = False) -> bool:
    if BYLINE_PREFIX.match(text):
        return len(text) <= 60
    tokens = text.split()
    return ((2 if not single_name_ok else 1) <= len(tokens) <= 6 and sum(map(len, tokens)) <= 16
            and all(NAME_TOKEN.fullmatch(t) for t in tokens))


def _primitive_role(line: str, markdown: bool) -> str:
    s = line.strip()
    if not s:
        return "blank"
    if markdown and MARKDOWN_HEADING.match(s):
        return "md"
    if JUNK.match(s):
        return "junk"
    if CAPTION_LINE.match(s):
        return "captionline"
    if END_CREDIT.match(s):
        return "endcredit"
    if len(s) <= 40 and CREDIT.search(s) and not ends_sentence(s):
        return "credit"
    if NOTICE.match(s):
        return "notice"
    if DATE_LABEL.match(s):
        return "date"
    if BULLET.match(s):
        return "bullet"
    return "text"


def _heading_roles(lines: list[str], roles: list[str]) -> list[str]:
    """Decide which free-text lines of a page without markdown are headings or bylines."""
    text_idx = [i for i, r in enumerate(roles) if r == "text"]
    lengths = {i: len(re.sub(r"\s", "", lines[i])) for i in text_idx}
    page_median = statistics.median(lengths.values()) if lengths else 0
    out = list(roles)
    prev: int | None = None  # previous non-blank line
    for i, role in enumerate(roles):
        if role == "blank":
            continue
        if role == "text":
            s = clean_heading(lines[i])
            after_heading = prev is not None and out[prev] in ("heading", "md")
            if after_heading and _is_byline(s):
                out[i] = "byline"
            elif _looks_like_heading(s, i, prev, lines, out, text_idx, lengths, page_median):
                out[i] = "heading"
        prev = i
    return out


def _looks_like_heading(s, i, prev, lines, roles, text_idx, lengths, page_median) -> bool:
    n = lengths[i]
    if not 2 <= n <= HEADING_MAX_CHARS or "。" in s or ends_sentence(s) or cjk_ratio(s) < 0.5:
        return False
    if prev is not None and roles[prev] == "text" and not ends_sentence(lines[prev]):
        return False  # the line continues a sentence broken by OCR
    k = text_idx.index(i)
    neighbours = [lengths[j] for j in text_idx[max(0, k - 8) : k + 9] if j != i]
    median = statistics.median(neighbours) if len(neighbours) >= 3 else page_median
    return n < HEADING_RATIO * median


def _join(a: str, b: str) -> str:
    if a and b and a[-1].isascii() and a[-1].isalnum() and b[0].isascii() and b[0].isalnum():
        return a + " " + b
    return a + b


class _Deduper:
    """Drops sentences and paragraphs the page already printed (OCR repeats passages)."""

    def __init__(self) -> None:
        self.sentences: set[str] = set()
        self.paragraphs: set[str] = set()

    def line(self, text: str) -> str:
        kept = []
        for sentence in split_sentences(text):
            key = match_key(sentence)
            if len(key) >= MIN_DUPLICATE_CHARS:
                if key in self.sentences:
                    continue
                self.sentences.add(key)
            kept.append(sentence)
        return "".join(kept).strip()

    def paragraph(self, text: str) -> bool:
        key = match_key(text)
        if key in self.paragraphs:
            return False
        self.paragraphs.add(key)
        return True


def classify_lines(text: str) -> list[Item]:
    """Split a page into items in reading order, joining lines that OCR broke mid-sentence.

    Args:
        text: the decoded page.
    Returns:
        Items with roles heading, para, bullet (△ items), notice (报/送 lines), caption, byline,
        endcredit. Paragraph texts are cleaned (`rag.textnorm.clean_body`); exact repeats are gone.
    """
    lines = normalize_chars(text).split("\n")
    page = _ItemBuilder()
    for i, (line, role) in enumerate(zip(lines, _line_roles(lines))):
        page.add(i, line.strip(), role)
    return page.finish()


def _line_roles(lines: list[str]) -> list[str]:
    """The role of every line: primitive roles, then bylines and headings by their context."""
    markdown = any(MARKDOWN_HEADING.match(l.strip()) for l in lines if l.strip())
    roles = [_primitive_role(l, markdown) for l in lines]
    if markdown:
        return [("byline" if r == "text" and _after_md(roles, i) and _is_byline(clean_heading(lines[i]), True) else r)
                for i, r in enumerate(roles)]
    return _heading_roles(lines, roles)


def _attribution(text: str) -> str | None:
    """Who a △ item quotes: the name in brackets at its end."""
    found = ATTRIBUTION.search(clean_body(text))
    return found.group(1) if found else None


class _ItemBuilder:
    """Collects a page's items line by line; body lines accumulate into the open paragraph."""

    def __init__(self) -> None:
        self.items: list[Item] = []
        self.dedupe = _Deduper()
        self.buf: Item | None = None  # the paragraph (or bullet, notice) being joined
        self.date_prefix = ""  # a date label line, put before the next paragraph
        self.last_heading_line = -2

    def add(self, i: int, s: str, role: str) -> None:
        """Take line ``i`` (stripped text ``s``) of the given role."""
        if role in ("blank", "junk"):
            return
        if role in ("text", "bullet", "notice"):
            self._body(i, s, role)
            return
        self._flush()
        if role == "date":
            self.date_prefix = clean_body(s) + "："
        elif role in ("heading", "md"):
            self._heading(i, s, role)
        elif role == "captionline":
            self._caption(i, s)
        elif role == "credit":
            self._credit(i, s)
        elif role in ("byline", "endcredit"):
            self.items.append(Item(role, clean_heading(s), i))

    def finish(self) -> list[Item]:
        """The items, once the last line has been added."""
        self._flush()
        return self.items

    def _flush(self) -> None:
        if self.buf is not None:
            self.buf.text = clean_body(self.buf.text)
            if self.buf.text and self.dedupe.paragraph(self.buf.text):
                self.items.append(self.buf)
        self.buf = None

    def _body(self, i: int, s: str, role: str) -> None:
        body = BULLET.sub("", s) if role == "bullet" else s
        body = self.dedupe.line(body)
        if not body:
            return
        buf = self.buf
        if role != "text" or buf is None or ends_sentence(buf.text):
            self._flush()
            kind = "para" if role == "text" else role
            self.buf = Item(kind, self.date_prefix + body, i)
            self.date_prefix = ""
            if kind == "bullet":
                self.buf.credit = _attribution(body)
        else:
            buf.text = _join(buf.text, body)
            if buf.role == "bullet" and buf.credit is None:
                buf.credit = _attribution(buf.text)

    def _heading(self, i: int, s: str, role: str) -> None:
        items = self.items
        heading = clean_heading(MARKDOWN_HEADING.match(s).group(2) if role == "md" else s)
        if role == "heading" and items and items[-1].role == "heading" and self.last_heading_line == i - 1:
            sep = "" if items[-1].text.endswith(("：", "—", "·")) else " "
            items[-1].text += sep + heading  # a headline printed over two lines
        else:
            items.append(Item("heading", heading, i))
        self.last_heading_line = i

    def _caption(self, i: int, s: str) -> None:
        caption = CAPTION_LINE.sub("", s)
        found = INLINE_CREDIT.match(caption)
        text_part, credit = (found.group(1), found.group(2).strip()) if found else (caption, None)
        text_part = re.sub(rf"[{CIRCLED}\s]+$", "", text_part)
        self.items.append(Item("caption", clean_body(text_part), i, credit))

    def _credit(self, i: int, s: str) -> None:
        last = self.items[-1] if self.items else None
        if last is not None and last.role == "para" and len(last.text) <= 200:
            last.role, last.credit = "caption", clean_heading(s)  # a short paragraph over a credit: a caption
        else:
            self.items.append(Item("byline", clean_heading(s), i))


def _after_md(roles: list[str], i: int) -> bool:
    for j in range(i - 1, -1, -1):
        if roles[j] != "blank":
            return roles[j] == "md"
    return False

