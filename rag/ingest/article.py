"""The article, whatever file it came from: its text, its headline and where it was printed.

Every reader (`rag.ingest.pages` for OCR pages, `rag.ingest.dumps` for one-article-per-line
dumps, `rag.ingest.records` for JSON Lines / CSV, `rag.ingest.frontmatter` for one article per
file) produces `Article`s; chunks, the index and citations carry their metadata on from here.

Dates are ISO strings with a precision, because archives rarely print a full date on every item:
"2023-07-28" (day), "2023-07" (month), "--07-28" (month-day: a stamp without a year that the
file's other stamps could not complete) or None (unknown). `date_note` says where a date came
from when it is not simply printed (e.g. "year from the file's other stamps").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rag.textnorm import split_sentences

DATE_PRECISIONS = ("day", "month", "month-day", "unknown")
# Where a headline came from: printed on the page (or given as a field), or made from the lead.
HEADLINE_SOURCES = ("page", "field", "lead")


@dataclass(frozen=True)
class Article:
    """One article as a reader sees it, with its printed metadata."""

    source: str  # the file, relative to the corpus folder
    number: int  # the article's number in its file (1, 2, …)
    headline: str
    kind: str  # "article", "bulletin", "caption" or "notice"
    paragraphs: tuple[str, ...]
    kicker: str | None = None
    byline: str | None = None
    date: str | None = None  # ISO, see the module docstring
    date_precision: str = "unknown"
    date_note: str | None = None
    paper: str | None = None  # the outlet: a newspaper, agency or site
    page: str | None = None  # page or edition, as printed ("A3", "第2版")
    section: str | None = None  # the paper's section or column (国际, 财经…)
    url: str | None = None
    author: str | None = None
    record: int | None = None  # line or record number in the file (1-based), for dumps and records
    headline_source: str = "page"
    # Sub-headings (小标题) inside the story: (index of the paragraph they head, the sub-heading).
    subheads: tuple[tuple[int, str], ...] = ()

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)

    def subhead_at(self, paragraph: int) -> str | None:
        """The sub-heading over paragraph number ``paragraph`` (1-based), or None."""
        current = None
        for start, title in self.subheads:
            if start < paragraph:
                current = title
        return current


@dataclass
class Page:
    """One file of the corpus and the articles read from it."""

    source: str
    articles: list[Article]
    banners: list[str] = field(default_factory=list)
    format: str = "page"  # the reader that read it: rag.ingest.formats.FORMATS


def first_sentence(text: str, limit: int = 40) -> str:
    """A headline for an article that has none: its first sentence, without the full stop."""
    sentence = split_sentences(text)[0] if text else ""
    sentence = sentence.strip().rstrip("。；！？…").strip()
    return sentence if len(sentence) <= limit else sentence[: limit - 1] + "…"


def provenance(item) -> str:
    """"outlet · date · page" for an article, chunk or passage, with what is known ("" if nothing).

    The one place citations get their provenance line from (chat, CLI, Answer.to_dict, reports).
    """
    parts = [getattr(item, "paper", None), display_date(getattr(item, "date", None)),
             getattr(item, "page", None)]
    return " · ".join(p for p in parts if p)


def date_order(date: str | None) -> tuple:
    """Sort key of an ISO date of any precision, earliest first: dates with a year (a month counts
    from its 1st), then month-day dates without one, then none."""
    if not date:
        return (2,)
    parts = [int(p) for p in date.lstrip("-").split("-") if p.isdigit()]
    if date.startswith("--"):
        return (1, *parts)
    return (0, *(parts + [1, 1])[:3])


def display_date(date: str | None) -> str | None:
    """An ISO date as shown to readers: "2023-07-28", "2023-07", "07-28 (year unknown)"."""
    if not date:
        return None
    if date.startswith("--"):
        return f"{date[2:]} (year unknown)"
    return date
