"""Files written whole or not at all, their SHA-256 and the time stamp they carry.

Every file and folder the product writes for later runs (index builds, embedding-cache shards,
assembled and converted models, checksum memos) goes through write-then-rename here: written
under a temporary name beside its place, then renamed into it in one step, so that a reader,
another process included, sees the old version or the new one and never half of one, and a
crash leaves at most a temporary file behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

BLOCK = 1 << 20


def _read_umask() -> int:
    """The process's umask (set and put back at once; read at import, before any thread writes)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Files and folders written here get the modes an ordinary write would give them: a user whose
# umask keeps a private corpus private keeps its index and cached vectors private too.
_UMASK = _read_umask()


def timestamp() -> str:
    """Local time with its UTC offset ("2025-06-01T14:03:12+0800"), for manifests and reports."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def sha256_file(path: Path, progress: bool = False) -> str:
    """Hex SHA-256 of a file, read in large blocks; progress shows a byte-count bar for big files."""
    from tqdm import tqdm

    digest = hashlib.sha256()
    with Path(path).open("rb") as handle, tqdm(total=Path(path).stat().st_size, unit="B", unit_scale=True,
                                                desc=f"hashing {Path(path).name}", disable=not progress) as bar:
        while block := handle.read(BLOCK):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


@contextmanager
def atomic_file(path: Path, mode: str = "wb", durable: bool = True) -> Iterator[IO]:
    """Write ``path`` through a temporary file beside it that replaces it only once complete.

    An exception inside the block (a failed check included) removes the temporary file and
    leaves ``path`` as it was.

    Args:
        path: the file to write; its folder must exist.
        mode: "wb" or "w" (text, UTF-8).
        durable: fsync before the rename, so that after a crash the name never points at
            unwritten data; worth it for what is costly to redo, not for a memo.
    Returns:
        (as the context value) the open temporary file.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as out:
            yield out
            out.flush()
            if durable:
                os.fsync(out.fileno())
        tmp.chmod(0o666 & ~_UMASK)  # mkstemp makes it private; as an ordinary file would be
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, text: str, durable: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` in one step (see `atomic_file`)."""
    with atomic_file(path, "w", durable=durable) as out:
        out.write(text)


def make_staging_folder(parent: Path, prefix: str) -> Path:
    """A new empty folder in ``parent`` to fill and then rename into place (`publish_folder`).

    Args:
        parent: where the finished folder will live (created if needed); a rename never crosses
            file systems from here.
        prefix: the start of its name, e.g. ".tmp-<pid>-".
    """
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    folder.chmod(0o777 & ~_UMASK)  # mkdtemp makes it private; as an ordinary folder would be
    return folder


def sync_files(folder: Path) -> None:
    """fsync every file directly in ``folder``, before the folder is renamed into place."""
    for path in folder.iterdir():
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())


def publish_folder(staged: Path, target: Path, finished: Callable[[Path], bool] | None = None) -> None:
    """Rename a filled staging folder to ``target``, replacing a folder already there.

    Args:
        staged: the folder from `make_staging_folder`.
        target: its final name.
        finished: tells whether a folder is complete; when the rename fails because another
            process put a finished ``target`` in place meanwhile, that one is kept.
    Raises:
        OSError: the rename failed and no finished ``target`` exists.
    """
    stale = None
    if target.exists():
        stale = target.with_name(f".{target.name}.stale-{os.getpid()}")
        shutil.rmtree(stale, ignore_errors=True)
        target.rename(stale)
    try:
        staged.rename(target)
    except OSError:
        if finished is None or not finished(target):
            raise
    if stale is not None:
        shutil.rmtree(stale, ignore_errors=True)


def point_symlink(link: Path, target: str) -> None:
    """Make ``link`` a symlink to ``target`` in one rename, so readers see the old or the new one."""
    staged = link.with_name(f".{link.name}-{os.getpid()}")
    if staged.is_symlink() or staged.exists():
        staged.unlink()
    os.symlink(target, staged)
    os.replace(staged, link)
