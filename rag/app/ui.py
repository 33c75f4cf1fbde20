"""The chat window (`rag chat`): a Gradio app that formats what `rag.answer.pipeline` returns.

With `rag.app.controls` (filter, upload) and `rag.app.keeping` (ratings, export, the kept
conversation), the only modules that import gradio. Each browser session keeps its own
conversation in a `gr.State`; the pipelines (index, embedder, LLM)
are process-wide and shared by all sessions. The sources panel is filled from `Pipeline.stream`'s
`Retrieved` event, before the LLM's first token, and narrowed to the cited passages when the checked
`Answer` arrives; the streamed text is then replaced by `Answer.text`, which may differ (a refusal, [?] marks).

Concurrency: llama.cpp runs one generation at a time (a lock in `rag.models.llamacpp`), so answering
several questions at once cannot make the LLM faster. Up to `ANSWER_CONCURRENCY` questions are
still taken together: each user's passages appear at once instead of after everyone queued ahead
has been answered, while the lock serialises the generations. Measured with five users at once
(README, "Chat"): same total time with a limit of 1, 4 or 8; evidence after 23 s (median) with 1,
under a second with 8.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import sys
import time
from typing import Callable, Iterator

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no telemetry calls

import gradio as gr  # noqa: E402

from rag.ingest.library import ArticleLibrary  # noqa: E402
from rag.app.chatview import (EXAMPLES, HEAD, STYLE, Turn, answer_html, question_html, sources_html,  # noqa: E402
                              status_html)
from rag.config import Settings  # noqa: E402
from rag.errors import BadQuestion, RagError  # noqa: E402
from rag.memory import cap_arenas, release_free_memory  # noqa: E402
from rag.app.archive import archive_line, describe_filter, uploads_allowed  # noqa: E402
from rag.app.controls import ArchiveControls  # noqa: E402
from rag.app.keeping import ConversationControls  # noqa: E402
from rag.app.timeline import TimelineTab  # noqa: E402
from rag.answer.pipeline import Answered, Delta, Pipeline, Retrieved, get_pipeline  # noqa: E402
from rag.app.service import model_choices  # noqa: E402  (the settings menu offers what the API accepts)
from rag.app.validation import (MAX_PASSAGES, Request, check_model, check_passages, check_request,  # noqa: E402
                                for_caller, missing_arguments)

log = logging.getLogger(__name__)

ANSWER_CONCURRENCY = 8
STREAM_INTERVAL_S = 0.05  # the least time between two updates of an answer being written
QUEUE_SIZE = 64
# Without the upload (`ChatApp.uploads`; with it: Settings.max_upload_mb) the chat takes no files, so
# Gradio's upload route (open by default, without a size limit) takes none either: 413 for any.
MAX_UPLOAD_BYTES = 0
# System fonts only: the default themes fetch Google Fonts, which an offline machine cannot reach.
THEME = gr.themes.Soft(
    font=["system-ui", "-apple-system", "Segoe UI", "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei",
          "sans-serif"],
    font_mono=["ui-monospace", "Noto Sans Mono CJK SC", "Menlo", "monospace"],
)


def refusal(endpoint: str, exc: BadQuestion) -> gr.Error:
    """A caller's bad value as the error they receive; the terminal gets one line, no traceback."""
    log.warning("%s refused: %s", endpoint, exc)
    return gr.Error(str(exc), print_exception=False)


def fault_message(exc: Exception) -> str:
    """A real fault as the page and a caller see it (the terminal has logged its traceback)."""
    # Its text may hold paths and internals of the server: the terminal has it, the caller the kind.
    return f"something went wrong on the server ({type(exc).__name__}); the terminal running `rag chat` shows the details"


