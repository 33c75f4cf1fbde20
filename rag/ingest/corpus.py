"""The corpus folder → articles and chunks: every file read by its reader, checksummed.

Which reader reads a file is decided by `rag.ingest.formats` (OCR page, one article per file with
front matter, JSON Lines / CSV records, one-article-per-line dumps); `rag.ingest.chunks` cuts the
articles into the paragraph chunks that are embedded and cited.
"""


from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import CorpusError
from rag.ingest.chunks import Chunk, chunk_article
# PAGE_SUFFIXES and page_files are re-exported: rag.ingest.discovery decides what a page is.
from rag.ingest.discovery import PAGE_SUFFIXES, Refusal, discover_pages, page_files, read_page_bytes  # noqa: F401
from rag.ingest.article import Article, Page
from rag.ingest.formats import check_format, read_file
from rag.ingest.records import parse_field_map
from rag.textnorm import CJK_RE, cjk_ratio

@dataclass
class Corpus:
    pages: list[Page]
    chunks: list[Chunk]
    skipped: list[tuple[str, str]]
    checksum: str
    refused: list[Refusal] = field(default_factory=list)  # links, FIFOs, devices: never opened
    # (file, what was left out of it) for files that were read: records without a body, invalid
    # JSON lines, dates not read (rag.ingest.records); the file's other articles are in.
    problems: list[tuple[str, str]] = field(default_factory=list)

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
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    else:
        # Valid UTF-8 may still be binary (zeros, UTF-16 without a BOM); no text holds a NUL.
        if "\x00" not in text:
            return text
        raise CorpusError(f"{path.name} holds NUL bytes: it is a binary file{_binary_kind(data)}, or UTF-16 without "
                          f"a byte-order mark, not text; convert it (e.g. `iconv -f UTF-16LE -t UTF-8 {path.name} > "
                          f"fixed.txt`) or take it out of the corpus, then run `rag index` again")
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
        f"{path.name} is not UTF-8 or GB18030 text{_binary_kind(data)}; convert it, e.g. "
        f"`iconv -f BIG5 -t UTF-8 {path.name} > fixed.txt`, then run `rag index` again"
    )


# What a binary file renamed .txt or .csv most often is, told by its first bytes.
_MAGIC = ((b"%PDF", "a PDF: `pdftotext` it"), (b"PK\x03\x04", "a ZIP archive, as .xlsx and .docx files are: "
           "save it as CSV or text"), (b"\xd0\xcf\x11\xe0", "an old Word or Excel file: save it as CSV or text"),
          (b"\x1f\x8b", "gzip-compressed: unpack it"))


def _binary_kind(data: bytes) -> str:
    return next((f" (it is {what})" for magic, what in _MAGIC if data.startswith(magic)), "")


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


def load_corpus(folder: Path, max_chars: int = 350, fmt: str = "auto", field_map: str = "") -> Corpus:
    """Read every file under folder into articles and chunks, each with its reader.

    Args:
        folder: the corpus folder (`seeds/`).
        max_chars: the longest chunk, in characters.
        fmt: "auto" (each file's format detected) or one format for every file
            (`rag.ingest.formats.FORMATS`; `Settings.corpus_format`).
        field_map: record field names, "body=内容,title=标题" (`Settings.field_map`).
    Returns:
        The corpus; unreadable files and files of a format no reader reads are listed in
        `.skipped` with the reason, records left out of files that were read in `.problems`, and
        links, FIFOs and other files that are not regular files inside the folder in `.refused`
        (never opened).
    Raises:
        CorpusError: the folder is missing or holds no readable page, or fmt or field_map is
            malformed (once, not once per file).
    """
    check_format(fmt)
    parse_field_map(field_map)
    found = discover_pages(folder)
    files = found.pages
    if not files:
        refused = "".join(f"; refused {r.file}: {r.reason}" for r in found.refused)
        unread = "".join(f"; skipped {name}: {reason}" for name, reason in found.skipped)
        raise CorpusError(f"no pages (.txt, .md) or records (.jsonl, .json, .csv, .tsv) in {folder}{refused}"
                          f"{unread}; add newspaper pages or records, then run `rag index`")
    pages, chunks, skipped, problems = [], [], list(found.skipped), []
    for path in files:
        name = str(path.relative_to(folder))
        notes: list[str] = []
        try:
            page = read_file(read_page(path, folder), name, fmt, field_map, problems=notes)
        except CorpusError as exc:
            skipped.append((name, str(exc)))
            continue
        problems.extend((name, note) for note in notes)
        if not page.articles:
            skipped.append((name, f"{name} holds no text"))
            continue
        pages.append(page)
        for article in page.articles:
            chunks.extend(chunk_article(article, max_chars))
    if not pages:
        reasons = "; ".join([reason for _, reason in skipped] + [f"refused {r.file}: {r.reason}" for r in found.refused])
        raise CorpusError(f"no readable page in {folder}: {reasons}")
    return Corpus(pages, chunks, skipped, corpus_checksum(files, folder, found.refused), found.refused, problems)


