"""JSON Lines / CSV records → articles: one record, one article, its metadata read from named fields.

Archives exported from a database or a scraper come as records: a JSON object per line (.jsonl,
.ndjson, or a .json file holding a list of objects) or a CSV/TSV table with a header row. Each
field is found by its name, case-insensitive, in English or Chinese (`FIELDS`); a corpus that
names them otherwise says so with a field map, "body=内容,title=标题" (ours=theirs,
`RAG_FIELD_MAP` or `rag index --fields`). The same names serve the front matter of one-article
files (`rag.ingest.frontmatter`), so the two never disagree on what a field is called.

Key decisions:
- A record is never guessed into an article: one without a body is left out and reported by its
  number; a file where *no* record has one is an error naming the fields it has and how to map
  them, since it is almost always a field named differently, not a file of empty articles.
- One bad line does not cost the file: invalid JSON lines are left out and reported; a file where
  most lines are invalid is not JSON Lines at all and is an error.
- `Article.record` is the line number (JSON Lines), the item number (a .json list) or the data row
  number (CSV, header excluded), 1-based: what an operator needs to find the record again.
- The body's lines are its paragraphs (exports keep one paragraph per line, or blank lines between).
- Dates are read by `rag.ingest.dates.parse_date`, the one reader of date fields; a date it cannot
  read leaves the article undated and is reported.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import re

from rag.errors import CorpusError
from rag.ingest.article import Article, first_sentence
from rag.ingest.dates import parse_date
from rag.textnorm import clean_body, clean_heading

RECORD_KINDS = ("jsonl", "csv")
# Our field → the names it goes by, tried in this order (lower case; Chinese has no case).
FIELDS: dict[str, tuple[str, ...]] = {
    "title": ("title", "headline", "标题", "题目"),
    "date": ("date", "published", "pubdate", "time", "日期", "时间", "发布时间"),
    "paper": ("paper", "source", "outlet", "publisher", "媒体", "来源", "报纸"),
    "page": ("page", "edition", "版面", "版次"),
    "section": ("section", "column", "category", "栏目", "频道"),
    "url": ("url", "link", "链接"),
    "author": ("author", "byline", "作者", "记者"),
    "body": ("body", "content", "text", "正文", "内容"),
}
_DELIMITERS = (",", "\t", ";")
_LISTED = 8  # record numbers named in a problem line before "… (N in all)"


def parse_field_map(spec: str) -> dict[str, str]:
    """A field map, "body=内容,title=标题" (ours=theirs), as {our field: their name}.

    Args:
        spec: comma-separated (also "，" or ";") `ours=theirs` pairs; ours is a key of FIELDS or
            one of its English names ("headline=标题" is "title=标题"). Empty: no map.
    Returns:
        Our field → their field name, lower case.
    Raises:
        CorpusError: a pair without "=", or a field of ours that does not exist.
    """
    mapping: dict[str, str] = {}
    for pair in re.split(r"[,，;]", spec or ""):
        if not pair.strip():
            continue
        ours, sep, theirs = pair.partition("=")
        ours, theirs = ours.strip().lower(), theirs.strip().lower()
        field = next((f for f, names in FIELDS.items() if ours == f or ours in names), None)
        if not sep or not theirs or field is None:
            raise CorpusError(f"field map entry {pair.strip()!r} is not ours=theirs with ours one of "
                              f"{', '.join(FIELDS)}; write e.g. RAG_FIELD_MAP=body=内容,title=标题 "
                              f"(or `rag index --fields body=内容,title=标题`)")
        mapping[field] = theirs
    return mapping


def field_names(field_map: str | dict[str, str] = "") -> dict[str, tuple[str, ...]]:
    """Our field → the names to look for, a mapped name first; a name mapped to one field is no
    longer another's default (a map "author=source" keeps `source` out of the paper)."""
    mapping = parse_field_map(field_map) if isinstance(field_map, str) else field_map
    claimed = set(mapping.values())
    names = {}
    for field, defaults in FIELDS.items():
        mapped = (mapping[field],) if field in mapping else ()
        names[field] = mapped + tuple(n for n in defaults if n not in claimed and n not in mapped)
    return names