class ChatBlocks(gr.Blocks):
    """The app's Blocks: a call that sends fewer values than its endpoint takes is refused like any
    other bad value (Gradio's own check raises a ValueError: a traceback, and `{"error": null}`).
    The filters (`OPTIONAL`) may be left out at the end, as callers from before them do."""

    OPTIONAL = ("date_from", "date_to", "paper")

    def validate_inputs(self, block_fn, inputs) -> None:
        blocks, fn = block_fn.inputs, block_fn.fn
        params = [p for p in inspect.signature(fn).parameters.values()] if fn else []
        if params and len(inputs) < len(blocks):
            # gradio_client sends None where the state goes, a plain HTTP call only the values (one
            # that also sends null for the model, the state's place, reads as gradio_client's).
            slotted = all(inputs[i] is None for i, b in enumerate(blocks[:len(inputs)]) if b.skip_api)
            got = [v for v, b in zip(inputs, blocks) if not b.skip_api] if slotted else list(inputs)
            required = [p.name for p, b in zip(params, blocks) if not b.skip_api and p.name not in self.OPTIONAL]
            if len(got) < len(required):
                raise refusal(f"/{block_fn.api_name}", missing_arguments(f"/{block_fn.api_name}", required, len(got)))
            values = iter(got)  # in place, with the state's slots and the defaults of the values left out
            inputs[:] = [None if b.skip_api else next(values, p.default) for p, b in zip(params, blocks)]
        super().validate_inputs(block_fn, inputs)


