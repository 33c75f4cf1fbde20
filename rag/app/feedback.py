"""The chat's ratings: 👍/👎 and an optional comment on an answer, kept in SQLite, exported by
`rag feedback export`.

One row per rated answer (keyed by the answer's `Turn.key`), holding what a reader needs to judge
it later without the app: the question, the query it was searched as, the answer, its citations
(JSON), the model, when, the rating, the comment and the login. Rating again changes the row;
taking the rating back (a second click on the same thumb) keeps the row with rating 0, so no
opinion given is ever deleted.

Durability: WAL journal with `synchronous=FULL`, one short connection per call, each write its own
transaction — a crash (even a power cut) loses at most the write in flight, never a row already
written, and several server threads write at once (SQLite's lock, waited on up to
`BUSY_TIMEOUT_S`; a call SQLite turns away at once is made again: `retried_while_busy`). The
schema is versioned with `PRAGMA user_version`; a file from a newer version is refused instead
of being written in a shape it does not expect. Nothing here imports gradio.
"""

from __future__ import annotations

import csv
import io
import json
import functools
import sqlite3
import time
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from rag.config import Settings
from rag.errors import RagError

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0
FEEDBACK_FILE = "feedback.sqlite3"
MAX_COMMENT_CHARS = 2_000
RATINGS = {1: "up", -1: "down", 0: "withdrawn"}
FORMATS = ("jsonl", "csv")
# The columns as exported, in order (citations: a JSON list of the answer's citations).
COLUMNS = ("id", "answer_key", "created", "updated", "rating", "comment", "question", "rewritten", "answer",
           "citations", "model", "user")

_SCHEMA = ("""
CREATE TABLE feedback (
    id INTEGER PRIMARY KEY,
    answer_key TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    rating INTEGER NOT NULL CHECK (rating IN (-1, 0, 1)),
    comment TEXT NOT NULL DEFAULT '',
    question TEXT NOT NULL,
    rewritten TEXT NOT NULL DEFAULT '',
    answer TEXT NOT NULL,
    citations TEXT NOT NULL DEFAULT '[]',
    model TEXT NOT NULL DEFAULT '',
    user TEXT
)""",)


def chat_folder(settings: Settings) -> Path:
    """Where the chat keeps its ratings and conversations: a folder of the cache."""
    return settings.cache_dir / "chat"


def feedback_path(settings: Settings) -> Path:
    """The ratings database of these settings (`rag chat` writes it, `rag feedback export` reads it)."""
    return chat_folder(settings) / FEEDBACK_FILE


