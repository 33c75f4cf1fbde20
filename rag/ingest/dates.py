"""Dates as people write them, read into the ISO forms of `rag.ingest.article`.

Two readers live here: `parse_date` for a field value (a JSONL/CSV column, a front-matter key),
which must be the whole date and nothing else, and `parse_stamp` for the date stamp a dump prints
before `正文：` ("2023-07-27 16:50", "7-20 15:37", "[2023/07/20  16:52]", "202307/1915:55:52",
"来源：央视网  |  2023年07月20日 08:57:43"), which finds the date inside a messier prefix.

Key decisions: a time of day is read past and dropped (the index filters by day); a date that
cannot exist (2023-02-30, month 13) is no date, so that a number that merely looks like one is
never taken for a date; a two-digit year is 20YY (the archives are of this century); a stamp
without a year stays month-day ("--07-20") here: completing it from the file's other stamps is
the dump reader's decision (`rag.ingest.dumps`), made once per file.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass

DATE_FORMS = ("day", "month", "month-day")  # the precisions a parsed date can have


@dataclass(frozen=True)
class DateValue:
    """A date read from text: ISO string, precision ("day", "month", "month-day") and a note."""

    iso: str  # "2023-07-28", "2023-07" or "--07-28"
    precision: str
    note: str | None = None

    @property
    def year(self) -> int | None:
        return None if self.precision == "month-day" else int(self.iso[:4])

    @property
    def month_day(self) -> str | None:
        """"MM-DD" for a day or month-day date, None for a month."""
        if self.precision == "month":
            return None
        return self.iso[-5:]


_SEP = r"[-/.]"
# A time of day after a date, maybe with seconds, fraction and zone ("T10:15:00+08:00", " 10:15").
_TIME = r"(?:(?:[T ]+|\s*)\d{1,2}[:：]\d{2}(?:[:：]\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
_FIELD_FORMS = (
    # 2023-07-28, 2023/7/28, 2023.07.28 (+ time)
    re.compile(rf"(?P<y>\d{{4}})(?P<s>{_SEP})(?P<m>\d{{1,2}})(?P=s)(?P<d>\d{{1,2}}){_TIME}"),
    # 2023年7月28日 (+ time)
    re.compile(rf"(?P<y>\d{{4}})\s*年\s*(?P<m>\d{{1,2}})\s*月\s*(?P<d>\d{{1,2}})\s*[日号]?{_TIME}"),
    # 20230728 (+ time): eight digits and nothing else
    re.compile(rf"(?P<y>\d{{4}})(?P<m>\d{{2}})(?P<d>\d{{2}}){_TIME}"),
    # 2023-07, 2023/07, 2023.7
    re.compile(rf"(?P<y>\d{{4}}){_SEP}(?P<m>\d{{1,2}})"),
    # 2023年7月
    re.compile(r"(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月(?:份)?"),
    # 7月28日, 07-28 (no year)
    re.compile(r"(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号]"),
    re.compile(r"(?P<m>\d{1,2})-(?P<d>\d{1,2})"),
)


def make_date(year: int | None, month: int, day: int | None, note: str | None = None,
              default_year: int | None = None) -> DateValue | None:
    """The DateValue of a year, month and day, or None when no such date exists.

    Args:
        year: four-digit year, a two-digit one (23 → 2023), or None when the text had none.
        month: 1–12.
        day: 1–31, or None for a month date.
        note: where the date came from, when it is not simply printed.
        default_year: the year for a date printed without one; None keeps it month-day.
    Returns:
        The date, or None for an impossible one (month 13, 30 February, year 0099).
    """
    if year is None and default_year is not None:
        year = default_year
    if year is not None and year < 100:
        year += 2000
    if year is not None and not 1800 <= year <= 2200:
        return None
    if not 1 <= month <= 12:
        return None
    if day is None:
        if year is None:
            return None
        return DateValue(f"{year:04d}-{month:02d}", "month", note)
    try:
        # A leap year checks 29 February when the year is unknown.
        _dt.date(year if year is not None else 2000, month, day)
    except ValueError:
        return None
    if year is None:
        return DateValue(f"--{month:02d}-{day:02d}", "month-day", note)
    return DateValue(f"{year:04d}-{month:02d}-{day:02d}", "day", note)


def _from_match(m: re.Match, note: str | None = None,
                default_year: int | None = None) -> DateValue | None:
    groups = m.groupdict()
    year = int(groups["y"]) if groups.get("y") else None
    day = int(groups["d"]) if groups.get("d") else None
    return make_date(year, int(groups["m"]), day, note, default_year)


def parse_date(value: str, default_year: int | None = None) -> DateValue | None:
    """Read a field value that is a date and nothing else.

    Args:
        value: "2023-07-28", "2023/7/28", "2023.07.28", "2023年7月28日",
            "2023-07-28T10:15:00+08:00", "2023-07-28 10:15", "2023-07", "2023年7月",
            "20230728", or a date without a year ("7月28日", "07-28").
        default_year: the year for a date written without one; None keeps it month-day.
    Returns:
        The date (a time of day is dropped), or None when the value is no date or an impossible one.
    """
    if not isinstance(value, str):
        return None
    text = value.strip().strip("[]【】()（）").strip()
    if not text or len(text) > 40:
        return None
    for form in _FIELD_FORMS:
        m = form.fullmatch(text)
        if m:
            note = None
            if "y" not in m.groupdict() and default_year is not None:
                note = "year given by the reader"
            return _from_match(m, note, default_year)
    return None


# Dates inside a dump's stamp prefix, most explicit first: the first form that matches wins, so
# a year-less form is only tried when no dated one is there. (?<!\d) and (?!\d) keep a form from
# matching inside a longer number; times ("16:50", "16：40") use colons, which no form reads.
_STAMP_FORMS = (
    re.compile(r"(?<!\d)(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号]?"),
    re.compile(r"(?<!\d)(?P<y>\d{4})(?P<s>[-/.])(?P<m>\d{1,2})(?P=s)(?P<d>\d{1,2})(?!\d)"),
    # "202307/21 07:57:00" and "202307/1915:55:52": year and month run together, the time may too.
    re.compile(r"(?<!\d)(?P<y>\d{4})(?P<m>\d{2})/(?P<d>\d{2})"),
    re.compile(r"(?<!\d)(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})(?!\d)"),
    # "23-07-26 22:00": a two-digit year.
    re.compile(r"(?<![\d:])(?P<y>\d{2})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?![\d:])"),
    # Year-less: "7-20 15:37", "08/16  13:50", "08/05", "07月27日 08:23".
    re.compile(r"(?<![\d:/.-])(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号]"),
    re.compile(r"(?<![\d:/.-])(?P<m>\d{1,2})[-/](?P<d>\d{1,2})(?![\d:/.-])"),
)


def parse_stamp(prefix: str) -> DateValue | None:
    """Find the date in a dump's stamp prefix, the text before `正文：`.

    Args:
        prefix: "2023-07-27 16:50", "[2023/07/20  16:52]", "7-20 15:37", "23-07-26 22:00",
            "2023年07月20日 18:14:59 来自北京市", "来源：央视网  |  2023年07月20日 08:57:43",
            "时间：2023-07-28 07:58:00", "202307/1915:55:52", "08/05" … (a URL should be taken
            out first: its digits are no date).
    Returns:
        The first date found, by the most explicit form present: day precision, or month-day
        for a stamp without a year; None when the prefix holds no (possible) date.
    """
    for form in _STAMP_FORMS:
        for m in form.finditer(prefix):
            value = _from_match(m)
            if value is not None:
                return value
    return None


def file_year(values) -> int | None:
    """The year a file's dated stamps agree on, for its stamps printed without one.

    Args:
        values: the DateValues of one file's stamps (month-day ones are ignored).
    Returns:
        The one year every dated stamp has, or None when they have none or several: a file that
        spans two years cannot say which one a "12-31" or a "01-01" belongs to.
    """
    years = {v.year for v in values if v is not None and v.precision != "month-day"}
    return years.pop() if len(years) == 1 else None


def with_year(value: DateValue, year: int, note: str) -> DateValue:
    """A month-day date completed with ``year`` (None where that day does not exist that year)."""
    month, day = int(value.iso[2:4]), int(value.iso[5:7])
    return make_date(year, month, day, note)
