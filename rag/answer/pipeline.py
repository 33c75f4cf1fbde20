"""ask()/stream(): the one composition root — retrieve, gate, generate, verify citations.

    question ─ validate ─ (condense with history) ─ retrieve ─ evidence gate ─ LLM ─ verify_answer
                                                                  │ no evidence          │ unsupported
                                                                  └──── refusal + nearest headlines

Abstention is decided by code, not left to the model (a small model offered a way out takes it
for questions it could answer): before generation, when the passages contain too few of the
question's words or lack a number or ordinal it names ("2023年", "第十六次") or any figure of the
kind it asks for ("多少户"; where none the LLM reads has a figure of just that kind, one is moved
up); after it, when no sentence of the answer adds something to the question that a passage
supports (numbers compared as quantities, the subject it restates, the office a who-question
asks: rag.answer.cite), when a question asking for a number gets none beyond its own or only
figures of another kind (days where money was asked: rag.answer.asked), or when the model
declined anyway. A question of several parts is searched, gated and checked part by part
(rag.answer.parts); the answer names the parts the pages do not answer.

A Traditional question is searched, checked and answered in its Simplified form, the pages'
script; what the asker reads (the streamed text, the answer, a refusal) is converted back to
their script, while citations quote the pages as printed (rag.script).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Generator, Iterator

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from rag.answer.cite import keep_language, verify_answer
from rag.answer.condense import condense, condense_samples
from rag.answer.evidence import gate
from rag.answer.excerpts import select_excerpts
from rag.answer.parts import Part, interleave, part_excerpts, split_parts, unanswered
from rag.answer.asked import asked_quantity, check_figures, fitting_first
from rag.answer.types import Answer, Answered, Delta, Event, PipelineStatus, Retrieved
from rag.config import Settings
from rag.models.chat import expect_prompt, shared_chat_model, warm_up
from rag.prompts import fill, load_prompt
from rag.script import StreamConverter, search_form, writer_for
from rag.search.filters import SearchFilter
from rag.search.retrieve import HybridSearcher, Passage, open_searcher, validate_question
from rag.textnorm import detect_language

LANGUAGES = ("zh", "en")  # the languages answers are written in (prompts/instruction_*.md)
LANGUAGE_NAMES = {"zh": "Simplified Chinese", "en": "English"}
# Phrases with which the small models decline although the prompt offers no way out.
REFUSAL_CUES = ("没有相关信息", "没有提到", "未提及", "没有提及", "无法回答", "无法确定", "没有说明", "未说明",
                "don't say", "do not say", "does not say", "not mentioned", "cannot answer", "no information",
                "not stated", "doesn't say", "not provided", "don't mention", "do not mention")


@dataclass
class Asking:
    """One question on its way through the pipeline: what was asked, found and timed so far."""

    question: str  # as the user wrote it, validated
    language: str
    started: float
    rewritten: str = ""  # the search query: the question, or the follow-up made standalone
    asked: str = ""  # what the passages are measured against and the LLM answers
    passages: list[Passage] = field(default_factory=list)
    context: list[Passage] = field(default_factory=list)  # the passages the LLM read
    timings: dict = field(default_factory=dict)
    # A question of several parts (rag.answer.parts): the parts, and why the gate refused each ("": it passed).
    parts: list[Part] = field(default_factory=list)
    part_gates: list[str] = field(default_factory=list)
    # The asker's script (rag.script.writer_for): what they read is converted to it, from the
    # Simplified the answer is written and checked in; None: shown as written.
    writer: Callable[[str], str] | None = None

    def shown(self, text: str) -> str:
        """Text as the asker reads it: in their script."""
        return self.writer(text) if self.writer else text

    def refusal(self, reason: str, raw: str = "") -> Answer:
        """The honest "the pages don't say", with the nearest headlines to look at."""
        joiner = "；" if self.language == "zh" else "; "
        headlines = joiner.join(dict.fromkeys(p.label for p in self.passages[:3]))
        text = self.shown(load_prompt(f"refusal_{self.language}"))
        if headlines:
            # The headlines are the pages' own and stay as printed; only the words around them are converted.
            around = self.shown(fill(f"nearest_{self.language}", headlines="\ue000"))  # a private-use mark
            text += "\n" + around.replace("\ue000", headlines)
        self.timings["total_s"] = round(time.perf_counter() - self.started, 3)
        return Answer(self.question, text, [], self.passages, True, self.rewritten, self.language, self.timings,
                      reason=reason, raw_text=raw)


class Pipeline:
    """Holds the loaded searcher and chat model; safe to share between threads."""

    def __init__(self, settings: Settings, searcher: HybridSearcher | None = None, chat=None):
        self.settings = settings
        self.searcher = searcher
        self.chat = chat
        self._lock = threading.Lock()
        self._primed = False
        self._keeps_openings = False  # the chat model keeps the answer prompt's opening cached

    def load(self) -> "Pipeline":
        """Open the index (building it if missing or stale) and the chat model; idempotent.

        The searcher and the chat model come from process-wide caches keyed by the settings they
        depend on, so pipelines that differ in per-question settings share them.
        """
        with self._lock:
            if self.searcher is None:
                self.searcher = open_searcher(self.settings)
            if self.chat is None:
                self.chat = shared_chat_model(self.settings)
            if not self._primed:
                # llama.cpp keeps the answer prompt's fixed opening cached from now on, although
                # condense and translation turns evict it (~2.5 s on two cores); a chat model
                # shared with another pipeline has it already and answers at once.
                self._keeps_openings = expect_prompt(self.chat, self.prompt_samples()["answer"])
                self._primed = True
        return self

    def warm(self) -> None:
        """Load the index and models and prime the LLM, so that the first question is not slower."""
        self.load()
        if not self._keeps_openings:  # else primed while loading
            warm_up(self.chat, self.prompt_samples()["answer"][0])

    def reload(self, searcher: HybridSearcher | None = None) -> None:
        """Answer from another index from the next question on (the chat, after files were added).

        A question being answered meanwhile keeps the searcher it started with.

        Args:
            searcher: the new searcher, with the same embedder; None: `open_searcher` again, which
                reloads (or rebuilds) the index when the corpus changed.
        """
        searcher = searcher or open_searcher(self.settings)
        with self._lock:
            self.searcher = searcher

    def status(self) -> PipelineStatus:
        """The index and models this pipeline answers from (loading them if needed).

        Raises:
            RagError: the index cannot be opened or built, or a model is missing.
        """
        self.load()
        return PipelineStatus(self.searcher.index.status(), self.settings.llm_backend, self.settings.llm_model)

    def prompt_samples(self) -> dict[str, list[list]]:
        """Per kind of prompt, two samples that part where questions differ: what they share opens
        every prompt of the kind (llama.cpp keeps that opening cached)."""
        return {"answer": [self._messages(word, "zh", [(word, word)]) for word in ("甲", "乙")],
                "condense": condense_samples()}

    def stream(self, question, history=None, k: int | None = None, date_from=None, date_to=None,
               paper=None) -> Iterator[Event]:
        """Yield `Retrieved` when the passages are found, `Delta`s as the model writes, then `Answered`.

        Args:
            question: the user's question (Chinese or English).
            history: earlier turns as (question, answer) pairs, for follow-up questions.
            k: passages to retrieve (default settings.top_k).
            date_from, date_to, paper: search only these dates and outlets (`rag.retrieve`).
        Raises:
            BadQuestion: empty, too long, not text, k out of range, a date that is not one.
        """
        question = validate_question(question, self.settings)
        filters = SearchFilter.parse(date_from, date_to, paper)
        self.load()
        searcher = self.searcher  # one index for the whole answer, though `reload` may swap it meanwhile
        state = Asking(question, detect_language(question), time.perf_counter(), writer=writer_for(question))
        state.rewritten = condense(self.chat, question, history) if history else question
        # A Traditional question is measured and answered in its Simplified form, the pages' script.
        state.asked = search_form(state.rewritten if history else question)
        state.timings["condense_s"] = round(time.perf_counter() - state.started, 3)
        if state.language not in LANGUAGES:
            answer = Answer(question, load_prompt("unsupported_language"), [], [], True, state.rewritten,
                            state.language, state.timings, reason="language")
            yield from (Delta(answer.text), Answered(answer))
            return
        t0 = time.perf_counter()
        # A follow-up is one question: its condensed form may carry the question before it along.
        parts = split_parts(state.asked) if not history else []
        if len(parts) > 1:
            excerpts, asked = yield from self._prepare_parts(state, parts, searcher, k or self.settings.top_k,
                                                               filters)
            if excerpts is None:  # every part refused
                return
        else:
            # A follow-up searched together with the previous question may be longer than a question
            # may be: its end, the new question, is what counts.
            query = state.rewritten[-self.settings.max_question_chars:]
            state.passages = searcher.search(validate_question(query, self.settings), k or self.settings.top_k,
                                             filters)
            state.timings["retrieve_s"] = round(time.perf_counter() - t0, 4)
            yield Retrieved(state.passages, state.rewritten)
            reason = gate(state.asked, state.passages, searcher.index, self.settings.min_coverage)
            if reason:
                answer = state.refusal(reason)
                yield from (Delta(answer.text), Answered(answer))
                return
            ranked = fitting_first(asked_quantity(state.asked), state.passages, self.settings.llm_passages)
            excerpts, asked = select_excerpts(
                ranked, searcher.excerpt_scores(state.asked, ranked[: self.settings.llm_passages]),
                self.settings.llm_context_chars, self.settings.llm_passages), state.asked
        state.context = [e.passage for e in excerpts]
        state.timings["context_s"] = round(time.perf_counter() - t0 - state.timings["retrieve_s"], 4)
        messages = self._messages(asked, state.language, [(_heading(e.passage), e.text) for e in excerpts])
        answer = yield from self._write(state, messages)
        state.timings["generate_s"] = round(time.perf_counter() - state.started - state.timings.get("ttft_s", 0), 3)
        yield Answered(answer)

    def _prepare_parts(self, state: Asking, parts: list[Part], searcher: HybridSearcher, k: int,
                       filters) -> Generator[Event, None, tuple]:
        """A question of several parts (rag.answer.parts): each part searched and gated on its own,
        and excerpts for every part that passes (at most two passages of one article).

        Returns:
            (excerpts, the question put to the LLM: all of it, or the parts that passed), or
            (None, "") when no part passed and the refusal was yielded.
        """
        t0 = time.perf_counter()
        found = [searcher.search(validate_question(p.query[-self.settings.max_question_chars:], self.settings), k,
                                 filters) for p in parts]
        state.parts, state.passages = parts, interleave(found, k * len(parts))
        state.timings["retrieve_s"] = round(time.perf_counter() - t0, 4)
        yield Retrieved(state.passages, state.rewritten)
        state.part_gates = [gate(p.query, f, searcher.index, self.settings.min_coverage) for p, f in zip(parts, found)]
        passing = [i for i, why in enumerate(state.part_gates) if not why]
        if not passing:
            answer = state.refusal(state.part_gates[0])
            yield from (Delta(answer.text), Answered(answer))
            return None, ""
        excerpts = part_excerpts([parts[i] for i in passing], [found[i] for i in passing], searcher,
                                 self.settings.llm_context_chars, self.settings.llm_passages)
        # A part leaning on a refused one is asked together with it, as the whole question.
        if len(passing) == len(parts) or any(parts[i].context for i in passing):
            return excerpts, state.asked
        return excerpts, ("" if state.language == "zh" else " ").join(parts[i].text for i in passing)

    def _write(self, state: Asking, messages: list) -> Generator[Delta, None, Answer]:
        """Have the model answer, yielding its deltas; returns the checked answer.

        Correction turns, each kind at most once: a restated answer is asked again in the
        conversation (the prompt prefix is cached, so that costs little more than the new
        words); an answer in the wrong language is translated on its own, without the earlier
        turns or the answering rules, which make the model copy its answer instead.
        """
        raw = yield from self._generate(state, messages)
        answer = self._check(state, raw)
        done: set[str] = set()
        kind, turns = self._correction(answer, state.language, messages, raw)
        while kind and kind not in done:
            done.add(kind)
            yield Delta("\n")
            raw = yield from self._generate(state, turns)
            again = self._check(state, raw)
            if again.abstained and not answer.abstained:
                break
            answer = again
            kind, turns = self._correction(answer, state.language, turns, raw)
        return answer

    def _generate(self, state: Asking, messages) -> Generator[Delta, None, str]:
        """Stream the model's reply as deltas (the first one timed); returns the whole reply."""
        pieces: list[str] = []
        shown = StreamConverter(state.writer) if state.writer else None
        for chunk in self.chat.stream(messages):
            delta = chunk.content if isinstance(chunk.content, str) else ""
            if delta:
                state.timings.setdefault("ttft_s", round(time.perf_counter() - state.started, 3))
                pieces.append(delta)
                if shown is None:
                    yield Delta(delta)
                elif text := shown.feed(delta):
                    yield Delta(text)
        if shown is not None and (text := shown.flush()):
            yield Delta(text)
        return "".join(pieces).strip()

    @staticmethod
    def _correction(answer: Answer, language: str, turns: list, raw: str) -> tuple[str, list]:
        """("restated" or "language", the messages to send), or ("", []) when the answer stands.

        "restated": the answer only restated the question ("… is [1].", typically a Chinese name
        the model could not put into English); "language": it was written in another language
        than the question's."""
        if answer.reason == "restates the question":
            return "restated", turns + [AIMessage(raw),
                                        HumanMessage(fill("retry_restated", language=LANGUAGE_NAMES[language]))]
        if not answer.abstained and detect_language(answer.text) != language:
            return "language", [HumanMessage(fill("retry_language", language=LANGUAGE_NAMES[language],
                                                  answer=answer.text))]
        return "", []

    def ask(self, question, history=None, k: int | None = None, date_from=None, date_to=None,
            paper=None) -> Answer:
        """The verified answer (see `stream`)."""
        for event in self.stream(question, history, k, date_from, date_to, paper):
            if isinstance(event, Answered):
                return event.answer
        raise AssertionError("Pipeline.stream ended without an answer")  # stream always ends with one

    def _messages(self, question: str, language: str, excerpts: list[tuple[str, str]]):
        """The answer prompt; ``excerpts`` are (headline, text) pairs."""
        passages = "\n\n".join(fill("passage", n=i, article=article, text=text)
                               for i, (article, text) in enumerate(excerpts, start=1))
        # The system prompt is the same for every question, so llama.cpp keeps it cached.
        return [SystemMessage(load_prompt("system")),
                HumanMessage(fill("answer", passages=passages, question=question,
                                  instruction=load_prompt(f"instruction_{language}")))]

    def _check(self, state: Asking, raw: str) -> Answer:
        """The model's reply checked against the passages it read: the answer, or a refusal."""
        if not raw or any(cue in raw.lower() for cue in REFUSAL_CUES):
            return state.refusal("model declined", raw)
        # Sentences in the other language go when the rest answers (pasted passages), unless
        # only they are supported.
        in_language = keep_language(raw, state.language)
        embedder, glossary = self.searcher.embedder, self.searcher.index.glossary
        text, citations, checked = verify_answer(in_language, state.context, embedder, state.asked, glossary)
        if in_language != raw and not any(c.supported for c in checked):
            text, citations, checked = verify_answer(raw, state.context, embedder, state.asked, glossary)
        supported = [c.text for c in checked if c.supported]
        if not supported:
            reason = "restates the question" if checked and all(c.restates for c in checked) else "no support"
            return state.refusal(reason, raw)
        # Each part of a question of several is checked on its own; the answer says which the
        # pages do not answer, and is a refusal only when they answer none.
        missing = unanswered(state.parts, state.part_gates, supported) if state.parts else []
        if state.parts and len(missing) == len(state.parts):
            return state.refusal(missing[0][1], raw)
        asked = asked_quantity(state.asked) if not state.parts else None
        wrong = check_figures(asked, supported, state.asked, [c.text for c in checked if not c.supported]) if asked else ""
        if wrong:  # "no figure", figures of another kind than asked, or the asked one unverified
            return state.refusal(wrong, raw)
        reason = ""
        if missing:
            joiner = "；" if state.language == "zh" else "; "
            text += "\n" + fill(f"partial_{state.language}", parts=joiner.join(state.parts[i].text for i, _ in missing))
            reason = "part not answered: " + joiner.join(f"{state.parts[i].text} ({why})" for i, why in missing)
        state.timings["total_s"] = round(time.perf_counter() - state.started, 3)
        return Answer(state.question, state.shown(text), citations, state.passages, False, state.rewritten,
                      state.language, state.timings, reason=reason,
                      unsupported_sentences=[state.shown(c.text) for c in checked if not c.supported],
                      unverified_numbers=[n for c in checked for n in c.unverified_numbers],
                      corrected_numbers=[fix for c in checked for fix in c.corrected_numbers], raw_text=raw)


