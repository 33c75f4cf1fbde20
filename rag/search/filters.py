"""Search filters: a date range and outlets, applied inside the search (not after top-k).

`SearchFilter.parse` reads what users type ("2023", "2023-07", "2023-07-28", "2023年7月"), and
`SearchFilter.mask` says which chunks may be returned. A chunk whose date is unknown, or known
only as month-day without a year, never passes a date filter: a date filter never returns an
article it cannot place inside the range. A month-precision date passes when its whole month lies
inside the range's days, so "2023-07" passes 2023-07-01…2023-07-31 but not 2023-07-10…2023-07-20.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date as Date

import numpy as np

from rag.errors import BadQuestion

_DATE_INPUT = re.compile(r"^\s*(\d{4})(?:\s*[-/.年]\s*(\d{1,2})(?:\s*[-/.月]\s*(\d{1,2})\s*日?)?\s*月?)?\s*年?\s*$")


def _bounds(text: str, end: bool) -> Date:
    """The first (or, with ``end``, last) day a typed date covers: "2023-07" → 07-01 / 07-31."""
    match = _DATE_INPUT.match(str(text))
    if not match:
        raise BadQuestion(f"{text!r} is not a date; write it as 2023, 2023-07 or 2023-07-28")
    year, month, day = (int(g) if g else None for g in match.groups())
    try:
        if month is None:
            return Date(year, 12, 31) if end else Date(year, 1, 1)
        if day is None:
            return Date(year, month, calendar.monthrange(year, month)[1] if end else 1)
        return Date(year, month, day)
    except ValueError as exc:
        raise BadQuestion(f"{text!r} is not a date ({exc}); write it as 2023, 2023-07 or 2023-07-28") from exc


def chunk_day_span(date: str | None, precision: str) -> tuple[int, int] | None:
    """The ordinal days (first, last) a chunk's date covers, or None when it cannot be placed."""
    if not date or precision not in ("day", "month") or date.startswith("--"):
        return None
    try:
        parts = [int(p) for p in date.split("-")]
        if precision == "day":
            day = Date(*parts[:3]).toordinal()
            return day, day
        year, month = parts[:2]
        return Date(year, month, 1).toordinal(), Date(year, month, calendar.monthrange(year, month)[1]).toordinal()
    except (ValueError, TypeError):
        return None


def outlet_key(name: str | None) -> str:
    """How outlets are compared: case and spaces do not count."""
    return "".join((name or "").split()).casefold()


@dataclass(frozen=True)
class SearchFilter:
    """Which articles a search may return: days from/to (inclusive ordinals) and outlets."""

    day_from: int | None = None
    day_to: int | None = None
    papers: tuple[str, ...] = ()  # outlet keys (`outlet_key`); any of them passes

    @classmethod
    def parse(cls, date_from=None, date_to=None, paper=None) -> "SearchFilter | None":
        """A filter from what a user typed, or None when nothing was given.

        Args:
            date_from: first date, "2023", "2023-07" or "2023-07-28" (a month starts on its 1st).
            date_to: last date, same forms (a month ends on its last day).
            paper: an outlet name, or several as a list or comma-separated.
        Raises:
            BadQuestion: a date that is not one, or a range that ends before it starts.
        """
        start = _bounds(date_from, end=False).toordinal() if _given(date_from) else None
        stop = _bounds(date_to, end=True).toordinal() if _given(date_to) else None
        if start is not None and stop is not None and stop < start:
            raise BadQuestion(f"the date range ends ({date_to}) before it starts ({date_from}); swap them")
        if isinstance(paper, str):
            paper = re.split(r"[,，、]", paper)
        papers = tuple(dict.fromkeys(outlet_key(p) for p in (paper or ()) if outlet_key(p)))
        if start is None and stop is None and not papers:
            return None
        return cls(start, stop, papers)

    @property
    def has_dates(self) -> bool:
        return self.day_from is not None or self.day_to is not None

    def describe(self) -> str:
        """The filter in words, for status lines and answers ("2023-07-01 – 2023-07-31 · 人民网")."""
        parts = []
        if self.has_dates:
            start = Date.fromordinal(self.day_from).isoformat() if self.day_from is not None else "…"
            stop = Date.fromordinal(self.day_to).isoformat() if self.day_to is not None else "…"
            parts.append(f"{start} – {stop}")
        if self.papers:
            parts.append(", ".join(self.papers))
        return " · ".join(parts)

    def mask(self, spans: np.ndarray, outlets: np.ndarray) -> np.ndarray:
        """Which chunks pass.

        Args:
            spans: (n, 2) int array of each chunk's first and last ordinal day, -1 where unknown.
            outlets: (n,) array of each chunk's outlet key ("" where unknown).
        Returns:
            A boolean array of n.
        """
        keep = np.ones(len(spans), dtype=bool)
        if self.has_dates:
            keep &= spans[:, 0] >= 0
            if self.day_from is not None:
                keep &= spans[:, 0] >= self.day_from
            if self.day_to is not None:
                keep &= spans[:, 1] <= self.day_to
        if self.papers:
            keep &= np.logical_or.reduce([outlets == paper for paper in self.papers])
        return keep


def _given(value) -> bool:
    return value is not None and str(value).strip() != ""