class ChatApp:
    """What the chat does, apart from its layout; one per server, shared by every session."""

    def __init__(self, settings: Settings, pipeline_for: Callable[[Settings], Pipeline] = get_pipeline,
                 concurrency: int = ANSWER_CONCURRENCY, uploads: bool = False, keep_dir=None):
        self.settings = settings
        self.pipeline_for = pipeline_for
        self.concurrency = concurrency
        self.uploads = uploads  # offer the upload (`rag.app.archive.uploads_allowed`)
        self.articles = ArticleLibrary(settings.corpus_dir, settings.corpus_format, settings.field_map)
        self.models = model_choices(settings)
        self.asked = {settings}  # the settings questions were answered with: an upload reloads their pipelines
        self.archive = ArchiveControls(self)
        self.keeping = ConversationControls(self, keep_dir)  # ratings and kept conversations (None: the cache's)
        self.timeline = TimelineTab(self)  # the Timeline tab (rag.app.timeline)

    def settings_for(self, model: str | None = None, passages: int | float | None = None) -> Settings:
        """The settings of one question: the chosen model and number of passages.

        Raises:
            BadQuestion: a model that is not offered, or passages outside 1..MAX_PASSAGES.
        """
        model, passages = check_model(model, self.models), check_passages(passages)
        changes: dict = {}
        if model and model != self.settings.llm_model:
            changes["llm_model"] = model
        if passages and passages != self.settings.llm_passages:
            changes.update(llm_passages=passages, top_k=max(self.settings.top_k, passages))
        return dataclasses.replace(self.settings, **changes) if changes else self.settings

    # ------------------------------------------------------------------ chat events

    def respond(self, question, turns, model, passages, date_from="", date_to="", paper=None) -> Iterator[tuple]:
        """Answer one chat message, streaming: yields (chatbot, sources, textbox, turns) updates.

        The page's event: a refused question (or filter) is a warning (one line in the terminal)
        and changes nothing, so that the user can edit it.
        """
        try:
            request = check_request(self.settings, self.models, question, None, model, passages, date_from, date_to, paper)
        except BadQuestion as exc:
            log.warning("the page's question refused: %s", exc)
            gr.Warning(str(exc))
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        yield from self._answer(request, turns)

    def chat(self, question, turns, model, passages, date_from="", date_to="", paper=None) -> Iterator[tuple]:
        """`/chat`, the page's event as an undocumented API (the load bench's simulated users):
        the same updates; its values are checked like `/ask`'s (the filters: dates as text, outlets
        as a list; they may be left out), and a refusal is an error the caller receives."""
        try:
            request = check_request(self.settings, self.models, question, None, model, passages, date_from, date_to, paper)
        except BadQuestion as exc:
            raise refusal("/chat", exc) from None
        yield from self._answer(request, turns)

    def _answer(self, request: Request, turns) -> Iterator[tuple]:
        """The updates of one checked question, after the conversation so far (``turns``)."""
        turns = list(turns or [])
        settings, question = self.settings_for(request.model, request.passages), request.question
        self.asked.add(settings)
        where = describe_filter(request.date_from, request.date_to, request.paper)
        history = [(t.question, t.answer.text) for t in turns if t.answer is not None]
        turn = Turn(question, model=settings.llm_model, follow_up=bool(history))
        turns.append(turn)
        yield self._messages(turns), self._sources(turns, where), gr.update(value="", interactive=False), turns
        for sources_changed in self._follow(turn, settings, history, request):
            yield (self._messages(turns), self._sources(turns, where) if sources_changed else gr.skip(),
                   gr.skip(), gr.skip())
        # The full final state once more: the last thing an API client (`/chat`) receives.
        yield self._messages(turns), self._sources(turns, where), gr.update(interactive=True), turns

    def _follow(self, turn: Turn, settings: Settings, history, request: Request | None = None) -> Iterator[bool]:
        """Run the pipeline for one turn, updating it with each event; yields whether the sources
        panel changed. Gradio closes this generator when the user leaves or clears mid-answer,
        which closes the pipeline's stream and so releases the LLM."""
        started = time.perf_counter()
        stream = None
        try:
            stream = self.pipeline_for(settings).stream(turn.question, history=history or None,
                                                        **(request.filters() if request is not None else {}))
            shown = 0.0
            for event in stream:
                if isinstance(event, Delta):
                    turn.streamed += event.text
                    # The LLM is held while Gradio renders an update: the page is told of the
                    # text at most every STREAM_INTERVAL_S, not at every token.
                    if time.perf_counter() - shown >= STREAM_INTERVAL_S:
                        shown = time.perf_counter()
                        yield False
                    continue
                if isinstance(event, Retrieved):
                    turn.passages, turn.rewritten = event.passages, event.rewritten_query
                    turn.retrieve_s = time.perf_counter() - started
                elif isinstance(event, Answered):
                    turn.answer, turn.rewritten = event.answer, event.answer.rewritten_query
                yield True
        except RagError as exc:
            log.warning("could not answer %r: %s", turn.question, exc)
            turn.error = for_caller(exc)
            gr.Warning(turn.error)
            yield True
        except Exception as exc:  # noqa: BLE001 — the page gets one line, the log the traceback
            log.exception("answering %r failed", turn.question)
            turn.error = fault_message(exc)
            gr.Warning(turn.error)
            yield True
        finally:
            if stream is not None:
                stream.close()
            release_free_memory()

    @staticmethod
    def pick_example(selected: gr.SelectData) -> str:
        """The example question the user clicked, into the textbox."""
        return selected.value["text"]

    def clear(self) -> tuple:
        """A new conversation: empty chat, empty sources panel, textbox ready."""
        return [], self._sources([]), gr.update(value="", interactive=True), []

    def status(self, progress=gr.Progress(track_tqdm=True)) -> str:
        """The index line at the top of the page; builds the index (with progress) if it must."""
        progress(0, desc="Loading the index and models…")
        try:
            status = self.pipeline_for(self.settings).status()
        except RagError as exc:
            log.warning("the index or models cannot be opened: %s", exc)
            gr.Warning(for_caller(exc))
            return status_html(f"⚠ {for_caller(exc)}")
        return status_html(f"{archive_line(status.index)}\n索引 Index: {status.line()}")

    # ------------------------------------------------------------------ API

    def ask(self, question: str, history: list[list[str]] | None = None, model: str = "",
            passages: int = 0) -> dict:
        """Answer a question from the newspaper pages, with checked citations (the /ask endpoint).

        Args:
            question: in Chinese or English.
            history: earlier [question, answer] pairs of text, for a follow-up question (at most 50;
                questions as long as a question may be, answers up to 10,000 characters).
            model: a model the settings menu offers ("qwen-1.5b", "fast"); empty for the default.
            passages: how many passages the answer may draw on (1-10); 0 for the default.
        Returns:
            {"text", "abstained", "citations": [{"n", "article", "source", "paragraph", "quote",
            "score", "supported", "chunk_id"}], "rewritten_query", "unsupported_sentences",
            "unverified_numbers", "language", "timings", "model"}.
        Raises:
            gr.Error: a refusal naming the wrong field (`question: …`, `history[0][1]: …`), or why
            the pipeline could not answer, in the caller's terms.
        """
        try:
            request = check_request(self.settings, self.models, question, history, model, passages)
        except BadQuestion as exc:
            raise refusal("/ask", exc) from None
        settings = self.settings_for(request.model, request.passages)
        try:
            answer = self.pipeline_for(settings).ask(request.question, list(request.history) or None)
        except RagError as exc:
            log.warning("/ask could not answer %r: %s", request.question, exc)
            raise gr.Error(for_caller(exc), print_exception=False) from None
        except Exception as exc:  # noqa: BLE001 — the caller gets one line, the log the traceback
            log.exception("/ask: answering %r failed", request.question)
            raise gr.Error(fault_message(exc), print_exception=False) from None
        return {"text": answer.text, "abstained": answer.abstained,
                "citations": [dataclasses.asdict(c) for c in answer.citations],
                "rewritten_query": answer.rewritten_query, "unsupported_sentences": answer.unsupported_sentences,
                "unverified_numbers": answer.unverified_numbers, "language": answer.language,
                "timings": answer.timings, "model": settings.llm_model}

    # ------------------------------------------------------------------ rendering

    def _messages(self, turns: list[Turn]) -> list[dict]:
        messages = []
        for number, turn in enumerate(turns, start=1):
            messages.append({"role": "user", "content": question_html(turn)})
            messages.append({"role": "assistant", "content": answer_html(turn, number)})
        return messages

    def _sources(self, turns: list[Turn], where: str = "") -> str:
        """The sources panel, headed by the latest question's filter when it had one."""
        head = status_html(f"只看 only {where}") if where and turns else ""
        return head + sources_html(turns, self.articles.locate)

    # ------------------------------------------------------------------ layout

    def build(self) -> gr.Blocks:
        """The page: chat and settings on the left, sources on the right (below on a phone)."""
        with ChatBlocks(title="报纸问答 · rag") as demo:
            turns = gr.State([])
            gr.HTML('<div class="rag-title"><h2 style="margin:0">报纸问答 · Ask the newspaper pages</h2>'
                    '<div style="opacity:.75;font-size:.9em">每个回答都注明出处；点击 [1] 查看原文。 '
                    'Every answer cites its pages — click a [1] to read the article.</div></div>', js_on_load=None)
            status = gr.HTML(status_html("正在加载… Loading the index and models…"), js_on_load=None)
            with gr.Row(equal_height=False):
                with gr.Column(scale=3, min_width=340):
                    chatbot = gr.Chatbot(show_label=False, elem_id="rag-chat", height="62vh", min_height=320,
                                         latex_delimiters=[], buttons=[], feedback_options=("Like", "Dislike"),
                                         placeholder="**用中文或英文提问 · Ask in Chinese or English**",
                                         examples=[{"text": q} for q in EXAMPLES])
                    filters = self.archive.filter_row()
                    question = gr.Textbox(show_label=False, placeholder="输入问题，按回车 · Type a question, press Enter",
                                          max_lines=4, submit_btn="提问 Ask", elem_id="rag-question", autofocus=True)
                    clear = self.keeping.buttons(chatbot, turns)  # rating comments, clear, export
                    with gr.Accordion("设置 · Settings", open=False):
                        model = gr.Dropdown(self.models, value=self.settings.llm_model, label="模型 · Model",
                                            info="qwen-1.5b: better answers · fast: the 0.5B, quicker")
                        passages = gr.Slider(1, MAX_PASSAGES, value=self.settings.llm_passages, step=1,
                                             label="段落数 · Passages the answer reads")
                    self.archive.upload_row(status)
                with gr.Column(scale=2, min_width=320):
                    sources = gr.HTML(self._sources([]), elem_id="rag-sources", js_on_load=None)
            self.timeline.tab()
            inputs, outputs = [question, turns, model, passages, *filters], [chatbot, sources, question, turns]
            # Raw values, checked by rag.app.validation as `/ask`'s are (the components' own
            # checks would refuse without naming the field, and with a traceback).
            answer_args = dict(concurrency_id="answer", concurrency_limit=self.concurrency, show_progress="hidden",
                               preprocess=False)
            asked = question.submit(self.respond, inputs, outputs, api_visibility="private", **answer_args)
            picked = chatbot.example_select(self.pick_example, None, question, api_visibility="private").then(
                self.respond, inputs, outputs, api_visibility="private", **answer_args)
            # `/chat` is the same answer for programs, on a trigger of its own: a refusal must reach
            # the caller as an error, which on the page would mark the chat "Error" (there: a warning).
            gr.Button(visible=False).click(self.chat, inputs, outputs, api_name="chat", api_visibility="undocumented",
                                           **answer_args)
            self.keeping.wire(demo, [asked, picked], (clear.click, chatbot.clear), outputs)
            demo.load(self.status, None, status, api_visibility="private", show_progress="full").then(
                self.archive.outlet_menu, None, filters[2], api_visibility="private", show_progress="hidden")
            gr.api(self.ask, api_name="ask", concurrency_id="answer", concurrency_limit=self.concurrency)
        demo.queue(max_size=QUEUE_SIZE)
        demo.upload_bytes = self.settings.max_upload_mb << 20 if self.uploads else MAX_UPLOAD_BYTES
        return demo


