"""Which files under the corpus folder are pages: the one place that decides what ingest may open.

Every reader of the corpus goes through here — `load_corpus` and `rag index`, the index's
staleness check (`open_searcher`), the chat's article view (`ArticleLibrary`), the stock
baseline, and what the archive formats, `rag add` and uploads bring next (`check_page` for one
path). A page (any corpus file) is a *regular file* with a suffix some reader reads (.txt, .md,
.jsonl, .ndjson, .json, .csv, .tsv: `rag.ingest.formats.SUFFIX_FORMATS`), not hidden, whose
resolved path lies inside the corpus folder. A regular file with another suffix (.pdf, .docx…)
is not opened either but *skipped*, with what to convert it to (`Discovery.skipped`): it is no
danger, so it is no refusal and no part of the corpus checksum. Everything else that looks like
a page is refused, with the reason, and never opened:

- **Links, all of them.** A link leaving the corpus (`902_passwd.txt -> /etc/passwd`) would put a
  file the corpus never held into the index and the sources panel. A link that stays inside is
  refused too: it would index its target twice (two sources for one article), and whether a link
  stays inside can change after the check, when something retargets it. Copy the page in instead.
  Links to folders are not descended into, for the same reasons.
- **FIFOs, devices and sockets** — reading a FIFO blocks the indexer forever, a device may never
  end or may act on being opened. Discovery looks at them with `lstat` only.

`read_page_bytes` is the second lock on the door: it opens without following a final link and
without blocking, and reads only if the opened file is regular, so a page swapped for a link or a
FIFO after discovery is still refused. (A hard link is a regular file and cannot be told from a
copy; making one needs read access to its target already.)
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import CorpusError
from rag.ingest.formats import SUFFIX_FORMATS, unread_reason

PAGE_SUFFIXES = tuple(SUFFIX_FORMATS)  # every suffix a reader reads; the name is from when all were pages
_LINK_FIX = "links are not followed; copy the page into the corpus folder instead"
_SPECIAL_FIX = "not opened; only regular files are read as pages"


@dataclass(frozen=True)
class Refusal:
    """A file that looks like a page (or a folder) but is not read, and why."""

    file: str  # relative to the corpus folder
    kind: str  # short, safe to show anyone: "link leaving the corpus", "FIFO (named pipe)", …
    target: str = ""  # where a link points, for the operator's log; never the target's contents
    fix: str = ""

    @property
    def reason(self) -> str:
        """The kind, the link's target, and what to do: for `rag index` and the manifest."""
        where = f" (→ {self.target})" if self.target else ""
        return f"{self.kind}{where}" + (f"; {self.fix}" if self.fix else "")


@dataclass(frozen=True)
class Discovery:
    """The pages found under a corpus folder, in a stable order, and the files refused."""

    pages: list[Path]
    refused: list[Refusal]
    # (file, reason) for regular files with a suffix no reader reads: never opened, not refused.
    skipped: list[tuple[str, str]] = field(default_factory=list)


def is_page_name(name: str) -> bool:
    """A name a page may have: a page suffix, not hidden."""
    return not name.startswith(".") and Path(name).suffix.lower() in PAGE_SUFFIXES


