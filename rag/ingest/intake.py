"""Adding files to the archive: each one checked, then saved into the corpus folder whole or not at all.

`rag add` (files and folders) and the chat's upload both come through here, so the two take the
same files and refuse the same ones, each with its reason:

- **the name** — a file name only (no folder, no `..`, not hidden), NFC, of a conservative set of
  characters (letters and digits of any script, space and `-_.()（）·+,，、【】《》[]`), at most
  `MAX_NAME_CHARS` characters and `MAX_NAME_BYTES` bytes (room for the temporary names beside it);
- **the suffix** — one a reader reads (`rag.ingest.discovery.is_page_name`);
- **the size** — not empty, at most `Settings.max_upload_mb`, told from the size before the bytes
  are read;
- **the bytes** — text as `rag.ingest.corpus.read_page` decodes it (binary data refused), read by
  `rag.ingest.formats.read_file` into at least one article (else the reader's reason).

Key decisions:
- A refused file leaves the corpus folder as it was: the checks read a copy in a private
  temporary folder, and the file is written into the corpus only once it passed them.
- Nothing in the corpus is ever overwritten. A name already there with the same bytes is
  "already there" (nothing written); with other bytes the file gets the next free name,
  `name-2.txt`, `name-3.txt` … The file is written beside its place under a hidden name (which
  discovery never reads), fsynced, then hard-linked to its name, which fails rather than replace a
  file another process wrote meanwhile.
- Folders are walked as discovery walks the corpus (no links followed); their files land in the
  corpus folder itself, under their own names. A file that already lies inside the corpus folder is
  already there.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import tempfile
import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from rag.config import Settings
from rag.errors import CorpusError
from rag.files import atomic_file
from rag.ingest.corpus import read_page
from rag.ingest.discovery import discover_pages, is_page_name, read_page_bytes
from rag.ingest.formats import read_file, unread_reason

MAX_NAME_CHARS = 120
# ext4 and most file systems cap a name at 255 bytes; the hidden names a file is written under
# beside its place add up to 40 (`.name.<pid>.incoming`, then atomic_file's `.….XXXXXXXX.tmp`).
MAX_NAME_BYTES = 180
MAX_COPIES = 99  # name-2 … name-99: beyond that the name is the user's to change
_NAME_CHARS = re.compile(r"[\w .()（）·+,，、【】《》\[\]-]+")
_MB = 1 << 20
# One thread at a time picks a free name and links the file to it (the chat's uploads run in
# several); another process is kept from overwriting by the hard link itself.
_SAVE_LOCK = threading.Lock()


@dataclass
class AddReport:
    """What `add_paths` did with each file it was given."""

    added: list[Path] = field(default_factory=list)  # new files in the corpus folder
    already: list[tuple[str, Path]] = field(default_factory=list)  # (given, the corpus file with its bytes)
    # (given, why): the CLI prints str(error), the chat `for_caller(error)` (no operator advice)
    refused: list[tuple[str, CorpusError]] = field(default_factory=list)
    # (file added, what its reader left out: records without a body, dates not read)
    problems: list[tuple[str, str]] = field(default_factory=list)


def safe_name(name) -> str:
    """The file name a file gets in the corpus: checked, NFC-normalised.

    Args:
        name: the name the file came with (an upload's, or a path's last part).
    Returns:
        The NFC form of ``name``.
    Raises:
        CorpusError: a path rather than a name, hidden, `..`, characters outside the allowed set,
            too long, or a suffix no reader reads.
    """
    if not isinstance(name, str) or not name:
        raise CorpusError("the file has no name; give it one ending in .txt, .md, .jsonl or .csv")
    name = unicodedata.normalize("NFC", name)
    shown = repr(name) if len(name) <= 80 else repr(name[:80]) + "…"
    if "/" in name or "\\" in name or "\x00" in name:
        raise CorpusError(f"{shown} is a path, not a file name; the file is saved under its own name only, "
                          f"so give just the name (e.g. 人民日报-2023-07-01.txt)")
    if ".." in name:
        raise CorpusError(f"{shown}: a name holding `..` is not taken; rename the file")
    if name.startswith("."):
        raise CorpusError(f"{shown} is a hidden name (it starts with a dot), which the corpus never reads; "
                          f"rename the file")
    if name != name.strip() or not _NAME_CHARS.fullmatch(name):
        bad = sorted({ch for ch in name if not _NAME_CHARS.fullmatch(ch)})
        which = f" ({' '.join(repr(ch) for ch in bad)})" if bad else " (a space at its start or end)"
        raise CorpusError(f"{shown} holds characters a corpus file name may not{which}; use letters, digits, "
                          f"spaces and -_.()（）·+,，、【】《》[], then add it again")
    if len(name) > MAX_NAME_CHARS or len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise CorpusError(f"{shown} is too long a name ({len(name)} characters); at most {MAX_NAME_CHARS} "
                          f"characters ({MAX_NAME_BYTES} bytes as UTF-8), so rename the file")
    if not is_page_name(name):
        raise CorpusError(f"{name}: {_for_adding(unread_reason(name))}")
    return name


def check_size(name: str, size: int, settings: Settings) -> None:
    """Refuse an empty file or one over `Settings.max_upload_mb` (told before its bytes are read).

    Raises:
        CorpusError: empty, or too large (the advice names RAG_MAX_UPLOAD_MB, for the operator).
    """
    if size == 0:
        raise CorpusError(f"{name} is empty; there is nothing to add")
    limit = settings.max_upload_mb * _MB
    if size > limit:
        raise CorpusError(f"{name} is {size / _MB:,.1f} MB; files of at most {settings.max_upload_mb} MB are "
                          f"taken, so split it (e.g. `split -C 40m {name}`) and add the parts",
                          advice=f"RAG_MAX_UPLOAD_MB raises the limit (now {settings.max_upload_mb})")


def accept(name: str, data: bytes, corpus_dir: Path, settings: Settings) -> Path:
    """Check one file and save it into the corpus folder (see the module docstring for the rules).

    Args:
        name: the file's name (not a path).
        data: its bytes.
        corpus_dir: the corpus folder (it must exist).
        settings: the size limit, and the corpus format and field map it is read with.
    Returns:
        The file in the corpus folder that holds ``data``: the new one, or the one already there.
    Raises:
        CorpusError: refused, with the reason; the corpus folder is then unchanged.
    """
    return _accept(name, data, Path(corpus_dir), settings)[0]


def add_paths(paths, corpus_dir: Path, settings: Settings) -> AddReport:
    """Add files, and the corpus files found in folders, to the corpus folder (`rag add`, uploads).

    Args:
        paths: files and folders; a folder is walked as discovery walks the corpus (links refused).
        corpus_dir: the corpus folder (it must exist).
        settings: as `accept`.
    Returns:
        What was added, what was already there and what was refused, with the reasons.
    """
    corpus_dir = Path(corpus_dir)
    report = AddReport()
    for given in map(Path, paths):
        if given.is_dir():  # a link to a folder too: the user named it
            found = discover_pages(given)
            files = [(str(p), p) for p in found.pages]
            report.refused += [(str(given / r.file), CorpusError(r.reason)) for r in found.refused]
            report.refused += [(str(given / name), CorpusError(_for_adding(reason))) for name, reason in found.skipped]
        else:
            files = [(str(given), given)]
        for shown, path in files:
            try:
                inside = _inside(path, corpus_dir)
                if inside is not None:
                    report.already.append((shown, inside))
                    continue
                name = safe_name(path.name)  # before the bytes are read
                saved, new, problems = _accept(name, _read_source(path, settings), corpus_dir, settings)
            except CorpusError as exc:
                report.refused.append((shown, exc))
                continue
            if new:
                report.added.append(saved)
                report.problems += [(saved.name, note) for note in problems]
            else:
                report.already.append((shown, saved))
    return report


# --------------------------------------------------------------------------- the steps


def _accept(name: str, data: bytes, corpus_dir: Path, settings: Settings) -> tuple[Path, bool, list[str]]:
    """(the corpus file holding data, whether it is new, what its reader left out); see `accept`."""
    name = safe_name(name)
    check_size(name, len(data), settings)
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder {corpus_dir} does not exist; create it (`mkdir -p {corpus_dir}`)")
    problems = _check_readable(name, data, settings)
    path, new = _save(name, data, corpus_dir)
    return path, new, problems


def _check_readable(name: str, data: bytes, settings: Settings) -> list[str]:
    """Decode and read the bytes as the index will; returns what the reader left out.

    Raises:
        CorpusError: not text, or no article in it (the reader's reason).
    """
    # read_page decodes a file, not bytes: a private copy keeps the corpus folder untouched.
    problems: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="rag-add-") as folder:
            copy = Path(folder) / name
            copy.write_bytes(data)
            text = read_page(copy, Path(folder))
        page = read_file(text, name, settings.corpus_format, settings.field_map, problems=problems)
    except CorpusError as exc:
        raise CorpusError(_for_adding(exc.message), exc.advice) from exc
    if not page.articles:
        left_out = f" ({'; '.join(problems)})" if problems else ""
        raise CorpusError(f"{name} holds no article{left_out}; nothing to add")
    return problems


def _for_adding(message: str) -> str:
    """A reader's message as `rag add` and the upload say it: the file was not added, so after
    fixing it one adds it again (rather than rebuilding the index)."""
    return message.replace("then run `rag index` again", "then add it again")


def _save(name: str, data: bytes, corpus_dir: Path) -> tuple[Path, bool]:
    """Write data under name (or the next free name-N) in the corpus folder, never replacing a file."""
    stem, suffix = Path(name).stem, Path(name).suffix
    candidates = [name] + [f"{stem}-{n}{suffix}" for n in range(2, MAX_COPIES + 1)]
    with _SAVE_LOCK:
        for candidate in candidates:
            target = corpus_dir / candidate
            if os.path.lexists(target):
                if _holds(target, data, corpus_dir):
                    return target, False
                continue
            if _link_new(data, target):
                return target, True
    raise CorpusError(f"{name}: {MAX_COPIES} files of this name with other contents are in the corpus already; "
                      f"rename the file")


def _link_new(data: bytes, target: Path) -> bool:
    """Write data to target unless a file appears there first; False when one did."""
    staged = target.with_name(f".{target.name}.{os.getpid()}.incoming")  # hidden: discovery never reads it
    try:
        with atomic_file(staged) as out:
            out.write(data)
        try:
            os.link(staged, target)  # fails, never replaces, when target exists
        except FileExistsError:
            return False
        except OSError as exc:  # a file system without hard links: rename, under the lock
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            if os.path.lexists(target):
                return False
            os.rename(staged, target)
        return True
    except OSError as exc:
        raise CorpusError(f"{target.name} could not be written into the corpus folder ({exc.strerror}); "
                          f"free disk space or fix its permissions, then add it again") from exc
    finally:
        try:
            staged.unlink(missing_ok=True)
        except OSError:
            pass


def _holds(path: Path, data: bytes, corpus_dir: Path) -> bool:
    """Whether the corpus file at path holds exactly data (a link or FIFO there holds nothing)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode) or os.lstat(path).st_size != len(data):
            return False
        return hashlib.sha256(read_page_bytes(path, corpus_dir)).digest() == hashlib.sha256(data).digest()
    except (OSError, CorpusError):
        return False


def _read_source(path: Path, settings: Settings) -> bytes:
    """The bytes of a file to add, its size checked first (a named link is followed: the user named it).

    Raises:
        CorpusError: missing, not a regular file, empty or too large, unreadable.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        raise CorpusError(f"{path} cannot be read ({exc.strerror})") from exc
    if not stat.S_ISREG(info.st_mode):
        raise CorpusError(f"{path} is not a regular file (a folder, FIFO or device); only files are added")
    check_size(path.name, info.st_size, settings)
    limit = settings.max_upload_mb * _MB
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)  # a file growing since its size was read stops here
    except OSError as exc:
        raise CorpusError(f"{path} cannot be read ({exc.strerror})") from exc
    check_size(path.name, len(data), settings)
    return data


def _inside(path: Path, corpus_dir: Path) -> Path | None:
    """The path itself when it already lies inside the corpus folder (adding it would copy it)."""
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return path if resolved.is_relative_to(corpus_dir.resolve()) else None