def build_app(settings: Settings | None = None, pipeline_for: Callable[[Settings], Pipeline] = get_pipeline,
              concurrency: int = ANSWER_CONCURRENCY, uploads: bool = False, keep_dir=None) -> gr.Blocks:
    """The chat app, not yet serving.

    Args:
        settings: configuration; `Settings.from_env()` if None.
        pipeline_for: settings → pipeline (tests pass one with a scripted chat model).
        concurrency: questions answered at once (the LLM itself still generates one at a time).
        uploads: offer the upload into the corpus (`rag.app.archive.uploads_allowed`).
        keep_dir: the folder of the ratings and the logins' conversations (None: the cache's).
    Returns:
        The Gradio Blocks; serve it with `launch`.
    """
    return ChatApp(settings or Settings.from_env(), pipeline_for, concurrency, uploads, keep_dir).build()


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, auth: list[tuple[str, str]] | None = None,
           ssl_keyfile: str | None = None, ssl_certfile: str | None = None, **options) -> str:
    """Serve the app with the page's theme, style and script; returns the local URL.

    Args:
        auth: (user, password) logins; None: no login asked.
        ssl_keyfile, ssl_certfile: serve HTTPS with this key and certificate (PEM files, checked
            by `rag.app.access.tls_files`).
    Raises:
        RagError: the port is taken.
    """
    tls = {}
    if ssl_keyfile or ssl_certfile:
        # Gradio checks that it started by calling itself on the local address, which a
        # certificate for the public name does not cover; callers' connections are verified as usual.
        tls = dict(ssl_keyfile=ssl_keyfile, ssl_certfile=ssl_certfile, ssl_verify=False)
    try:
        _, url, _ = demo.launch(server_name=host, server_port=port, auth=auth, theme=THEME, css=STYLE,
                                head=HEAD, ssr_mode=False, footer_links=["api", "settings"], quiet=True,
                                max_file_size=getattr(demo, "upload_bytes", MAX_UPLOAD_BYTES), **tls, **options)
    except OSError as exc:
        raise RagError(f"cannot serve on {host}:{port} ({exc}); pass another --port") from exc
    return url


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860, auth: list[tuple[str, str]] | None = None,
          out=sys.stderr, **tls) -> None:
    """`rag chat`: build the index if needed (progress bar), load the models, serve until Ctrl+C.

    Args:
        tls: ssl_keyfile and ssl_certfile, to serve HTTPS (see `launch`).
    Raises:
        RagError: models or index unavailable, port taken.
    """
    started = time.perf_counter()
    cap_arenas()
    print(f"Opening the index (built now, with a progress bar, if missing or stale) and loading the "
          f"LLM {settings.llm_model!r}…", file=out, flush=True)
    get_pipeline(settings).warm()
    demo = build_app(settings, uploads=uploads_allowed(host, auth))
    url = launch(demo, host, port, auth, prevent_thread_lock=True, **tls)
    print(f"Ready in {time.perf_counter() - started:.0f} s. Chat open at {url}  (Ctrl+C to stop)", flush=True)
    demo.block_thread()
