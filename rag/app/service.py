"""What the HTTP API (`rag serve`) and the MCP tools answer with: questions checked, answers run on
a bounded pool, and the JSON shapes of passages, citations and articles.

Article ids. An article is named ``<file>:<number>``: its file relative to the corpus folder (as in
`Passage.source`, `Citation.source`) and its number in that file (`Article.number`,
`Passage.article_no`), e.g. ``003_5fe0b02ab379ac0e.txt:2`` or ``news-001.txt:417``. That is what
`rag.ingest.library.ArticleLibrary` looks articles up by, so the id needs no table of its own and
stays the same across index rebuilds for as long as the file keeps its articles in order (readers
number them by position). A chunk's id (`Passage.chunk_id`, ``stem:number:part``) names a passage,
not an article: it leaves out the folder and the suffix, so it could not find the file again.
Citations, Dify records, MCP results and `GET /v1/articles/{id}` all use `article_id`.

Concurrency. The pipeline is shared by every request, and llama.cpp generates one answer at a time
(a lock in `rag.models.llamacpp`). As in the chat (`rag.app.ui`), up to `ANSWER_CONCURRENCY` questions
are answered together, each in its own pipeline stream (so each sees its passages at once while the
generations take turns, and no event of one question can reach another's reply); further questions
wait in the pool's queue, and beyond `QUEUE_SIZE` waiting a request is refused as busy (503), not
left to time out. Nothing here imports gradio, fastapi or mcp.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import AsyncIterator, Callable

from rag.answer.pipeline import Answered, Pipeline, get_pipeline
from rag.answer.types import Answer, Event
from rag.config import Settings
from rag.errors import BadQuestion, CorpusError, RagError
from rag.ingest.article import Article, display_date, provenance
from rag.ingest.library import ArticleLibrary
from rag.memory import release_free_memory
from rag.app.validation import Request, check_filters, check_request, for_caller  # noqa: F401  (for_caller: the faces' errors)
from rag.search.filters import SearchFilter
from rag.search.passage import Passage, validate_question

ANSWER_CONCURRENCY = 8  # the chat's figure (rag.app.ui.ANSWER_CONCURRENCY), measured there
QUEUE_SIZE = 64  # questions that may wait for a free place before one is refused as busy
MAX_ID_CHARS = 1000
# What heads the sources list at the end of a reply's text (`reply_text`); a client that sends the
# reply back as history has it cut off again (`strip_sources`), so the rewrite reads the answer only.
SOURCES_HEADING = "来源 · Sources:"


class ServerBusy(RagError):
    """Too many questions are waiting; the caller should try again shortly."""


def model_choices(settings: Settings) -> list[str]:
    """The models a caller may choose: the configured one, and the bundled presets for llama.cpp.

    The chat's settings menu offers the same list.
    """
    if settings.llm_backend != "llama.cpp":
        return [settings.llm_model]
    from rag.models.gguf import PRESETS

    return list(dict.fromkeys([settings.llm_model, *PRESETS]))


def article_id(source: str, number: int) -> str:
    """The id of article ``number`` of file ``source`` (see the module docstring)."""
    return f"{source}:{number}"


def parse_article_id(value) -> tuple[str, int]:
    """(file, number) from an article id.

    Raises:
        BadQuestion: not text, too long, or not ``<file>:<number>``.
    """
    if not isinstance(value, str) or not value.strip():
        raise BadQuestion("id: must be an article id, <file>:<number>, e.g. news-001.txt:17")
    if len(value) > MAX_ID_CHARS:
        raise BadQuestion(f"id: {len(value):,} characters; an article id is at most {MAX_ID_CHARS:,}")
    source, sep, number = value.strip().rpartition(":")
    if not sep or not source or not number.isdigit() or int(number) < 1:
        raise BadQuestion(f"id: {value[:80]!r} is not an article id; write <file>:<number>, e.g. news-001.txt:17 "
                          f"(citations and search results carry it as article_id)")
    return source, int(number)


def passage_dict(passage: Passage) -> dict:
    """A search result as JSON: its text and where it comes from."""
    return {"article_id": article_id(passage.source, passage.article_no), "chunk_id": passage.chunk_id,
            "title": passage.label, "text": passage.text, "score": round(float(passage.score), 4),
            "outlet": passage.paper, "date": display_date(passage.date), "page": passage.page,
            "file": passage.source, "paragraph": passage.paragraph, "url": passage.url,
            "provenance": passage.provenance, "also_in": list(passage.also_in)}


def citation_dict(citation, passages: list[Passage]) -> dict:
    """A checked citation as JSON (n, article, outlet, date, file, paragraph, quote, supported, …)."""
    found = next((p for p in passages if p.chunk_id == citation.chunk_id and p.source == citation.source), None)
    return {"n": citation.n, "article": citation.label or citation.article,
            "article_id": article_id(found.source, found.article_no) if found else None,
            "outlet": citation.paper, "date": display_date(citation.date), "page": citation.page,
            "file": citation.source, "paragraph": citation.paragraph, "quote": citation.quote,
            "supported": citation.supported, "score": round(float(citation.score), 4),
            "chunk_id": citation.chunk_id, "provenance": citation.provenance, "also_in": list(citation.also_in)}


def answer_dict(answer: Answer) -> dict:
    """A checked answer as JSON: the reply as shown (`reply_text`), the answer alone, its citations."""
    return {"text": reply_text(answer), "answer": answer.text, "abstained": answer.abstained,
            "citations": [citation_dict(c, answer.passages) for c in answer.citations],
            "rewritten_query": answer.rewritten_query, "language": answer.language,
            "unsupported_sentences": answer.unsupported_sentences,
            "unverified_numbers": answer.unverified_numbers}


def timeline_dict(timeline) -> dict:
    """A timeline as JSON (`Timeline.to_dict`), each entry with the article_id that opens its article."""
    out = timeline.to_dict()
    for entry, shown in zip(timeline.entries, out["entries"]):
        passage = entry.passage
        shown["article_id"] = article_id(passage.source, passage.article_no) if passage else None
    return out


def article_dict(article: Article) -> dict:
    """A whole article with its metadata, as JSON."""
    return {"id": article_id(article.source, article.number), "headline": article.headline,
            "file": article.source, "number": article.number, "kind": article.kind, "outlet": article.paper,
            "date": display_date(article.date), "date_precision": article.date_precision, "page": article.page,
            "section": article.section, "url": article.url, "author": article.author, "byline": article.byline,
            "kicker": article.kicker, "provenance": provenance(article),
            "subheads": [{"paragraph": start + 1, "title": title} for start, title in article.subheads],
            "paragraphs": list(article.paragraphs), "text": article.text}


def reply_text(answer: Answer) -> str:
    """The answer as a chat client shows it: the checked text with its [n] markers, then the sources,
    one a line ("[1] headline — outlet · date · page, file ¶3" and the quote)."""
    if not answer.citations:
        return answer.text
    lines = [answer.text, "", SOURCES_HEADING]
    for c in answer.citations:
        where = f"{c.provenance}, " if c.provenance else ""
        lines.append(f"[{c.n}] {c.label or c.article} — {where}{c.source} ¶{c.paragraph}")
        lines.append(f"    “{c.quote}”")
    return "\n".join(lines)


def strip_sources(text: str) -> str:
    """A reply sent back as history without the sources list `reply_text` put at its end."""
    cut = text.rfind(f"\n\n{SOURCES_HEADING}\n")
    return text[:cut] if cut >= 0 else text


class ArchiveService:
    """The questions, searches and articles of one server; safe to share between requests."""

    def __init__(self, settings: Settings, pipeline_for: Callable[[Settings], Pipeline] = get_pipeline,
                 concurrency: int = ANSWER_CONCURRENCY, queue_size: int = QUEUE_SIZE):
        """Args: settings; pipeline_for: settings → pipeline (tests pass one with a scripted chat model);
        concurrency: questions answered at once; queue_size: questions that may wait beyond those."""
        self.settings = settings
        self.pipeline_for = pipeline_for
        self.models = model_choices(settings)
        self.articles = ArticleLibrary(settings.corpus_dir, settings.corpus_format, settings.field_map)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="rag-answer")
        self._limit = concurrency + queue_size
        self._taken = 0
        self._lock = threading.Lock()

    def check(self, question, history=None, model=None, date_from=None, date_to=None, outlet=None) -> Request:
        """A caller's question, checked by the app's one boundary (`rag.app.validation.check_request`).

        Raises:
            BadQuestion: naming the field (`question: …`, `history[1][0]: …`, `outlet: …`).
        """
        with _outlet_named():
            return check_request(self.settings, self.models, question, history, model, None, date_from, date_to,
                                 outlet)

    @staticmethod
    def filters(date_from=None, date_to=None, outlet=None) -> SearchFilter | None:
        """A caller's search filter, checked as a question's is (`rag.app.validation.check_filters`).

        Raises:
            BadQuestion: naming the field (`date_from: …`, `outlet: …`).
        """
        with _outlet_named():
            date_from, date_to, outlets = check_filters(date_from, date_to, outlet)
        return SearchFilter.parse(date_from, date_to, list(outlets))

    def pipeline(self, request: Request | None = None) -> Pipeline:
        """The pipeline for a request's model (the configured one without a request)."""
        settings = self.settings
        if request is not None and request.model and request.model != settings.llm_model:
            settings = dataclasses.replace(settings, llm_model=request.model)
        return self.pipeline_for(settings)

    def search(self, query, k: int, filters: SearchFilter | None = None) -> list[Passage]:
        """The k best passages for ``query`` within ``filters``.

        Raises:
            BadQuestion: the query (`query: …`) or k is not acceptable.
        """
        try:
            query = validate_question(query, self.settings)
        except BadQuestion as exc:
            raise BadQuestion(f"query: {exc.message}") from None
        return self.pipeline().load().searcher.search(query, k, filters)

    def timeline(self, topic, date_from=None, date_to=None, outlet=None, granularity: str = "auto",
                 max_entries: int | None = None):
        """The extractive timeline of ``topic`` (`rag.timeline`, no LLM) over the loaded index.

        Raises:
            BadQuestion: an empty topic, a bad or reversed date range, an unknown granularity.
        """
        from rag.answer.timeline import MAX_ENTRIES, build_timeline

        searcher = self.pipeline().load().searcher
        return build_timeline(searcher, topic, date_from or None, date_to or None, outlet or None, granularity,
                              settings=self.settings, max_entries=max_entries or MAX_ENTRIES)

    def article(self, value) -> Article:
        """The article an id names.

        Raises:
            BadQuestion: not an article id. CorpusError: no such article (the message names the id only).
        """
        source, number = parse_article_id(value)
        try:
            return self.articles.article(source, number)
        except CorpusError:
            raise CorpusError(f"no article {article_id(source, number)!r} in this archive; article ids come from "
                              f"citations and search results (article_id)") from None

    def answer(self, request: Request) -> Answer:
        """The checked answer, computed on the pool (blocks until it is done).

        Raises:
            ServerBusy: too many questions waiting. RagError: the pipeline could not answer.
        """
        def run() -> Answer:
            return self.pipeline(request).ask(request.question, list(request.history) or None, **request.filters())

        return self._submit(run).result()

    async def stream(self, request: Request) -> AsyncIterator[Event]:
        """The pipeline's events for one request, computed on the pool and handed to the event loop.

        Closing this generator (the client went away) stops the question at its next event, which
        closes the pipeline's stream and so frees the LLM.

        Raises:
            ServerBusy, RagError: as `answer`, at the first iteration.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()
        end = object()

        def put(item) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                stop.set()

        def run() -> None:
            try:
                events = self.pipeline(request).stream(request.question, list(request.history) or None,
                                                       **request.filters())
                try:
                    for event in events:
                        put(event)
                        if stop.is_set() or isinstance(event, Answered):
                            break
                finally:
                    events.close()
            except Exception as exc:  # noqa: BLE001 — handed to the request, which words it
                put(_Failure(exc))
            finally:
                put(end)

        self._submit(run)
        try:
            while (item := await queue.get()) is not end:
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            stop.set()

    def _submit(self, fn: Callable) -> Future:
        with self._lock:
            if self._taken >= self._limit:
                raise ServerBusy(f"{self._taken} questions are being answered or waiting; try again in a minute")
            self._taken += 1

        def run():
            try:
                return fn()
            finally:
                with self._lock:
                    self._taken -= 1
                release_free_memory()  # as the chat does after each answer (rag.memory)

        return self._pool.submit(run)

    def close(self) -> None:
        """Stop taking questions; those under way finish."""
        self._pool.shutdown(wait=False, cancel_futures=True)


@contextlib.contextmanager
def _outlet_named():
    """Refusals that name the outlet filter as these callers do: the chat calls it "paper"."""
    try:
        yield
    except BadQuestion as exc:
        message = exc.message
        raise BadQuestion("outlet" + message[5:] if message.startswith("paper") else message) from None


@dataclasses.dataclass(frozen=True)
class _Failure:
    error: Exception