# Pipelines are cheap (the searcher and chat model they hold are cached by what they depend on),
# so one per distinct Settings is fine.
_PIPELINES: dict[Settings, Pipeline] = {}
_PIPELINES_LOCK = threading.Lock()


def _heading(passage: Passage) -> str:
    """A passage's heading in the prompt: its own heading (the sub-heading in a sectioned story), and
    "outlet · date · page" where known (so the model can say when and where something was reported)."""
    where = passage.provenance
    return f"{passage.heading}（{where}）" if where else passage.heading


def get_pipeline(settings: Settings | None = None) -> Pipeline:
    """The process-wide pipeline for these settings (models and index load once)."""
    settings = settings or Settings.from_env()
    with _PIPELINES_LOCK:
        if settings not in _PIPELINES:
            _PIPELINES[settings] = Pipeline(settings)
        return _PIPELINES[settings]


def _with_options(settings: Settings | None, options: dict) -> Settings:
    base = settings or Settings.from_env()
    return base if not options else Settings(**{**asdict(base), **options})


def ask(question, history=None, settings: Settings | None = None, date_from=None, date_to=None, paper=None,
        **options) -> Answer:
    """Answer a question from the pages, with verified citations.

    Args:
        question: Chinese (Simplified or Traditional) or English.
        history: earlier (question, answer) pairs for follow-ups ("那平阳呢？").
        settings: configuration; options override single fields (e.g. llm_model="fast", top_k=8).
        date_from, date_to, paper: search only these dates and outlets (as `rag.retrieve`).
    Returns:
        An `Answer`: `.text .citations .passages .abstained .rewritten_query .timings`.
    """
    return get_pipeline(_with_options(settings, options)).ask(question, history, None, date_from, date_to, paper)


def stream(question, history=None, settings: Settings | None = None, date_from=None, date_to=None, paper=None,
           **options) -> Iterator[Event]:
    """Like `ask`, yielding `Retrieved`, then `Delta`s as the answer is written, then `Answered`."""
    yield from get_pipeline(_with_options(settings, options)).stream(question, history, None, date_from, date_to,
                                                                     paper)


__all__ = ["Answer", "Answered", "Delta", "Pipeline", "Retrieved", "ask", "get_pipeline", "stream"]
