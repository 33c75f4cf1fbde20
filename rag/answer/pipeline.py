"""ask()/stream(): the one composition root — retrieve, gate, generate, verify citations.

    question ─ validate ─ (condense with history) ─ retrieve ─ evidence gate ─ LLM ─ verify_answer
                                                                  │ no evidence          │ unsupported
                                                                  └──── refusal + nearest headlines

Abstention is decided by code, not left to the model (a small model offered a way out takes it
for questions it could answer): before generation, when the passages contain too few of the question's
words or lack a number or ordinal it names ("2023年", "第十六次"); after it, when
no sentence of the answer adds something to the question that a passage supports (numbers
compared as quantities), when a question asking for a number gets none, or when the model
declined anyway.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableLambda

from rag.answer.cite import Citation, keep_language, verify_answer
from rag.config import Settings
from rag.answer.excerpts import select_excerpts
from rag.answer.evidence import gate
from rag.prompts import fill, load_prompt
from rag.answer.quantities import asks_for_quantity, has_quantity
from rag.search.retrieve import HybridSearcher, Passage, open_searcher, validate_question
from rag.textnorm import detect_language, match_key

LANGUAGES = ("zh", "en")  # the languages answers are written in (prompts/instruction_*.md)
LANGUAGE_NAMES = {"zh": "Simplified Chinese", "en": "English"}
# Phrases with which the small models decline although the prompt offers no way out.
REFUSAL_CUES = ("没有相关信息", "没有提到", "未提及", "没有提及", "无法回答", "无法确定", "没有说明", "未说明",
                "don't say", "do not say", "does not say", "not mentioned", "cannot answer", "no information",
                "not stated", "doesn't say", "not provided", "don't mention", "do not mention")
HISTORY_TURNS = 3


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


class Pipeline:
    """Holds the loaded searcher and chat model; safe to share between threads."""

    def __init__(self, settings: Settings, searcher: HybridSearcher | None = None, chat=None):
        self.settings = settings
        self.searcher = searcher
        self.chat = chat
        self._lock = threading.Lock()
        self._condense_kept = False

    def _ensure_loaded(self):
        with self._lock:
            if self.searcher is None:
                self.searcher = open_searcher(self.settings)
            if self.chat is None:
                from rag.models.chat import make_chat_model

                chat = make_chat_model(self.settings)
                if self._keeps_prefixes(chat):
                    # llama.cpp: the answer prompt's fixed opening stays cached although condense
                    # and translation turns evict it (~2.5 s on two cores); the condense prompt's
                    # is kept when the first follow-up comes, when keeping it costs nothing extra.
                    chat.keep_prefix(*self._prefix_samples())
                self.chat = chat
        return self.searcher, self.chat

    def warm(self) -> None:
        """Load the index and models and prime the LLM, so that the first question is not slower."""
        from rag.models.chat import warm_up

        _, chat = self._ensure_loaded()
        if not self._keeps_prefixes(chat):  # else primed while loading
            warm_up(chat, self._prefix_samples()[0])

    def _keeps_prefixes(self, chat) -> bool:
        return self.settings.llm_keep_prefix and hasattr(chat, "keep_prefix")

    def keep_prefixes(self, chat) -> None:
        """Have a llama.cpp chat model keep the answer and condense prompts' openings cached."""
        chat.keep_prefix(*self._prefix_samples())
        chat.keep_prefix(*self._condense_samples())
        self._condense_kept = True

    def _prefix_samples(self) -> list[list]:
        """Two answer prompts that part at the first headline: what they share opens every prompt."""
        return [self._messages(word, "zh", [(word, word)]) for word in ("甲", "乙")]

    @staticmethod
    def _condense_samples() -> list[list]:
        """Two condense prompts that part at the history: what they share opens every one."""
        return [_condense_messages([(word, word)], word) for word in ("甲", "乙")]

    def stream(self, question, history=None, k: int | None = None,
               on_passages: Callable[[list[Passage], str], None] | None = None) -> Iterator[str | Answer]:
        """Yield text deltas as the model writes, then the verified `Answer`.

        Args:
            question: the user's question (Chinese or English).
            history: earlier turns as (question, answer) pairs, for follow-up questions.
            k: passages to retrieve (default settings.top_k).
            on_passages: called with (passages, rewritten query) as soon as retrieval is done,
                before the LLM starts, so a UI can show the evidence while the answer streams.
        Raises:
            BadQuestion: empty, too long, not text, k out of range.
        """
        question = validate_question(question, self.settings)
        language = detect_language(question)
        searcher, chat = self._ensure_loaded()
        started = time.perf_counter()
        rewritten = self._condense(chat, question, history) if history else question
        timings = {"condense_s": round(time.perf_counter() - started, 3)}
        if language not in LANGUAGES:
            answer = Answer(question, load_prompt("unsupported_language"), [], [], True, rewritten, language,
                            timings, reason="language")
            yield answer.text
            yield answer
            return
        t0 = time.perf_counter()
        passages = searcher.search(validate_question(rewritten, self.settings), k or self.settings.top_k)
        timings["retrieve_s"] = round(time.perf_counter() - t0, 4)
        if on_passages is not None:
            on_passages(passages, rewritten)
        asked = question if not history else rewritten
        reason = gate(asked, passages, searcher.index, self.settings.min_coverage)
        if reason:
            answer = self._refusal(question, rewritten, language, passages, timings, started, reason)
            yield answer.text
            yield answer
            return
        excerpts = select_excerpts(passages, searcher.excerpt_scores(asked, passages[: self.settings.llm_passages]),
                                   self.settings.llm_context_chars, self.settings.llm_passages)
        context = [e.passage for e in excerpts]
        timings["context_s"] = round(time.perf_counter() - t0 - timings["retrieve_s"], 4)
        messages = self._messages(asked, language, [(e.passage.article, e.text) for e in excerpts])
        pieces: list[str] = []
        for delta in self._generate(chat, messages):
            if not pieces:
                timings["ttft_s"] = round(time.perf_counter() - started, 3)
            pieces.append(delta)
            yield delta
        raw = "".join(pieces).strip()
        answer = self._finish(question, asked, rewritten, language, passages, context, raw, timings, started)
        # Correction turns, each kind at most once: a restated answer is asked again in the
        # conversation (the prompt prefix is cached, so that costs little more than the new
        # words); an answer in the wrong language is translated on its own, without the earlier
        # turns or the answering rules, which make the model copy its answer instead.
        done: set[str] = set()
        kind, turns = self._correction(answer, language, messages, raw)
        while kind and kind not in done:
            done.add(kind)
            yield "\n"
            pieces = []
            for delta in self._generate(chat, turns):
                pieces.append(delta)
                yield delta
            raw = "".join(pieces).strip()
            again = self._finish(question, asked, rewritten, language, passages, context, raw, timings, started)
            if again.abstained and not answer.abstained:
                break
            answer = again
            kind, turns = self._correction(answer, language, turns, raw)
        timings["generate_s"] = round(time.perf_counter() - started - timings.get("ttft_s", 0), 3)
        yield answer

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

    @staticmethod
    def _generate(chat, messages) -> Iterator[str]:
        for chunk in chat.stream(messages):
            delta = chunk.content if isinstance(chunk.content, str) else ""
            if delta:
                yield delta

    def ask(self, question, history=None, k: int | None = None) -> Answer:
        """The verified answer (see `stream`)."""
        answer = None
        for item in self.stream(question, history, k):
            if isinstance(item, Answer):
                answer = item
        return answer

    def _messages(self, question: str, language: str, excerpts: list[tuple[str, str]]):
        """The answer prompt; ``excerpts`` are (headline, text) pairs."""
        passages = "\n\n".join(fill("passage", n=i, article=article, text=text)
                               for i, (article, text) in enumerate(excerpts, start=1))
        # The system prompt is the same for every question, so llama.cpp keeps it cached.
        return [SystemMessage(load_prompt("system")),
                HumanMessage(fill("answer", passages=passages, question=question,
                                  instruction=load_prompt(f"instruction_{language}")))]

    def _condense(self, chat, question: str, history) -> str:
        turns = list(history)[-HISTORY_TURNS:]
        with self._lock:  # not held while the model works: other questions need it
            keep, self._condense_kept = not self._condense_kept and self._keeps_prefixes(chat), True
        if keep:
            chat.keep_prefix(*self._condense_samples())
        lines = chat.invoke(_condense_messages(turns, question), max_tokens=80).content.strip().splitlines()
        rewritten = lines[0].strip().removeprefix("Rewritten question:").strip() if lines else ""
        # A rewrite that lost the question (empty, or far longer than history warrants) is not used.
        if not rewritten or len(rewritten) > 4 * len(question) + 200:
            rewritten = question
        # The small model sometimes hands a dependent question back unchanged ("那里投入了多少资金？");
        # then the last question goes with it, so that search still knows what "那里" is.
        if match_key(rewritten) == match_key(question) and _depends_on_context(question):
            rewritten = f"{turns[-1][0]} {question}"
        return rewritten

    def _refusal(self, question, rewritten, language, passages, timings, started, reason, raw="") -> Answer:
        headlines = "；".join(dict.fromkeys(p.article for p in passages[:3])) if language == "zh" else \
            "; ".join(dict.fromkeys(p.article for p in passages[:3]))
        text = load_prompt(f"refusal_{language}")
        if headlines:
            text += "\n" + fill(f"nearest_{language}", headlines=headlines)
        timings["total_s"] = round(time.perf_counter() - started, 3)
        return Answer(question, text, [], passages, True, rewritten, language, timings, reason=reason,
                      raw_text=raw)

    def _finish(self, question, asked, rewritten, language, passages, context, raw, timings, started) -> Answer:
        if not raw or any(cue in raw.lower() for cue in REFUSAL_CUES):
            return self._refusal(question, rewritten, language, passages, timings, started, "model declined", raw)
        # Sentences in the other language go when the rest answers (pasted passages), unless
        # only they are supported.
        in_language = keep_language(raw, language)
        text, citations, checked = verify_answer(in_language, context, self.searcher.embedder, question=asked)
        if in_language != raw and not any(c.supported for c in checked):
            text, citations, checked = verify_answer(raw, context, self.searcher.embedder, question=asked)
        supported = [c.text for c in checked if c.supported]
        if not supported:
            reason = "restates the question" if checked and all(c.restates for c in checked) else "no support"
            return self._refusal(question, rewritten, language, passages, timings, started, reason, raw)
        if asks_for_quantity(asked) and not any(has_quantity(s) for s in supported):
            return self._refusal(question, rewritten, language, passages, timings, started, "no figure", raw)
        timings["total_s"] = round(time.perf_counter() - started, 3)
        return Answer(question, text, citations, passages, False, rewritten, language, timings,
                      unsupported_sentences=[c.text for c in checked if not c.supported],
                      unverified_numbers=[n for c in checked for n in c.unverified_numbers],
                      corrected_numbers=[fix for c in checked for fix in c.corrected_numbers], raw_text=raw)

    def as_runnable(self) -> RunnableLambda:
        """The whole chain as a LangChain Runnable: {"question", "history"?} or a string → Answer."""
        def run(value):
            if isinstance(value, str):
                return self.ask(value)
            return self.ask(value["question"], value.get("history"), value.get("k"))

        return RunnableLambda(run, name="rag")


