"""Which reader reads a corpus file, and reading it: the one dispatch over the archive formats.

Five readers, each in its own module: OCR newspaper pages (`rag.ingest.pages`), one article per
file with YAML front matter (`rag.ingest.frontmatter`), JSON Lines / CSV records
(`rag.ingest.records`) and one-article-per-line dumps (`rag.ingest.dumps`). The index, its
staleness check and the chat's article view all read a file through `read_file`, so a citation
opens the article the index was built from.

Key decisions:
- The suffix decides first: .jsonl/.ndjson/.json are JSON records, .csv/.tsv CSV records, and
  .txt/.md are text whose *content* decides (front matter → article, a dump's `，正文：` lines →
  dump, anything else → page). The page reader reads any text, so it is the last resort.
- A suffix no reader reads is never opened; discovery lists it as skipped with what to convert
  it to (`unread_reason`).
- A format forced for the whole corpus (`RAG_CORPUS_FORMAT`, `rag --format`) is a promise about
  every file: a file that breaks it is an error saying what that format expects, never read as
  something else. Text formats are not forced onto record files (a .csv read as a page would index
  its commas).
"""

from __future__ import annotations

from pathlib import Path

from rag.errors import CorpusError
from rag.ingest.article import Page
from rag.ingest.dumps import EXPECTED as DUMP_EXPECTED, looks_like_dump, read_dump
from rag.ingest.frontmatter import has_front_matter, read_article_file
from rag.ingest.pages import parse_page
from rag.ingest.records import read_records

FORMATS = ("auto", "page", "article", "jsonl", "csv", "dump")
# Suffix → the reader it calls for; "text" files are told apart by their content (detect_format).
SUFFIX_FORMATS = {".txt": "text", ".md": "text", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
                  ".csv": "csv", ".tsv": "csv"}
# What each format expects of a file: said whenever a file does not fit the format forced on it.
EXPECTS = {
    "page": "OCR text of newspaper pages in .txt or .md files",
    "article": "one article per .txt or .md file, opened by YAML front matter between two `---` lines "
               "(title, date, paper, page, section, url, author)",
    "jsonl": 'one JSON object per line ({"title": …, "date": …, "body": …}), or a .json file holding a '
             "list of such objects",
    "csv": "a header row naming the fields (title, date, body …), then one row per article; "
           "delimited by commas, tabs or semicolons",
    "dump": DUMP_EXPECTED,
}
# What to turn a file we cannot read into: the fix `rag index` prints for it.
_CONVERT = {
    ".pdf": "convert it to text first (`pdftotext FILE.pdf FILE.txt`)",
    ".doc": "save it as plain text (.txt) or Markdown (.md)",
    ".docx": "save it as plain text (.txt) or Markdown (.md)",
    ".odt": "save it as plain text (.txt) or Markdown (.md)",
    ".rtf": "save it as plain text (.txt) or Markdown (.md)",
    ".xls": "save the sheet as CSV (.csv), one row per article",
    ".xlsx": "save the sheet as CSV (.csv), one row per article",
    ".ods": "save the sheet as CSV (.csv), one row per article",
    ".htm": "save the article text as .txt, or export the articles as JSON Lines (.jsonl)",
    ".html": "save the article text as .txt, or export the articles as JSON Lines (.jsonl)",
    ".xml": "export the articles as JSON Lines (.jsonl) or CSV (.csv)",
    ".zip": "unpack it into the corpus folder",
    ".gz": "unpack it into the corpus folder",
    ".tar": "unpack it into the corpus folder",
    ".7z": "unpack it into the corpus folder",
    ".rar": "unpack it into the corpus folder",
}
_CONVERT_ANY = "convert it to text (.txt, .md), JSON Lines (.jsonl) or CSV (.csv)"


