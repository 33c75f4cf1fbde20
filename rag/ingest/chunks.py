"""Articles → paragraph chunks: the unit that is embedded, searched and cited.

A chunk never crosses an article and is an exact slice of the article's text, so a citation can
point at its characters. Short paragraphs are merged with the next (a one-line paragraph says
too little to be found by meaning); long ones are cut at sentence ends into balanced pieces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rag.textnorm import split_sentences

if TYPE_CHECKING:
    from rag.ingest.article import Article

# Changing how pages are parsed or cut changes chunks and their ids: the index records this and
# rebuilds. 4: bylines and names may hold Extension A characters (rag.textnorm.CJK). 5: article
# metadata (date, outlet, page…), sub-headings as sections of their story, reprint groups.
# 6: a chunk is embedded under its own heading (the sub-heading), not "story › sub-heading".
# 7: a page's bylines and photo credits are in its text (rag.ingest.pages).
CHUNKER_VERSION = "7"
MIN_CHUNK_CHARS = 120


class Headed:
    """How a passage of an article is named: `heading` (what it is about) and `label` (as cited),
    for chunks and the passages search makes of them (both have `article` and `subhead`)."""

    __slots__ = ()  # so a slotted Chunk has no per-object __dict__

    @property
    def heading(self) -> str:
        """The chunk's own heading: its sub-heading inside a sectioned story, else the headline.
        What is embedded, weighed as evidence and shown to the LLM with the text: the section's
        title says what the passage is about better than the story's."""
        return self.subhead or self.article

    @property
    def label(self) -> str:
        """The article as cited: "headline › sub-heading" inside a story with sub-headings."""
        return f"{self.article} › {self.subhead}" if self.subhead else self.article


# Slotted: a whole-archive index holds ~200,000 chunks in memory, and without a __dict__ each costs
# about half as much (rag.search.index also shares their repeated strings).
@dataclass(frozen=True, slots=True)
class Chunk(Headed):
    """A passage of one article: the unit that is embedded, searched and cited."""

    chunk_id: str
    source: str
    article: str
    article_no: int
    paragraph: int
    start: int
    end: int
    text: str
    kind: str = "article"
    kicker: str | None = None
    # The article's metadata (rag.ingest.article.Article), carried so search can filter on it and
    # citations can show it without reading the file again.
    date: str | None = None
    date_precision: str = "unknown"
    paper: str | None = None
    page: str | None = None
    section: str | None = None
    url: str | None = None
    record: int | None = None
    headline_source: str = "page"
    subhead: str | None = None  # the story's sub-heading (小标题) over this chunk
    group: str | None = None  # reprint group (rag.ingest.reprints): copies of one story share it

    @property
    def context_text(self) -> str:
        """The text with its heading in front, as embedded and keyword-indexed."""
        return f"{self.heading}\n{self.text}"



def _pieces(paragraph: str, max_chars: int) -> list[str]:
    """Split a long paragraph at sentence ends into pieces of at most max_chars."""
    if len(paragraph) <= max_chars:
        return [paragraph]
    sentences: list[str] = []
    for sentence in split_sentences(paragraph):
        while len(sentence) > max_chars:  # one run-on sentence: cut at a comma if there is one
            cut = sentence.rfind("，", 0, max_chars)
            cut = cut + 1 if cut > max_chars // 3 else max_chars
            sentences.append(sentence[:cut])
            sentence = sentence[cut:]
        sentences.append(sentence)
    # Balance the pieces: aim for equal sizes rather than a full piece and a scrap.
    n_pieces = -(-len(paragraph) // max_chars)
    target = len(paragraph) / n_pieces
    pieces, buf = [], ""
    for sentence in sentences:
        if buf and (len(buf) + len(sentence) > max_chars or len(buf) >= target):
            pieces.append(buf)
            buf = ""
        buf += sentence
    if buf:
        if pieces and len(buf) < MIN_CHUNK_CHARS // 2 and len(pieces[-1]) + len(buf) <= max_chars * 1.15:
            pieces[-1] += buf
        else:
            pieces.append(buf)
    return pieces


def chunk_article(article: Article, max_chars: int = 350) -> list[Chunk]:
    """Cut an article into paragraph chunks of at most ~max_chars that never leave the article.

    Short paragraphs are merged with the following ones; long ones are split at sentence ends.
    Each chunk is an exact slice `article.text[start:end]`.
    """
    text = article.text
    units: list[tuple[int, int, int]] = []  # (paragraph number, start, end)
    offset = 0
    for number, paragraph in enumerate(article.paragraphs, start=1):
        start = offset
        for piece in _pieces(paragraph, max_chars):
            units.append((number, start, start + len(piece)))
            start += len(piece)
        offset += len(paragraph) + 2
    merged: list[list[int]] = []
    for number, start, end in units:
        last = merged[-1] if merged else None
        # A chunk stays inside one sub-heading's section, so it is cited under the right one.
        same_section = last is not None and article.subhead_at(last[0]) == article.subhead_at(number)
        if last and same_section and (last[2] - last[1] < MIN_CHUNK_CHARS) and end - last[1] <= max_chars:
            last[2] = end
        else:
            merged.append([number, start, end])
    stem = Path(article.source).stem
    chunks = []
    for part, (number, start, end) in enumerate(merged, start=1):
        chunks.append(Chunk(
            chunk_id=f"{stem}:{article.number}:{part}",
            source=article.source,
            article=article.headline,
            article_no=article.number,
            paragraph=number,
            start=start,
            end=end,
            text=text[start:end],
            kind=article.kind,
            kicker=article.kicker,
            date=article.date,
            date_precision=article.date_precision,
            paper=article.paper,
            page=article.page,
            section=article.section,
            url=article.url,
            record=article.record,
            headline_source=article.headline_source,
            subhead=article.subhead_at(number),
        ))
    return chunks