def discover_pages(folder: Path) -> Discovery:
    """The page files under folder and the refused look-alikes, without following any link.

    Args:
        folder: the corpus folder (itself may be a link: the user named it).
    Returns:
        The pages sorted by path, a `Refusal` for every link, FIFO, device, socket or other
        non-regular file named like a page, and every link to a folder (not descended into), and
        the regular files with a suffix no reader reads, skipped with the reason.
    Raises:
        CorpusError: the folder does not exist.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CorpusError(f"corpus folder {folder} does not exist; create it and put .txt pages in it")
    root = folder.resolve()
    pages, refused, skipped = [], [], []
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            refused.append(Refusal(_name(current, folder), f"folder that cannot be read ({exc.strerror})"))
            continue
        for entry in entries:
            path = Path(entry.path)
            if entry.is_symlink():
                if is_page_name(entry.name) or (not entry.name.startswith(".") and entry.is_dir()):
                    refused.append(_link_refusal(path, folder, root))
            elif entry.is_dir(follow_symlinks=False):
                pending.append(path)
            elif is_page_name(entry.name):
                refusal = _check(path, folder, root)
                if refusal is None:
                    pages.append(path)
                else:
                    refused.append(refusal)
            elif not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
                skipped.append((_name(path, folder), unread_reason(entry.name)))
    return Discovery(sorted(pages), sorted(refused, key=lambda r: r.file), sorted(skipped))


def page_files(folder: Path) -> list[Path]:
    """The page files under folder, in a stable order (refused files left out; see `discover_pages`)."""
    return discover_pages(folder).pages


def check_page(path: Path, folder: Path) -> Refusal | None:
    """Whether one path may be read as a page of the corpus in folder (for `rag add`, uploads, lookups).

    Args:
        path: the file, under folder.
        folder: the corpus folder.
    Returns:
        None when it is a regular file whose resolved path lies inside folder; else the refusal.
    """
    return _check(Path(path), Path(folder), Path(folder).resolve())


def read_page_bytes(path: Path, folder: Path | None = None) -> bytes:
    """The bytes of a page file, refusing a link or a non-regular file found at open time.

    Args:
        path: the page.
        folder: the corpus folder; when given, the file opened must lie inside it (a folder on
            the way swapped for a link after discovery is caught here: O_NOFOLLOW sees only the
            last part of the path).
    Raises:
        CorpusError: the path is a link, not a regular file, outside the folder, or cannot be read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CorpusError(f"{path.name} is a link; {_LINK_FIX}") from exc
        raise CorpusError(f"{path.name} cannot be read ({exc.strerror}); fix it, then run `rag index`") from exc
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise CorpusError(f"{path.name} is a {_special_kind(mode)}; {_SPECIAL_FIX}")
        opened = Path(f"/proc/self/fd/{handle.fileno()}")
        if folder is not None and opened.exists():  # Linux: the file the descriptor really is
            if not Path(os.path.realpath(opened)).is_relative_to(Path(folder).resolve()):
                raise CorpusError(f"{path.name} lies outside the corpus folder (a folder on its way is a link); "
                                  f"{_LINK_FIX}")
        return handle.read()


def _check(path: Path, folder: Path, root: Path) -> Refusal | None:
    name = _name(path, folder)
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        return Refusal(name, f"file that cannot be read ({exc.strerror})")
    if stat.S_ISLNK(mode):
        return _link_refusal(path, folder, root)
    if not stat.S_ISREG(mode):
        return Refusal(name, _special_kind(mode), fix=_SPECIAL_FIX)
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return Refusal(name, "path that cannot be resolved")
    if not resolved.is_relative_to(root):  # a folder on the way is a link (a lookup, not discovery)
        return Refusal(name, "path leaving the corpus", str(resolved), _LINK_FIX)
    return None


def _link_refusal(path: Path, folder: Path, root: Path) -> Refusal:
    name = _name(path, folder)
    try:
        resolved = path.resolve(strict=True)
    except FileNotFoundError:
        return Refusal(name, "broken link", os.readlink(path), _LINK_FIX)
    except (OSError, RuntimeError):  # a loop
        return Refusal(name, "link that cannot be resolved", os.readlink(path), _LINK_FIX)
    folder_link = " to a folder" if resolved.is_dir() else ""
    if resolved.is_relative_to(root):
        return Refusal(name, f"link{folder_link} inside the corpus", str(resolved.relative_to(root)), _LINK_FIX)
    return Refusal(name, f"link{folder_link} leaving the corpus", str(resolved), _LINK_FIX)


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISDIR(mode):
        return "folder, not a file"
    return "file that is not a regular file"


def _name(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return str(path)
