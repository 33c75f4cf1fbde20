"""The app's boundary: every value a caller sends, checked before anything runs, and every error
put in the caller's terms.

Every face that takes questions from other programs (the chat's `/ask` and `/chat`, `rag serve`
and the MCP tools when they come) builds a `Request` with `check_request` and words its failures
with `for_caller`. A refusal names the field that is wrong and what it may be — `question: …`,
`history[2][0]: …`, `passages: …`, `date_from: …` — and is a `BadQuestion`, the caller's to fix,
which the app logs as one line. Nothing here imports gradio.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from numbers import Real

from rag.config import Settings
from rag.errors import BadQuestion, RagError
from rag.search.filters import SearchFilter
from rag.search.retrieve import validate_question
from rag.textnorm import unencodable_at

MAX_PASSAGES = 10
# Earlier turns a follow-up may send; the rewrite reads only the last few (rag.answer.condense),
# so a longer conversation is the caller's to trim.
MAX_HISTORY_TURNS = 50
# An earlier answer's length: the app writes at most a few hundred characters (llm_max_tokens),
# so this leaves room for answers from elsewhere without letting a caller send a book.
MAX_ANSWER_CHARS = 10_000
# Outlets one question may be limited to, and the length of a name or a date as typed.
MAX_OUTLETS = 50
MAX_FILTER_CHARS = 100
# What only the operator can act on or should see (the server's RAG_* settings, its files and
# folders); a message that holds any never reaches a caller.
_OPERATOR_TERMS = re.compile(r"\bRAG_[A-Z_]+|(?<![\w.~:/])(?:~|/[\w.-]+)/[\w.-]")


@dataclass(frozen=True)
class Request:
    """One question as a caller sent it, checked: the cleaned question, the earlier turns as
    (question, answer) pairs, the model ("" for the default), the passages (0 for the default) and
    the search filter: dates as typed ("" for none) and outlets."""

    question: str
    history: tuple[tuple[str, str], ...] = ()
    model: str = ""
    passages: int = 0
    date_from: str = ""
    date_to: str = ""
    paper: tuple[str, ...] = ()

    def filters(self) -> dict:
        """The filter as `Pipeline.stream`'s keyword arguments."""
        return {"date_from": self.date_from, "date_to": self.date_to, "paper": list(self.paper) or None}


def check_request(settings: Settings, models: list[str], question, history=None, model=None,
                  passages=None, date_from=None, date_to=None, paper=None) -> Request:
    """The caller's raw values (JSON-decoded or Python) as a checked `Request`.

    Args:
        settings: the server's settings (the question length limit).
        models: the models a caller may choose.
        question: text, in Chinese or English.
        history: None or a list of [question, answer] pairs of text.
        model: None or "" for the default, else one of ``models``.
        passages: None or 0 for the default, else a whole number from 1 to MAX_PASSAGES.
        date_from, date_to, paper: the search filter (`check_filters`); None for none.
    Returns:
        The checked request.
    Raises:
        BadQuestion: naming the first wrong field (`question: …`, `history[1][0]: …`).
    """
    try:
        cleaned = validate_question(question, settings)
    except BadQuestion as exc:
        raise BadQuestion(f"question: {exc}") from exc
    return Request(cleaned, check_history(history, settings), check_model(model, models), check_passages(passages),
                   *check_filters(date_from, date_to, paper))


def check_filters(date_from=None, date_to=None, paper=None) -> tuple[str, str, tuple[str, ...]]:
    """The search filter a caller sent: dates as `SearchFilter.parse` reads them, outlet names.

    Args:
        date_from, date_to: None or text: "2023", "2023-07", "2023-07-28" ("" for none).
        paper: None, an outlet name (several: comma-separated) or a list of names.
    Returns:
        (date_from, date_to, outlets), stripped; ("", "", ()) for no filter.
    Raises:
        BadQuestion: naming the field: not text, not a date, a range that ends before it starts,
            too many outlets or a name too long.
    """
    dates = []
    for name, value in (("date_from", date_from), ("date_to", date_to)):
        text = "" if value is None else _text(name, value, MAX_FILTER_CHARS).strip()
        try:
            SearchFilter.parse(**{name: text})
        except BadQuestion as exc:
            raise BadQuestion(f"{name}: {exc}") from exc
        dates.append(text)
    if paper is None or paper == "":
        outlets: tuple[str, ...] = ()
    elif isinstance(paper, str):
        outlets = (_text("paper", paper, MAX_FILTER_CHARS * MAX_OUTLETS),)
    elif isinstance(paper, (list, tuple)):
        if len(paper) > MAX_OUTLETS:
            raise BadQuestion(f"paper: at most {MAX_OUTLETS} outlets, not {len(paper)}")
        outlets = tuple(_text(f"paper[{n}]", name, MAX_FILTER_CHARS) for n, name in enumerate(paper))
    else:
        raise BadQuestion(f"paper: must be an outlet name or a list of them, not {_kind(paper)}")
    try:
        SearchFilter.parse(*dates)
    except BadQuestion as exc:
        raise BadQuestion(f"date_to: {exc}") from exc
    return dates[0], dates[1], tuple(o.strip() for o in outlets if o.strip())


