"""Dify's External Knowledge API, as `rag serve` answers it at POST /retrieval.

Dify (and RAGFlow, which copies it) sends ``{knowledge_id, query, retrieval_setting: {top_k,
score_threshold}, metadata_condition?}`` with ``Authorization: Bearer KEY`` and expects ``{"records":
[{content, score, title, metadata}]}``; an error is a 4xx with ``{error_code, error_msg}`` — 1001 a
malformed Authorization header, 1002 a key refused, 2001 a knowledge base that does not exist, and
for what Dify names no code (a query too long, a wrong body) the HTTP status itself.

- The server holds one knowledge base, the archive it serves, whose id is `KNOWLEDGE_ID`: that is
  what goes into Dify's "External Knowledge ID" field.
- `score` is the search's fused score (0–1, the best passage near 1; rag.search.retrieve), which
  `score_threshold` is compared with; `title` is the article as cited (headline › sub-heading);
  `metadata` holds the article id (`GET /v1/articles/{id}`), outlet, date, page, file, paragraph…
  — always an object, as Dify requires.
- `metadata_condition` filters inside the search, as the chat's filter does: ``date`` with
  before / after / < / > / ≤ / ≥ (or <= / >=) / = / is, ``outlet`` with
  is / = / in. Conditions are joined with "and"; "or" of several conditions is refused, since the
  search filter is one date range and a set of outlets.
"""

from __future__ import annotations

from datetime import date as Date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rag.app.service import passage_dict
from rag.errors import BadQuestion
from rag.search.filters import SearchFilter, outlet_key
from rag.search.passage import Passage
from rag.search.retrieve import MAX_K

KNOWLEDGE_ID = "archive"
INVALID_AUTHORIZATION = 1001
AUTHORIZATION_FAILED = 1002
NO_SUCH_KNOWLEDGE = 2001
DATE_NAMES = ("date",)
OUTLET_NAMES = ("outlet", "paper")
MAX_CONDITIONS = 20


class RetrievalSetting(BaseModel):
    top_k: int = Field(ge=1, le=MAX_K, description=f"records to return at most (1-{MAX_K})")
    score_threshold: float = Field(default=0.0, ge=0.0, le=1.0, description="the least score a record has (0-1)")


