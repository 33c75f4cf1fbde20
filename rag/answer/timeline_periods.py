"""Periods of a timeline: day, week, month or year, and how many dated articles the archive holds
in each (what a topic's count is normalised by).

A period is numbered (`period_number`) so that whole arrays of dates are placed at once: days by
their ordinal, weeks (Monday to Sunday, as ISO weeks) by (ordinal - 1) // 7 — ordinal 1,
0001-01-01, is a Monday — months by year * 12 + month - 1, years by the year. Labels are ISO:
"2023-07-28", "2023-W30", "2023-07", "2023".

An article is placed in a period only when its whole date span lies inside it: a month-precision
date ("2023-07") is in the month 2023-07 and the year 2023, never in a day or a week of July, and
such articles are counted apart (`ArchiveCounts.unplaced`), never spread or guessed.

"auto" picks the finest granularity that keeps a span at a readable number of bars
(`AUTO_LIMITS`): up to a month of days, half a year of weeks, four years of months, else years.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date as Date

import numpy as np

from rag.errors import BadQuestion

GRANULARITIES = ("day", "week", "month", "year")
# (granularity, the longest span in days it is chosen for by "auto").
AUTO_LIMITS = (("day", 31), ("week", 183), ("month", 4 * 366))


def check_granularity(granularity: str | None) -> str:
    """The granularity asked for: "auto" or one of GRANULARITIES.

    Raises:
        BadQuestion: anything else.
    """
    value = (granularity or "auto").strip().lower()
    if value != "auto" and value not in GRANULARITIES:
        raise BadQuestion(f"granularity {granularity!r} is not one of auto, {', '.join(GRANULARITIES)}; "
                          f"pick one of them")
    return value


def choose_granularity(first_day: int, last_day: int) -> str:
    """The "auto" granularity for a span of ordinal days (inclusive)."""
    days = last_day - first_day + 1
    for granularity, limit in AUTO_LIMITS:
        if days <= limit:
            return granularity
    return "year"


def period_number(days: np.ndarray, granularity: str) -> np.ndarray:
    """The number of the period each ordinal day falls in (an int array like ``days``)."""
    days = np.asarray(days, dtype=np.int64)
    if granularity == "day":
        return days.copy()
    if granularity == "week":
        return (days - 1) // 7
    # Months and years need the calendar: convert each distinct day once.
    unique, inverse = np.unique(days, return_inverse=True)
    dates = [Date.fromordinal(int(d)) for d in unique]
    if granularity == "month":
        numbers = np.asarray([d.year * 12 + d.month - 1 for d in dates], dtype=np.int64)
    elif granularity == "year":
        numbers = np.asarray([d.year for d in dates], dtype=np.int64)
    else:
        raise BadQuestion(f"granularity {granularity!r} is not one of {', '.join(GRANULARITIES)}")
    return numbers[inverse].reshape(days.shape)


def period_bounds(number: int, granularity: str) -> tuple[int, int]:
    """The first and last ordinal day of period ``number``."""
    if granularity == "day":
        return number, number
    if granularity == "week":
        return number * 7 + 1, number * 7 + 7
    if granularity == "month":
        year, month = divmod(number, 12)
        first = Date(year, month + 1, 1)
        after = Date(year + (month == 11), (month + 1) % 12 + 1, 1)
        return first.toordinal(), after.toordinal() - 1
    return Date(number, 1, 1).toordinal(), Date(number, 12, 31).toordinal()


def period_label(number: int, granularity: str) -> str:
    """The ISO label of period ``number``: "2023-07-28", "2023-W30", "2023-07" or "2023"."""
    first, _ = period_bounds(number, granularity)
    day = Date.fromordinal(first)
    if granularity == "day":
        return day.isoformat()
    if granularity == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if granularity == "month":
        return f"{day.year}-{day.month:02d}"
    return str(day.year)


def place(spans: np.ndarray, granularity: str) -> np.ndarray:
    """The period number of each (first, last) ordinal span, or -1 where it cannot be placed
    (unknown, or wider than one period)."""
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    out = np.full(len(spans), -1, dtype=np.int64)
    known = spans[:, 0] >= 0
    if known.any():
        first = period_number(spans[known, 0], granularity)
        last = period_number(spans[known, 1], granularity)
        out[known] = np.where(first == last, first, -1)
    return out


@dataclass(frozen=True)
class ArchiveCounts:
    """Dated articles of the archive per period, for one granularity and outlet filter."""

    granularity: str
    per_period: dict[int, int]  # period number → articles
    unplaced: int  # articles with a date too coarse for this granularity (or none)


class ArchiveCalendar:
    """The archive's articles (one row per article, not per chunk) with their date spans and
    outlets, counted per period on demand; one per loaded index, safe to share between threads."""

    def __init__(self, index):
        firsts: dict[tuple, int] = {}
        for i, chunk in enumerate(index.chunks):
            firsts.setdefault((chunk.source, chunk.article_no), i)
        rows = np.fromiter(firsts.values(), dtype=np.int64, count=len(firsts))
        self.spans = index.day_spans[rows] if len(rows) else np.zeros((0, 2), dtype=np.int64)
        self.outlets = index.outlet_keys[rows] if len(rows) else np.zeros(0, dtype=str)
        self._counts: dict[tuple, ArchiveCounts] = {}
        self._lock = threading.Lock()

    @property
    def first_day(self) -> int | None:
        known = self.spans[self.spans[:, 0] >= 0]
        return int(known[:, 0].min()) if len(known) else None

    @property
    def last_day(self) -> int | None:
        known = self.spans[self.spans[:, 0] >= 0]
        return int(known[:, 1].max()) if len(known) else None

    def counts(self, granularity: str, papers: tuple[str, ...] = ()) -> ArchiveCounts:
        """Dated articles per period (of these outlets only, when given)."""
        key = (granularity, papers)
        with self._lock:
            if key not in self._counts:
                spans = self.spans
                if papers:
                    spans = spans[np.logical_or.reduce([self.outlets == p for p in papers])]
                numbers = place(spans, granularity)
                placed = numbers[numbers >= 0]
                found, n = np.unique(placed, return_counts=True)
                self._counts[key] = ArchiveCounts(granularity, dict(zip(map(int, found), map(int, n))),
                                                  int((numbers < 0).sum()))
            return self._counts[key]


_CALENDARS: dict[int, tuple[object, ArchiveCalendar]] = {}
_CALENDARS_LOCK = threading.Lock()


def calendar_of(index) -> ArchiveCalendar:
    """The calendar of a loaded index, built once per index object (~0.1 s per 100k chunks)."""
    with _CALENDARS_LOCK:
        held = _CALENDARS.get(id(index))
        if held is None or held[0] is not index:  # an id reused by a later index is not a hit
            held = _CALENDARS[id(index)] = (index, ArchiveCalendar(index))
            while len(_CALENDARS) > 4:
                _CALENDARS.pop(next(iter(_CALENDARS)))
        return held[1]
