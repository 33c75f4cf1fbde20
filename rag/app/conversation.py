"""A chat conversation kept across page reloads: its `Turn`s as JSON, and the logins' conversations
in SQLite.

Where a conversation is kept (`rag.app.keeping` decides): in the browser (Gradio's `BrowserState`,
the page's localStorage) without a login; on the server, keyed by the user name, with `--auth`,
so that a login finds its conversation from any browser. Only answered turns are kept (a question
left mid-answer is dropped), at most `MAX_KEPT_TURNS`, each with its checked answer and passages,
so the chat and the sources panel come back as they were.

What comes back from a browser is a caller's value like any other — the page encrypts it with a
key the page itself holds — so `turns_from_json` checks every field against the dataclass it
fills (type and length) and refuses the whole conversation when one is wrong: the user starts
afresh, the server goes on. Nothing here imports gradio.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
import types
import typing
from pathlib import Path

from rag.answer.cite import Citation
from rag.answer.types import Answer
from rag.app.chatview import Turn
from rag.app.feedback import connection, now, retried_while_busy, transaction
from rag.app.validation import MAX_ANSWER_CHARS, MAX_HISTORY_TURNS
from rag.errors import RagError
from rag.search.passage import Passage

FORMAT = 1  # of the kept JSON: {"format": 1, "turns": [...]}
SCHEMA_VERSION = 1
CONVERSATIONS_FILE = "conversations.sqlite3"
# A follow-up sends the earlier turns as history (at most MAX_HISTORY_TURNS), so no more are kept.
MAX_KEPT_TURNS = MAX_HISTORY_TURNS
MAX_KEPT_CHARS = 3_000_000  # the JSON of one conversation (localStorage holds about 5 MB a site)
MAX_TEXT_CHARS = 20_000  # any one text field: a question, a passage, an article's headline
MAX_ITEMS = 100  # any one list: passages, citations, flagged sentences
_KEY = re.compile(r"[0-9a-f]{32}")  # Turn.key: a uuid4's hex, unguessable (it names the answer's rating)
_TURN_FIELDS = ("key", "question", "model", "follow_up", "rewritten", "retrieve_s", "error")

_SCHEMA = ("""
CREATE TABLE conversations (
    user TEXT PRIMARY KEY,
    updated TEXT NOT NULL,
    turns TEXT NOT NULL
)""",)


class BadConversation(ValueError):
    """A kept conversation that is not one this version wrote."""


def turns_to_json(turns: list[Turn]) -> dict:
    """The answered turns of a conversation as JSON-ready data (the last MAX_KEPT_TURNS; fewer
    when they would exceed MAX_KEPT_CHARS).

    Returns:
        {"format": FORMAT, "turns": [{"key", "question", …, "answer": Answer as a dict}]}.
    """
    kept = []
    for turn in turns[-MAX_KEPT_TURNS:]:
        if turn.answer is None and not turn.error:
            continue  # left mid-answer
        item = {name: getattr(turn, name) for name in _TURN_FIELDS}
        answer = None
        if turn.answer is not None:
            answer = dataclasses.asdict(turn.answer)
            answer["raw_text"] = ""  # the model's text before checking: not shown, not needed
        kept.append({**item, "answer": answer})
    data = {"format": FORMAT, "turns": kept}
    while kept and len(json.dumps(data, ensure_ascii=False)) > MAX_KEPT_CHARS:
        del kept[0]
    return data


def turns_from_json(data, max_question_chars: int) -> list[Turn]:
    """The turns of a kept conversation, every field checked.

    Args:
        data: what `turns_to_json` made, as it came back (from a browser: anything).
        max_question_chars: the longest question (Settings.max_question_chars).
    Returns:
        The turns, oldest first ([] for no conversation).
    Raises:
        BadConversation: any field missing, of the wrong type or too long, or too many turns.
    """
    if data in (None, [], {}, ""):
        return []
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("turns"), list):
        raise BadConversation("not a kept conversation of this version")
    if len(data["turns"]) > MAX_KEPT_TURNS:
        raise BadConversation(f"{len(data['turns'])} turns, more than {MAX_KEPT_TURNS}")
    turns = []
    for number, item in enumerate(data["turns"], start=1):
        where = f"turns[{number}]"
        if not isinstance(item, dict):
            raise BadConversation(f"{where}: not an object")
        turn = _build(Turn, {k: item[k] for k in _TURN_FIELDS if k in item}, where)
        if not 0 < len(turn.question) <= max_question_chars or not _KEY.fullmatch(turn.key):
            raise BadConversation(f"{where}: no question, one too long, or not a key the chat makes")
        if item.get("answer") is not None:
            turn.answer = _build(Answer, item["answer"], f"{where}.answer")
            if len(turn.answer.text) > MAX_ANSWER_CHARS:
                raise BadConversation(f"{where}.answer.text: over {MAX_ANSWER_CHARS} characters")
        elif not turn.error:
            raise BadConversation(f"{where}: neither an answer nor an error")
        turns.append(turn)
    return turns


def _build(cls, data, where: str):
    """An instance of the dataclass ``cls`` from ``data``, each field checked against its type."""
    if not isinstance(data, dict):
        raise BadConversation(f"{where}: not an object")
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            values[f.name] = _check(hints[f.name], data[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise BadConversation(f"{where}.{f.name}: missing")
    return cls(**values)


def _check(kind, value, where: str):
    """``value`` as a ``kind`` (a field's type: str, int, float, bool, X | None, list[X],
    tuple[X, ...], tuple[X, Y], dict, a dataclass, object for Turn.answer)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _check(next(a for a in args if a is not type(None)), value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)) or len(value) > MAX_ITEMS:
            raise BadConversation(f"{where}: not a list of at most {MAX_ITEMS}")
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise BadConversation(f"{where}: not {len(args)} values")
            return tuple(_check(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        items = [_check(args[0] if args else object, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if kind in (Citation, Passage):
        return _build(kind, value, where)
    if kind is str:
        if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS:
            raise BadConversation(f"{where}: not text of at most {MAX_TEXT_CHARS} characters")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise BadConversation(f"{where}: not true or false")
        return value
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
            raise BadConversation(f"{where}: not a number")
        return kind(value)
    if kind is dict or origin is dict:  # Answer.timings: {name: seconds}
        if not isinstance(value, dict) or len(value) > MAX_ITEMS or not all(
                isinstance(k, str) and (v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)))
                for k, v in value.items()):
            raise BadConversation(f"{where}: not a table of timings")
        return dict(value)
    raise BadConversation(f"{where}: a value of a kind this version does not keep")


class ConversationStore:
    """The logins' conversations, one per user name, in one SQLite file (a connection per call)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def _connect(self):
        return connection(self.path, _SCHEMA, SCHEMA_VERSION, "the conversations database")

    @retried_while_busy
    def save(self, user: str, data: dict) -> None:
        """Keep ``user``'s conversation (`turns_to_json`'s data), replacing the one kept before.

        Raises:
            RagError: the database cannot be written.
        """
        text = json.dumps(data, ensure_ascii=False)
        try:
            with self._connect() as conn, transaction(conn):
                conn.execute("INSERT INTO conversations (user, updated, turns) VALUES (?, ?, ?) ON CONFLICT(user)"
                             " DO UPDATE SET updated = excluded.updated, turns = excluded.turns", (user, now(), text))
        except sqlite3.Error as exc:
            raise RagError(f"cannot write the conversations database {self.path} ({exc})") from exc

    @retried_while_busy
    def load(self, user: str) -> dict | None:
        """``user``'s kept conversation, None for none.

        Raises:
            RagError: the database cannot be read.
        """
        if not self.path.exists():
            return None
        try:
            with self._connect() as conn:
                row = conn.execute("SELECT turns FROM conversations WHERE user = ?", (user,)).fetchone()
        except sqlite3.Error as exc:
            raise RagError(f"cannot read the conversations database {self.path} ({exc})") from exc
        try:
            return json.loads(row[0]) if row else None
        except ValueError as exc:
            raise RagError(f"the conversation of {user!r} in {self.path} is damaged ({exc})") from exc

    @retried_while_busy
    def forget(self, user: str) -> None:
        """Drop ``user``'s kept conversation ("Clear conversation").

        Raises:
            RagError: the database cannot be written.
        """
        if not self.path.exists():
            return
        try:
            with self._connect() as conn, transaction(conn):
                conn.execute("DELETE FROM conversations WHERE user = ?", (user,))
        except sqlite3.Error as exc:
            raise RagError(f"cannot write the conversations database {self.path} ({exc})") from exc