def now() -> str:
    """The time of a write: UTC, ISO 8601, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextmanager
def connection(path: Path, schema: tuple[str, ...], version: int, what: str) -> Iterator[sqlite3.Connection]:
    """A connection to one of the chat's databases, its schema created or checked; closed after.

    Args:
        path: the database file (its folder is made if missing).
        schema: the statements creating version ``version`` of the schema in an empty file.
        version: the schema version this code writes.
        what: the database in words, for errors ("the ratings database").
    Raises:
        RagError: the file cannot be opened, is not a database, or is from a newer version.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise RagError(f"cannot open {what} {path} ({exc}); check that its folder is writable") from exc
    with closing(conn):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # WAL's default (NORMAL) may drop the last commits on a power cut
            found = conn.execute("PRAGMA user_version").fetchone()[0]
            if found == 0:
                with transaction(conn):
                    # Checked again inside the write lock: another thread may have just made it.
                    if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                        for statement in schema:
                            conn.execute(statement)
                        conn.execute(f"PRAGMA user_version = {int(version)}")
            elif found > version:
                raise RagError(f"{what} {path} was written by a newer version of rag (schema {found}, this one "
                               f"knows {version}); upgrade rag, or move the file away to start a new one")
        except sqlite3.OperationalError as exc:  # locked past the timeout, a read-only disk…
            raise RagError(f"cannot open {what} {path} ({exc}); check that its folder is writable") from exc
        except sqlite3.DatabaseError as exc:
            raise RagError(f"{what} {path} is not a database this version can read ({exc}); move it away "
                           f"to start a new one") from exc
        yield conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """Hold ``conn``'s write lock for the statements inside (committed at the end, undone on an error)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _busy(exc: BaseException) -> bool:
    """Whether ``exc`` (or the SQLite error it wraps) is SQLite reporting a lock held elsewhere."""
    cause = exc if isinstance(exc, sqlite3.OperationalError) else exc.__cause__
    return isinstance(cause, sqlite3.OperationalError) and any(
        word in str(cause) for word in ("database is locked", "database is busy"))


def retried_while_busy(method):
    """Make a store call again, with growing pauses, while SQLite answers "database is locked",
    for up to `BUSY_TIMEOUT_S` in all.

    Why: the busy timeout does not cover every lock. In WAL mode the last connection to close
    holds the file exclusively while it checkpoints, and the next one to open may be refused at
    once instead of waiting (sqlite.org/wal.html, "Sometimes queries return SQLITE_BUSY"). With a
    connection per call that happens under load, and a rating must not be lost to it. Every
    store call is one transaction that commits whole or not at all, so making it again is safe.
    """
    @functools.wraps(method)
    def call(*args, **kwargs):
        deadline, pause = time.monotonic() + BUSY_TIMEOUT_S, 0.01
        while True:
            try:
                return method(*args, **kwargs)
            except (RagError, sqlite3.OperationalError) as exc:
                if not _busy(exc) or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(2 * pause, 0.5)
    return call


def clean_comment(text) -> str:
    """A comment as stored: text, stripped, control characters dropped, at most MAX_COMMENT_CHARS."""
    text = "".join(ch for ch in str(text or "") if ch in "\n\t" or ch >= " ")
    return text.strip()[:MAX_COMMENT_CHARS]


class FeedbackStore:
    """The ratings in one SQLite file; safe to share between threads (a connection per call)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def _connect(self):
        return connection(self.path, _SCHEMA, SCHEMA_VERSION, "the ratings database")

    @retried_while_busy
    def rate(self, answer_key: str, rating: int, *, question: str, answer: str, citations: list[dict],
             rewritten: str = "", model: str = "", user: str | None = None) -> int:
        """Record (or change) the rating of one answer; its comment, if any, is kept.

        Args:
            answer_key: the answer's key (`Turn.key`): one row per answer.
            rating: 1 (👍), -1 (👎) or 0 (the rating taken back).
            question, answer, rewritten, model: the answer as the user saw it.
            citations: the answer's citations as JSON-ready dicts.
            user: the login, None without one.
        Returns:
            The row's id.
        Raises:
            ValueError: a rating other than 1, -1, 0.
            RagError: the database cannot be written.
        """
        if rating not in RATINGS:
            raise ValueError(f"rating must be 1, -1 or 0, not {rating!r}")
        stamp = now()
        try:
            with self._connect() as conn, transaction(conn):
                conn.execute(
                    "INSERT INTO feedback (answer_key, created, updated, rating, question, rewritten, answer,"
                    " citations, model, user) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT(answer_key) DO UPDATE SET updated = excluded.updated, rating = excluded.rating",
                    (answer_key, stamp, stamp, rating, question, rewritten or "", answer,
                     json.dumps(citations, ensure_ascii=False, default=str), model or "", user))
                return conn.execute("SELECT id FROM feedback WHERE answer_key = ?", (answer_key,)).fetchone()[0]
        except sqlite3.Error as exc:
            raise RagError(f"cannot write the ratings database {self.path} ({exc})") from exc

    @retried_while_busy
    def comment(self, answer_key: str, text: str) -> bool:
        """Set the comment of a rated answer (`clean_comment`); False when it was not rated.

        Raises:
            RagError: the database cannot be written.
        """
        try:
            with self._connect() as conn, transaction(conn):
                done = conn.execute("UPDATE feedback SET comment = ?, updated = ? WHERE answer_key = ?",
                                    (clean_comment(text), now(), answer_key))
                return done.rowcount == 1
        except sqlite3.Error as exc:
            raise RagError(f"cannot write the ratings database {self.path} ({exc})") from exc

    @retried_while_busy
    def rows(self) -> list[dict]:
        """Every rating, oldest first, as dicts with the `COLUMNS` (citations decoded).

        Raises:
            RagError: the database cannot be read.
        """
        if not self.path.exists():
            return []
        try:
            with self._connect() as conn:
                cursor = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM feedback ORDER BY id")
                rows = [dict(zip(COLUMNS, values)) for values in cursor]
        except sqlite3.Error as exc:
            raise RagError(f"cannot read the ratings database {self.path} ({exc})") from exc
        for row in rows:
            row["citations"] = json.loads(row["citations"])
        return rows


def export_rows(rows: list[dict], fmt: str = "jsonl") -> str:
    """Ratings as JSON Lines (one object a line) or CSV (a header, citations as a JSON column).

    Raises:
        RagError: a format other than `FORMATS`.
    """
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "citations": json.dumps(row["citations"], ensure_ascii=False)})
        return out.getvalue()
    raise RagError(f"unknown export format {fmt!r}; use one of: {', '.join(FORMATS)}")