def unread_reason(name: str) -> str:
    """Why a file with a suffix no reader reads is skipped, and what to make of it.

    Args:
        name: the file's name.
    Returns:
        "unknown format .pdf: convert it to text first (…); the corpus reads .txt, .md, …".
    """
    suffix = Path(name).suffix.lower()
    what = f"unknown format {suffix}" if suffix else "unknown format (no suffix)"
    return (f"{what}: {_CONVERT.get(suffix, _CONVERT_ANY)}, then run `rag index` again; "
            f"the corpus reads {', '.join(SUFFIX_FORMATS)}")


def check_format(fmt: str) -> str:
    """The format name, validated (for settings and flags).

    Raises:
        CorpusError: not one of FORMATS.
    """
    if fmt not in FORMATS:
        raise CorpusError(f"unknown corpus format {fmt!r}; set RAG_CORPUS_FORMAT (or `rag --format`) to one of "
                          f"{', '.join(FORMATS)}")
    return fmt


def detect_format(name: str, text: str) -> str:
    """The reader a file calls for, from its suffix and, for text files, its content.

    Args:
        name: the file's name (its suffix decides first).
        text: the decoded file.
    Returns:
        "jsonl", "csv", "article" (front matter), "dump" (one `<stamp>，正文：<body>` per line) or "page".
    Raises:
        CorpusError: the suffix is one no reader reads (`unread_reason`).
    """
    family = SUFFIX_FORMATS.get(Path(name).suffix.lower())
    if family is None:
        raise CorpusError(f"{Path(name).name}: {unread_reason(name)}")
    if family != "text":
        return family
    if has_front_matter(text):
        return "article"
    if looks_like_dump(text):
        return "dump"
    return "page"


def read_file(text: str, source: str, fmt: str = "auto", field_map: str = "", *,
              problems: list[str] | None = None) -> Page:
    """Read one decoded corpus file with its reader.

    Args:
        text: the decoded file (`rag.ingest.corpus.read_page`).
        source: its name relative to the corpus folder; carried by every article.
        fmt: "auto" (detect it) or a format forced for every file (FORMATS).
        field_map: record field names, "body=内容,title=标题" (`rag.ingest.records`).
        problems: if given, gets one line per kind of record left out of the file (no body,
            invalid JSON, a date not read), for `rag index` to warn about.
    Returns:
        The page (the file) with its articles and `Page.format` set to the reader used.
    Raises:
        CorpusError: the file cannot be read: an unknown suffix, a file that does not fit the
            format forced on it (the message says what that format expects), or the reader's error.
    """
    detected = detect_format(source, text)
    check_format(fmt)
    if fmt == "auto":
        return _read(text, source, detected, field_map, problems)
    if detected in ("jsonl", "csv") and fmt != detected:
        raise CorpusError(f"{source} is a {detected.upper()} file by its name, but the corpus format is set to "
                          f"{fmt}, which expects {EXPECTS[fmt]}; set RAG_CORPUS_FORMAT (or `rag --format`) to "
                          f"auto or {detected}, then run `rag index` again")
    try:
        return _read(text, source, fmt, field_map, problems)
    except CorpusError as exc:
        raise CorpusError(_forced(str(exc), fmt)) from exc


def _read(text: str, source: str, fmt: str, field_map: str, problems: list[str] | None) -> Page:
    if fmt == "page":
        page = parse_page(text, source)
    elif fmt == "article":
        page = Page(source, read_article_file(text, source, problems=problems))
    elif fmt == "dump":
        page = Page(source, read_dump(text, source))
    else:
        page = Page(source, read_records(text, source, fmt, field_map, problems=problems))
    page.format = fmt
    return page


def _forced(message: str, fmt: str) -> str:
    if "RAG_CORPUS_FORMAT" in message:  # the reader's message already says how to set the format
        return message
    return (f"{message.rstrip('.')}. The corpus format is set to {fmt} (RAG_CORPUS_FORMAT or `rag --format`), "
            f"which expects {EXPECTS[fmt]}; set it to auto to detect each file's format")
