"""What the answer stage hands out: the checked `Answer`, the events `Pipeline.stream` yields,
and the pipeline's status.

Events, in order: `Retrieved` once the passages are found (before the LLM starts, so a window
can show the evidence while the answer is written), `Delta`s as the model writes, and
`Answered` last, with the checked answer — whose text may differ from the deltas (a refusal,
[?] marks, corrected amounts), so a window replaces what it streamed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Union

from rag.answer.cite import Citation
from rag.search.index import IndexStatus
from rag.search.retrieve import Passage


@dataclass
class Answer:
    """A verified answer, or a refusal, with everything the UI and evaluation need."""

    question: str
    text: str
    citations: list[Citation]
    passages: list[Passage]
    abstained: bool
    rewritten_query: str
    language: str
    timings: dict = field(default_factory=dict)
    unsupported_sentences: list[str] = field(default_factory=list)
    unverified_numbers: list[str] = field(default_factory=list)
    corrected_numbers: list[tuple[str, str]] = field(default_factory=list)  # (model's, passage's)
    reason: str = ""
    raw_text: str = ""

    def to_dict(self) -> dict:
        """JSON-ready form (`rag ask --json`)."""
        return asdict(self)


@dataclass(frozen=True)
class Retrieved:
    """The passages found for the question, and the query they were searched with."""

    passages: list[Passage]
    rewritten_query: str


@dataclass(frozen=True)
class Delta:
    """A piece of the answer as the model writes it."""

    text: str


@dataclass(frozen=True)
class Answered:
    """The checked answer: the last event of every question."""

    answer: Answer


Event = Union[Retrieved, Delta, Answered]


@dataclass(frozen=True)
class PipelineStatus:
    """What a loaded pipeline answers from: its index and its models."""

    index: IndexStatus
    llm_backend: str
    llm_model: str

    def line(self) -> str:
        """One line for a status bar or a report header."""
        i = self.index
        built = i.built_at[:16].replace("T", " ") or "?"
        archive = f" · {i.outlets} outlets" if i.outlets else ""
        if i.first_date:
            archive += f" · {i.first_date} – {i.last_date}"
        line = (f"{i.pages} files · {i.articles} articles{archive} · {i.chunks} passages · embedder {i.embedder} · "
                f"built {built} · LLM {self.llm_model}")
        if i.refused:  # links leaving the corpus, FIFOs…: named with their kind, never their target
            shown = ", ".join(f"{name} ({kind})" for name, kind in i.refused[:3])
            more = f" and {len(i.refused) - 3} more" if len(i.refused) > 3 else ""
            line += f" · {len(i.refused)} file{'s' if len(i.refused) > 1 else ''} refused: {shown}{more}"
        return line