class Condition(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str | list[str] = Field(description='"date" or "outlet"')
    comparison_operator: str = Field(description="date: before, after, <, >, ≤, ≥, =, is; outlet: is, =, in")
    value: Any = Field(default=None, description='"2023-07-28", "2023-07", "2023"; an outlet or a list')


class MetadataCondition(BaseModel):
    model_config = ConfigDict(extra="allow")

    logical_operator: str = Field(default="and", description='"and" ("or" only with one condition)')
    conditions: list[Condition] = Field(default_factory=list, max_length=MAX_CONDITIONS)


class RetrievalRequest(BaseModel):
    """The body Dify sends to POST /retrieval."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "knowledge_id": KNOWLEDGE_ID, "query": "清泉村去年电商交易额是多少？",
        "retrieval_setting": {"top_k": 3, "score_threshold": 0.5}}]})

    knowledge_id: str = Field(description=f'the knowledge base: "{KNOWLEDGE_ID}"')
    query: Any = Field(description="the search query (text)")
    retrieval_setting: RetrievalSetting
    metadata_condition: MetadataCondition | None = None


def error_body(code: int, message: str) -> dict:
    """An error as Dify reads it."""
    return {"error_code": code, "error_msg": message}


def check_knowledge(knowledge_id: str) -> None:
    """Raises: LookupError: not this server's knowledge base."""
    if knowledge_id != KNOWLEDGE_ID:
        raise LookupError(f"knowledge_id: no knowledge base {knowledge_id[:80]!r} here; this server has one, "
                          f"{KNOWLEDGE_ID!r}: put that in Dify's External Knowledge ID field")


def search_filter(condition: MetadataCondition | None) -> SearchFilter | None:
    """The search filter a metadata_condition asks for (None: no filter).

    Raises:
        BadQuestion: a field or operator the archive cannot filter on, a value that is not a date,
            "or" over several conditions.
    """
    if condition is None or not condition.conditions:
        return None
    conditions = condition.conditions
    if condition.logical_operator.lower() not in ("and", "or"):
        raise BadQuestion(f"metadata_condition.logical_operator: {condition.logical_operator!r}; use and or or")
    if condition.logical_operator.lower() == "or" and len(conditions) > 1:
        raise BadQuestion("metadata_condition: \"or\" over several conditions is not supported; the archive "
                          "filters on one date range and a set of outlets, joined with \"and\"")
    day_from, day_to, outlets = None, None, None
    for n, c in enumerate(conditions):
        where = f"metadata_condition.conditions[{n}]"
        name = c.name[0] if isinstance(c.name, list) and len(c.name) == 1 else c.name
        op = c.comparison_operator.strip().lower()
        if name in DATE_NAMES:
            low, high = _date_bounds(where, op, c.value)
            day_from = low if day_from is None or (low is not None and low > day_from) else day_from
            day_to = high if day_to is None or (high is not None and high < day_to) else day_to
        elif name in OUTLET_NAMES:
            names = _outlets(where, op, c.value)
            outlets = names if outlets is None else tuple(o for o in outlets if o in names)
        else:
            raise BadQuestion(f"{where}.name: the archive filters on date and outlet, not {name!r}")
    if outlets == ():  # outlets asked for, none in common: nothing passes
        outlets = ("\ue000",)
    return SearchFilter(day_from, day_to, outlets or ())


def records(passages: list[Passage], threshold: float) -> dict:
    """The response: passages scoring at least ``threshold``, best first."""
    found = []
    for p in passages:
        score = min(1.0, max(0.0, float(p.score)))
        if score < threshold:
            continue
        shown = passage_dict(p)
        metadata = {k: v for k, v in shown.items() if k not in ("text", "title", "score") and v not in (None, [])}
        found.append({"content": p.text, "score": round(score, 4), "title": p.label, "metadata": metadata})
    return {"records": found}


def _date_bounds(where: str, op: str, value) -> tuple[int | None, int | None]:
    """(first day, last day) as ordinals for one date condition; None where open."""
    if not isinstance(value, str) or not value.strip():
        raise BadQuestion(f"{where}.value: a date condition takes a date as text: 2023, 2023-07 or 2023-07-28")
    try:
        first = SearchFilter.parse(date_from=value).day_from
        last = SearchFilter.parse(date_to=value).day_to
    except BadQuestion as exc:
        raise BadQuestion(f"{where}.value: {exc.message}") from None
    bounds = {"after": (last + 1, None), ">": (last + 1, None), "≥": (first, None), ">=": (first, None),
              "before": (None, first - 1), "<": (None, first - 1), "≤": (None, last), "<=": (None, last),
              "=": (first, last), "is": (first, last)}
    if op not in bounds:
        raise BadQuestion(f"{where}.comparison_operator: a date is compared with before, after, <, >, ≤, ≥, = "
                          f"or is, not {op!r}")
    low, high = bounds[op]
    if low is not None and low > Date.max.toordinal():
        low = Date.max.toordinal()
    return low, high


def _outlets(where: str, op: str, value) -> tuple[str, ...]:
    """The outlet keys one outlet condition lets through."""
    if op in ("is", "="):
        values = [value]
    elif op == "in":
        values = value if isinstance(value, list) else [value]
    else:
        raise BadQuestion(f"{where}.comparison_operator: an outlet is compared with is, = or in, not {op!r}")
    if not values or not all(isinstance(v, str) and v.strip() for v in values):
        raise BadQuestion(f"{where}.value: an outlet condition takes an outlet name (in: a list of names)")
    return tuple(dict.fromkeys(outlet_key(v) for v in values))