def pick_fields(record: dict, names: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Our field → the record's value as text, for the fields it has a non-empty value for.

    Keys match case-insensitively and ignoring surrounding spaces; the first name that gives a
    value wins. Lists are joined (a body's items become its lines), numbers and dates written out.
    """
    lookup: dict[str, object] = {}
    for key, value in record.items():
        lookup.setdefault(str(key).strip().lstrip("\ufeff").lower(), value)
    found = {}
    for field, candidates in names.items():
        for name in candidates:
            text = _as_text(lookup.get(name), "\n" if field == "body" else "、")
            if text:
                found[field] = text
                break
    return found


def article_metadata(fields: dict[str, str], where: str, undated: list[str] | None = None) -> dict:
    """The `Article` keyword arguments for its printed metadata (date, paper, page, section, url, author).

    Args:
        fields: our field → value (`pick_fields`).
        where: the record as a problem line names it ("row 3"), for a date not read.
        undated: if given, gets "row 3 ('昨天')" for a date value `parse_date` cannot read.
    """
    meta = {f: clean_heading(fields[f]) for f in ("paper", "page", "section", "author") if f in fields}
    if "url" in fields:
        meta["url"] = fields["url"].strip()
    raw = fields.get("date")
    if raw:
        date = parse_date(raw)
        if date is None:
            if undated is not None:
                undated.append(f"{where} ({raw[:40]!r})")
        else:
            meta.update(date=date.iso, date_precision=date.precision, date_note=date.note)
    return meta


def read_records(text: str, source: str, kind: str, field_map: str = "", *,
                 problems: list[str] | None = None) -> list[Article]:
    """The articles of a JSON Lines or CSV file, one per record that has a body.

    Args:
        text: the decoded file.
        source: its name relative to the corpus folder.
        kind: "jsonl" (one object per line, or a .json list of objects) or "csv" (header row;
            comma, tab or semicolon delimited).
        field_map: their field names for ours, "body=内容,title=标题" (`parse_field_map`).
        problems: if given, gets one line per kind of record left out (no body, invalid JSON,
            not an object) or date not read, naming the records.
    Returns:
        The articles numbered 1, 2, … in file order, `record` set to the line/item/row number.
    Raises:
        CorpusError: the file is not of that kind (most lines invalid JSON, a broken .json or CSV),
            or no record has a body (the message lists the fields found and how to map them).
    """
    if kind not in RECORD_KINDS:
        raise CorpusError(f"unknown record kind {kind!r}; one of {', '.join(RECORD_KINDS)}")
    names = field_names(field_map)
    notes = problems if problems is not None else []
    rows, unit, seen = _json_rows(text, source, names, notes) if kind == "jsonl" else _csv_rows(text, source)
    articles, empty, undated = [], [], []
    for number, record in rows:
        fields = pick_fields(record, names)
        paragraphs = record_paragraphs(fields.get("body", ""))
        if not paragraphs:
            empty.append(number)
            continue
        meta = article_metadata(fields, f"{unit} {number}", undated)
        if "title" in fields:
            headline, headline_source = clean_heading(fields["title"]), "field"
        else:
            headline, headline_source = first_sentence(paragraphs[0]), "lead"
        articles.append(Article(source, len(articles) + 1, headline, "article", paragraphs, record=number,
                                headline_source=headline_source, **meta))
    if rows and not articles:
        raise CorpusError(_no_body(source, seen, rows, names))
    if empty:
        notes.append(f"{_numbers(unit, empty)} {'has' if len(empty) == 1 else 'have'} no body and "
                     f"{'was' if len(empty) == 1 else 'were'} left out")
    if undated:
        notes.append(f"dates not read, articles kept undated: {_listed(undated)}")
    return articles


def record_paragraphs(body: str) -> tuple[str, ...]:
    """A record body's paragraphs: its lines (blank ones dropped), in the normal form of body text."""
    lines = (clean_body(line).strip() for line in body.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return tuple(line for line in lines if line)


# --------------------------------------------------------------------------- JSON


def _json_rows(text: str, source: str, names: dict[str, tuple[str, ...]],
               notes: list[str]) -> tuple[list[tuple[int, dict]], str, list[str]]:
    """(number, object) for every record, the unit the numbers count, and the field names seen."""
    stripped = text.strip()
    if stripped.startswith(("[", "{")):
        try:
            whole = json.loads(text)  # not stripped: the error's line number is the file's
        except json.JSONDecodeError as exc:
            if stripped.startswith("["):  # a list cannot be JSON Lines: it is a broken .json
                raise CorpusError(f"{source} is not valid JSON at line {exc.lineno}, column {exc.colno} "
                                  f"({exc.msg}); a .json file holds a list of objects "
                                  f'[{{"title": …, "body": …}}, …]; fix it, then run `rag index` again') from exc
            whole = None  # "{…}\n{…}": JSON Lines
        if whole is not None:
            items = _records_in(whole, names)
            rows = [(i, item) for i, item in enumerate(items, start=1) if isinstance(item, dict)]
            bad = [i for i, item in enumerate(items, start=1) if not isinstance(item, dict)]
            if bad:
                notes.append(f"{_numbers('item', bad)} {'is' if len(bad) == 1 else 'are'} not a JSON object "
                             f"and {'was' if len(bad) == 1 else 'were'} left out")
            if items and not rows:
                raise CorpusError(f"{source} holds no JSON object; a .json file holds a list of objects "
                                  f'[{{"title": …, "body": …}}, …]')
            return rows, "item", _keys(r for _, r in rows)
    rows, bad, first_error, lines = [], [], "", 0
    # Split at "\n" only: JSON strings may hold U+2028 and other breaks str.splitlines would cut at.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        lines += 1
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append(number)
            first_error = first_error or f"line {number}: {exc.msg}"
            continue
        if isinstance(value, dict):
            rows.append((number, value))
        else:
            bad.append(number)
            first_error = first_error or f"line {number}: a JSON {type(value).__name__}, not an object"
    if bad and len(bad) * 2 > lines:
        raise CorpusError(f"{source} is not JSON Lines: {len(bad)} of {lines} lines are not JSON objects "
                          f"(first, {first_error}); JSON Lines holds one object per line, "
                          f'{{"title": …, "date": …, "body": …}}; fix the file, then run `rag index` again')
    if bad:
        notes.append(f"{_numbers('line', bad)} {'is' if len(bad) == 1 else 'are'} not a JSON object "
                     f"and {'was' if len(bad) == 1 else 'were'} left out ({'' if len(bad) == 1 else 'first, '}"
                     f"{first_error})")
    return rows, "line", _keys(r for _, r in rows)


def _records_in(whole, names: dict[str, tuple[str, ...]]) -> list:
    """The records of a parsed .json document: a list, the one list of objects a wrapper holds
    ({"articles": […]}), or a single object (one with fields of ours is never a wrapper: its
    lists of objects are its own, comments or images)."""
    if isinstance(whole, list):
        return whole
    if isinstance(whole, dict) and not pick_fields(whole, names):
        lists = [v for v in whole.values() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)]
        if len(lists) == 1:
            return lists[0]
        return [whole]
    return [whole]


def _keys(records) -> list[str]:
    seen: dict[str, None] = {}
    for record in records:
        for key in record:
            seen.setdefault(str(key).strip(), None)
    return list(seen)


# --------------------------------------------------------------------------- CSV


def _csv_rows(text: str, source: str) -> tuple[list[tuple[int, dict]], str, list[str]]:
    """(data row number, {header: cell}) for every non-blank row, "row", and the header."""
    text = text.lstrip("\ufeff")
    header_line = next((line for line in text.split("\n") if line.strip()), "")
    # Sniffed on the header alone: bodies are full of commas, headers rarely hold one.
    delimiter = max(_DELIMITERS, key=header_line.count) if any(d in header_line for d in _DELIMITERS) else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        table = [row for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as exc:  # a NUL, or a field past the csv module's size limit
        raise CorpusError(f"{source} is not readable CSV at line {reader.line_num} ({exc}); CSV holds a header "
                          f"row, then one row per article; fix the file, then run `rag index` again") from exc
    if not table:
        return [], "row", []
    header = [cell.strip() for cell in table[0]]
    rows = []
    for number, cells in enumerate(table[1:], start=1):
        record: dict[str, str] = {}
        for name, cell in zip(header, cells):
            if name and name not in record:  # a repeated column name: the first one counts
                record[name] = cell
        rows.append((number, record))
    return rows, "row", [h for h in header if h]


# --------------------------------------------------------------------------- messages


def _no_body(source: str, seen: list[str], rows, names: dict[str, tuple[str, ...]]) -> str:
    """The error for a file where no record has a body: the fields it has, ours, how to map them."""
    guess = _likely_body(seen, rows, names) or "THEIR_FIELD"
    fields = ", ".join(seen[:20]) + (", …" if len(seen) > 20 else "") if seen else "none"
    return (f"{source}: no record has a body (the article's text); its fields are {fields}. The body is read "
            f"from a field named {' / '.join(names['body'])}, the title from {' / '.join(names['title'])}, "
            f"the date from {' / '.join(names['date'])}. Name the field that holds the text, e.g. "
            f"`RAG_FIELD_MAP=body={guess}` or `rag index --fields body={guess}`, then run `rag index` again")


def _likely_body(seen: list[str], rows, names: dict[str, tuple[str, ...]]) -> str | None:
    """The field with the longest values that is no other field of ours: the hint's best guess."""
    taken = {n for field, candidates in names.items() if field != "body" for n in candidates}
    length: dict[str, int] = {}
    for _, record in rows[:200]:
        for key, value in record.items():
            if str(key).strip().lower() not in taken:
                length[str(key).strip()] = length.get(str(key).strip(), 0) + len(_as_text(value, "\n") or "")
    best = max((k for k in seen if length.get(k)), key=lambda k: length[k], default=None)
    return best


def _as_text(value, joiner: str) -> str | None:
    """A field value as text: strings stripped, numbers and dates written out, lists joined."""
    if value is None or isinstance(value, (bool, dict)):
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (_dt.date, _dt.datetime)):  # YAML reads `date: 2023-07-28` as a date
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        parts = [p for p in (_as_text(v, joiner) for v in value) if p]
        return joiner.join(parts) or None
    return str(value).strip() or None


def _numbers(unit: str, numbers: list[int]) -> str:
    """"row 4", "lines 3, 7, 12", "lines 3, 7, … (25 in all)"."""
    if len(numbers) == 1:
        return f"{unit} {numbers[0]}"
    return f"{unit}s {_listed([str(n) for n in numbers])}"


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:_LISTED])
    return shown + (f", … ({len(items)} in all)" if len(items) > _LISTED else "")