def _condense_messages(turns, question: str) -> list:
    """The prompt that rewrites a follow-up question: earlier (question, answer) turns and it."""
    lines = []
    for asked, answered in turns:
        lines.append(f"Q: {asked}")
        lines.append(f"A: {str(answered)[:300]}")
    return [HumanMessage(fill("condense", history="\n".join(lines), question=question))]


# Words that point back into the conversation, and the length under which a question usually does.
_ANAPHORA = re.compile(r"那|这|他|她|它|其|该|呢|\b(?:it|its|they|them|their|there|that|this|he|she|his|her)\b", re.I)
_SHORT_QUESTION = 12


def _depends_on_context(question: str) -> bool:
    """Whether a question probably needs the conversation to be understood."""
    return bool(_ANAPHORA.search(question)) or len(question) <= _SHORT_QUESTION


_PIPELINES: dict[Settings, Pipeline] = {}
_PIPELINES_LOCK = threading.Lock()


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


def ask(question, history=None, settings: Settings | None = None, **options) -> Answer:
    """Answer a question from the pages, with verified citations.

    Args:
        question: Chinese or English.
        history: earlier (question, answer) pairs for follow-ups ("那平阳呢？").
        settings: configuration; options override single fields (e.g. llm_model="fast", top_k=8).
    Returns:
        An `Answer`: `.text .citations .passages .abstained .rewritten_query .timings`.
    """
    return get_pipeline(_with_options(settings, options)).ask(question, history)


def stream(question, history=None, settings: Settings | None = None, **options) -> Iterator[str | Answer]:
    """Like `ask`, yielding text deltas as they are generated and finally the `Answer`."""
    yield from get_pipeline(_with_options(settings, options)).stream(question, history)


__all__ = ["Answer", "Pipeline", "ask", "get_pipeline", "stream"]
