"""An LLM line per period of a timeline, checked like answers: what that period's entries say.

The model reads only the period's entries (their sentences, numbered as in the answer prompt, at
most `MAX_SENTENCES`), under the answers' system prompt, and its reply goes through
`verify_answer` against exactly those sentences: a sentence no entry supports is dropped from the
line and kept in `PeriodSummary.dropped`, so the reader sees what was left out. Markers are
renumbered to the entries' own numbers (`Entry.citation.n`), so [n] in a summary points at the
entry list.
"""

from __future__ import annotations

import dataclasses

from langchain_core.messages import HumanMessage, SystemMessage

from rag.answer.cite import render, verify_answer
from rag.errors import RagError
from rag.prompts import fill, load_prompt

MAX_SENTENCES = 6  # entries one summary reads: the prompt stays short (~100 tokens/s on two CPU cores)


def summarise_periods(timeline, chat, embedder=None) -> list:
    """One checked summary per period that has entries, in date order.

    Args:
        timeline: a `rag.answer.timeline.Timeline` with entries.
        chat: a LangChain chat model.
        embedder: the index's embedder, for sentences the model writes in English (optional).
    Raises:
        RagError: no chat model was given.
    """
    if chat is None:
        raise RagError("summaries need the chat model; call rag.timeline(..., summarise=True), which loads it")
    periods = dict.fromkeys(e.period for e in timeline.entries if e.period)
    return [summarise_period(period, timeline.entries_in(period), timeline.topic, chat, embedder)
            for period in periods]


def summarise_period(period: str, entries: list, topic: str, chat, embedder=None):
    """The checked summary of one period's entries (`rag.answer.timeline.PeriodSummary`)."""
    from rag.answer.timeline_types import PeriodSummary

    entries = [e for e in entries if e.passage is not None][:MAX_SENTENCES]
    if not entries:
        return PeriodSummary(period, "")
    # The model reads the sentences only, and is checked against what it read.
    read = [dataclasses.replace(e.passage, text=e.text) for e in entries]
    passages = "\n\n".join(fill("passage", n=i, article=e.citation.label or e.citation.article, text=e.text)
                           for i, e in enumerate(entries, start=1))
    messages = [SystemMessage(load_prompt("system")),
                HumanMessage(fill("timeline_summary", topic=topic, period=period, passages=passages))]
    reply = chat.invoke(messages)
    raw = reply.content if isinstance(reply.content, str) else ""
    _, _, checked = verify_answer(raw.strip(), read, embedder, question=topic)
    kept = [dataclasses.replace(c, cites=[entries[n - 1].citation.n for n in c.cites])
            for c in checked if c.supported]
    cited = dict.fromkeys(n for c in checked if c.supported for n in c.cites)
    return PeriodSummary(period, render(kept) if kept else "", [entries[n - 1].citation for n in cited],
                         [c.text for c in checked if not c.supported and not c.restates])