def check_history(history, settings: Settings) -> tuple[tuple[str, str], ...]:
    """Earlier turns as (question, answer) pairs of text within their limits.

    Raises:
        BadQuestion: not a list, too many turns, a turn that is not a pair of text, text too long.
    """
    if history is None:
        return ()
    if not isinstance(history, (list, tuple)):
        raise BadQuestion(f"history: must be a list of [question, answer] pairs, not {_kind(history)}")
    if len(history) > MAX_HISTORY_TURNS:
        raise BadQuestion(f"history: at most {MAX_HISTORY_TURNS} earlier turns, not {len(history)}; "
                          f"send the last ones")
    pairs = []
    for n, turn in enumerate(history):
        if not isinstance(turn, (list, tuple)) or len(turn) != 2:
            raise BadQuestion(f"history[{n}]: must be a [question, answer] pair, not {_kind(turn)}")
        asked = _text(f"history[{n}][0]", turn[0], settings.max_question_chars)
        answered = _text(f"history[{n}][1]", turn[1], MAX_ANSWER_CHARS)
        pairs.append((asked, answered))
    return tuple(pairs)


def check_model(model, models: list[str]) -> str:
    """The chosen model: "" for the default, else one the settings menu offers.

    Raises:
        BadQuestion: not text, or not offered.
    """
    if model is None or model == "":
        return ""
    if not isinstance(model, str) or model not in models:
        raise BadQuestion(f"model: unknown model {_shown(model)}; choose one of: {', '.join(models)} "
                          f"(or leave it empty for the default)")
    return model


def check_passages(passages) -> int:
    """How many passages the answer may read: 0 for the default, else 1..MAX_PASSAGES.

    Raises:
        BadQuestion: not a whole number in range (a bool, text, a list, NaN and infinities included).
    """
    if passages is None:
        return 0
    whole = (isinstance(passages, Real) and not isinstance(passages, bool) and math.isfinite(passages)
             and int(passages) == passages)
    if not whole or not 0 <= passages <= MAX_PASSAGES:
        raise BadQuestion(f"passages: must be a whole number from 1 to {MAX_PASSAGES} (0 for the default), "
                          f"not {_shown(passages)}")
    return int(passages)


def missing_arguments(endpoint: str, names: list[str], received: int) -> BadQuestion:
    """The refusal of a call that sent fewer values than ``endpoint`` takes (they go by position)."""
    missing = names[received:]
    return BadQuestion(f"{', '.join(missing)}: missing; {endpoint} takes {len(names)} values in this order: "
                       f"{', '.join(names)} (this call sent {received})")


def for_caller(exc: RagError) -> str:
    """What a caller of the API is told of an error: the message without the operator's advice,
    and nothing that names the server's RAG_* settings or its paths (the terminal gets `str(exc)`,
    all of it)."""
    if _OPERATOR_TERMS.search(exc.message):
        return (f"the server cannot answer now ({type(exc).__name__}); the terminal running it says what "
                f"its operator must fix")
    return exc.message


def _text(field: str, value, limit: int) -> str:
    if not isinstance(value, str):
        raise BadQuestion(f"{field}: must be text, not {_kind(value)}")
    if (at := unencodable_at(value)) is not None:
        raise BadQuestion(f"{field}: holds a lone surrogate (U+{ord(value[at]):04X}) at character {at + 1}, "
                          f"which is not text; send UTF-8 text")
    if len(value) > limit:
        raise BadQuestion(f"{field}: {len(value):,} characters; the limit is {limit:,}")
    return value


def _kind(value) -> str:
    """A value's JSON kind and a short view of it, for a message."""
    kinds = {type(None): "null", bool: "true/false", int: "a number", float: "a number", str: "text",
             list: "a list", tuple: "a list", dict: "an object"}
    kind = kinds.get(type(value), type(value).__name__)
    return kind if value is None or isinstance(value, bool) else f"{kind} ({_shown(value)})"


def _shown(value, limit: int = 40) -> str:
    """A caller's value as a message may quote it: repr (escapes surrogates and newlines), cut short."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"
