"""What a timeline hands out (`rag.timeline`): its entries, its counts per period, its checked
period summaries, and the `Timeline` that holds them, with its plain-text form for the terminal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import NamedTuple

from rag.answer.cite import Citation
from rag.search.passage import Passage


@dataclass(frozen=True)
class Entry:
    """One dated statement: an article's own sentence, cited."""

    date: str  # ISO, as the article gives it ("2023-07-28", or "2023-07" at month precision)
    precision: str  # "day" or "month"
    text: str  # the sentence, as printed
    citation: Citation
    also_in: tuple[str, ...] = ()  # the story's other printings, "outlet · date · headline"
    period: str | None = None  # the period it is counted in; None: its date is coarser than the periods
    passage: Passage | None = None  # the passage the sentence is from (the chat opens its article)


class PeriodCount(NamedTuple):
    """Matching articles in one period, and what the archive holds then."""

    period: str  # ISO label: "2023-07-28", "2023-W30", "2023-07", "2023"
    n_articles: int  # matching articles (every printing of a reprinted story)
    archive_articles: int  # dated articles of the archive in the period (of the outlet, if one was given)
    share: float | None  # n_articles / archive_articles; None when the archive holds none then
    first: str  # the period's first and last day, ISO
    last: str


@dataclass(frozen=True)
class PeriodSummary:
    """An LLM line for one period, checked against that period's entries."""

    period: str
    text: str  # the supported sentences with their [n] markers (n: entry numbers); "" if none
    citations: list[Citation] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # sentences no entry supports, left out


@dataclass
class Timeline:
    """A topic's dated, cited entries and its counts per period."""

    topic: str
    entries: list[Entry]
    counts: list[PeriodCount]
    periods_without_coverage: list[str]
    granularity: str = "day"
    covered: bool = True  # False: no article matches; see `note` and `nearest`
    note: str = ""  # what the reader should know (left out, capped, nothing found)
    nearest: list[str] = field(default_factory=list)  # the closest articles' headlines, when not covered
    undated: int = 0  # matching articles left out of the entries: no date that can be ordered
    unplaced: int = 0  # entries whose date is coarser than the periods (not in any count)
    filter: str = ""  # the date range and outlet, in words
    summaries: list[PeriodSummary] = field(default_factory=list)
    timings: dict = field(default_factory=dict)

    def entries_in(self, period: str) -> list[Entry]:
        """The entries counted in one period."""
        return [e for e in self.entries if e.period == period]

    def to_dict(self) -> dict:
        """JSON-ready form (`rag timeline --json`), without the passages the entries came from."""
        out = asdict(self)
        for entry in out["entries"]:
            entry.pop("passage", None)
        out["counts"] = [c._asdict() for c in self.counts]
        return out


    def lines(self) -> list[str]:
        """The timeline as the terminal shows it (`rag timeline`)."""
        where = f" [only {self.filter}]" if self.filter else ""
        if not self.covered:
            out = [f"{self.topic}{where}: {self.note}."]
            if self.nearest:
                out.append("The nearest articles: " + "; ".join(self.nearest))
            return out
        out = [f"{self.topic}{where}: {len(self.entries)} entries, counted per {self.granularity}"]
        if self.note:
            out.append(f"({self.note})")
        out.append("")
        for c in self.counts:
            share = f"{c.share:.2%} of {c.archive_articles}" if c.share is not None else "the archive has none"
            bar = "#" * min(40, c.n_articles) if c.n_articles else "· gap"
            out.append(f"  {c.period:>10}  {c.n_articles:4d}  ({share})  {bar}")
        for period, summary, entries in self.grouped():
            out.append(f"\n{period or 'dated to the month only'}")
            if summary is not None and summary.text:
                out.append(f"  Summary (checked): {summary.text}")
            if summary is not None and summary.dropped:
                out.append(f"  (left out, not supported by the entries: {' '.join(summary.dropped)})")
            out.extend(line for e in entries for line in _entry_lines(e))
        return out

    def grouped(self, entries: list[Entry] | None = None) -> list[tuple]:
        """(period, its checked PeriodSummary or None, its entries) for each run of consecutive
        entries (of ``entries``, default all) in one period: what the terminal and the chat's tab
        show under one heading."""
        summaries = {s.period: s for s in self.summaries}
        groups: list[tuple] = []
        for e in self.entries if entries is None else entries:
            if not groups or groups[-1][0] != e.period:
                groups.append((e.period, summaries.get(e.period), []))
            groups[-1][2].append(e)
        return groups


def _entry_lines(e: Entry) -> list[str]:
    """One entry as the terminal shows it."""
    c = e.citation
    where = [c.label or c.article, c.provenance, f"{c.source}, ¶{c.paragraph}"]
    out = [f"  [{c.n}] {e.date}  {e.text}", "       — " + " · ".join(w for w in where if w)]
    if e.also_in:
        out.append(f"       also printed in: {'; '.join(e.also_in)}")
    return out
