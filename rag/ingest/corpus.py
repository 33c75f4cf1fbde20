"""Newspaper pages → articles → paragraph chunks: the newspaper-specific part of the product.

A page is OCR text of a printed newspaper page (or a bulletin). Lines are broken mid-sentence,
articles are concatenated, headlines may come before or after the text they head, photo captions
sit between articles. `parse_page` recovers the articles a reader sees; `chunk_article` cuts them
into paragraph chunks that never cross an article (`rag.ingest.chunks`).

Decisions worth knowing:
- Photo captions become small articles of their own (kind "caption"), headed by their first
  sentence. In OCR order a caption often sits far from the story it illustrates, so attaching it to
  a neighbour would risk labelling it with the wrong headline.
- A heading directly followed by another heading is a kicker (引题 or section label such as
  "市内信息"); it is kept on the article it introduces, not made an article of its own.
- Headings left with no text at the end of a page are page banners, kept in `Page.banners`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import CorpusError
from rag.ingest.chunks import Chunk, chunk_article
# PAGE_SUFFIXES and page_files are re-exported: rag.ingest.discovery decides what a page is.
from rag.ingest.discovery import PAGE_SUFFIXES, Refusal, discover_pages, page_files, read_page_bytes  # noqa: F401
from rag.ingest.pagelayout import Item, classify_lines
from rag.textnorm import CJK_RE, cjk_ratio, split_sentences

@dataclass(frozen=True)
class Article:
    """One article as a reader sees it on the page."""

    source: str
    number: int
    headline: str
    kind: str  # "article", "bulletin", "caption" or "notice"
    paragraphs: tuple[str, ...]
    kicker: str | None = None
    byline: str | None = None

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


@dataclass
class Page:
    source: str
    articles: list[Article]
    banners: list[str] = field(default_factory=list)


@dataclass
class Corpus:
    pages: list[Page]
    chunks: list[Chunk]
    skipped: list[tuple[str, str]]
    checksum: str
    refused: list[Refusal] = field(default_factory=list)  # links, FIFOs, devices: never opened

    @property
    def articles(self) -> list[Article]:
        return [a for p in self.pages for a in p.articles]


# --------------------------------------------------------------------------- reading pages


def read_page(path: Path, folder: Path | None = None) -> str:
    """Decode a page: UTF-8 (with or without BOM), UTF-16 with BOM, or GB18030.

    Args:
        path: the page file.
        folder: the corpus folder it must lie in (see `read_page_bytes`).
    Raises:
        CorpusError: the bytes are none of these, with what to run to fix the file.
    """
    data = read_page_bytes(path, folder)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # Other encodings decode almost any bytes; accept them only when the result reads as Chinese.
    encodings = ["utf-16"] if data.startswith((b"\xff\xfe", b"\xfe\xff")) else []
    for encoding in encodings + ["gb18030"]:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _reads_as_chinese(text):
            return text
    raise CorpusError(
        f"{path.name} is not UTF-8 or GB18030 text; convert it, e.g. "
        f"`iconv -f BIG5 -t UTF-8 {path.name} > fixed.txt`, then run `rag index` again"
    )


def _reads_as_chinese(text: str) -> bool:
    """Mostly Chinese characters, and mostly common ones (GB2312), as real text is and noise is not."""
    if cjk_ratio(text) < 0.3 or any(ch in text for ch in "\ufffd\x00"):
        return False
    # The characters cjk_ratio counted; rare ones (Extension A) are not in GB2312, so noise that
    # decodes to them reads as uncommon, as it should.
    hanzi = [ch for ch in text if CJK_RE.match(ch)]
    common = 0
    for ch in hanzi:
        try:
            common += ch.encode("gb2312")[0] >= 0xB0
        except UnicodeEncodeError:
            pass
    return bool(hanzi) and common / len(hanzi) >= 0.8


def corpus_checksum(files: list[Path], folder: Path, refused: list[Refusal] = ()) -> str:
    """SHA-256 over the names and bytes of the page files, and the names of the refused files.

    The refusals count so that a link put into the corpus marks the index stale and the rebuild
    reports it; with none the sum is what it was before refusals existed (old indexes stay fresh).
    """
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(hashlib.sha256(read_page_bytes(path, folder)).digest())
    for refusal in refused:
        digest.update(b"refused\0" + f"{refusal.file}\0{refusal.kind}".encode() + b"\0")
    return digest.hexdigest()


def load_corpus(folder: Path, max_chars: int = 350) -> Corpus:
    """Read every page under folder into articles and chunks.

    Args:
        folder: the corpus folder (`seeds/`).
        max_chars: the longest chunk, in characters.
    Returns:
        The corpus; unreadable pages are listed in `.skipped` with the reason, and links, FIFOs
        and other files that are not regular files inside the folder in `.refused` (never opened).
    Raises:
        CorpusError: the folder is missing or holds no readable page.
    """
    found = discover_pages(folder)
    files = found.pages
    if not files:
        refused = "".join(f"; refused {r.file}: {r.reason}" for r in found.refused)
        raise CorpusError(f"no pages (.txt or .md) in {folder}{refused}; add newspaper pages, then run `rag index`")
    pages, chunks, skipped = [], [], []
    for path in files:
        name = str(path.relative_to(folder))
        try:
            page = parse_page(read_page(path, folder), name)
        except CorpusError as exc:
            skipped.append((name, str(exc)))
            continue
        if not page.articles:
            skipped.append((name, f"{name} holds no text"))
            continue
        pages.append(page)
        for article in page.articles:
            chunks.extend(chunk_article(article, max_chars))
    if not pages:
        reasons = "; ".join([reason for _, reason in skipped] + [f"refused {r.file}: {r.reason}" for r in found.refused])
        raise CorpusError(f"no readable page in {folder}: {reasons}")
    return Corpus(pages, chunks, skipped, corpus_checksum(files, folder, found.refused), found.refused)


# --------------------------------------------------------------------------- articles


@dataclass
class _Draft:
    headline: str | None
    kind: str
    pos: int
    kicker: str | None = None
    byline: str | None = None
    paragraphs: list[str] = field(default_factory=list)


def first_sentence(text: str, limit: int = 40) -> str:
    """A headline for an article that has none: its first sentence, without the full stop."""
    sentence = split_sentences(text)[0] if text else ""
    sentence = sentence.strip().rstrip("。；！？…").strip()
    return sentence if len(sentence) <= limit else sentence[: limit - 1] + "…"


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
    drafts = [d for d in drafts if d.paragraphs]
    drafts.sort(key=lambda d: d.pos)
    articles = []
    for number, d in enumerate(drafts, start=1):
        headline = d.headline or first_sentence(d.paragraphs[0])
        articles.append(Article(source, number, headline, d.kind, tuple(d.paragraphs), d.kicker, d.byline))
    return Page(source, articles, banners)


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
