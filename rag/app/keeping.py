"""What the chat keeps, in Gradio: ratings of answers, the conversation as a Markdown file, and the
conversation across page reloads.

With `rag.app.ui` and `rag.app.controls`, a module that imports gradio; the stores and formats it
uses are Gradio-free (`rag.app.feedback`, `rag.app.conversation`, `rag.app.export`).

- **Ratings** — the chat's own 👍/👎 under each answer (`gr.Chatbot`'s like event) records the
  rating at once (`FeedbackStore.rate`: the answer, its citations, the model, the login), then
  opens a comment box; a comment sent is added to that rating's row. A second click on the same
  thumb takes the rating back (kept as 0).
- **Export** — after every answer (and on a restored conversation) the conversation is written as
  Markdown (`rag.app.export`) into a temporary folder of this session (removed when the chat
  closes or its process exits), and the download button offers it; with nothing answered it is
  disabled.
- **Kept conversation** — after every answer the answered turns are kept: in the browser
  (`gr.BrowserState`, localStorage) without a login, on the server under the user name with one;
  when the page opens they come back, sources panel included. "Clear conversation" empties both.
  A kept conversation that does not check out (`turns_from_json`) is dropped with a line in the
  log: the page starts afresh.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import tempfile
import weakref
from datetime import datetime, timezone
from pathlib import Path

import gradio as gr

from rag.app.conversation import (CONVERSATIONS_FILE, FORMAT, BadConversation, ConversationStore, turns_from_json,
                                  turns_to_json)
from rag.app.export import conversation_markdown
from rag.app.feedback import FEEDBACK_FILE, MAX_COMMENT_CHARS, FeedbackStore, chat_folder
from rag.app.validation import for_caller
from rag.errors import RagError

log = logging.getLogger(__name__)

STORAGE_KEY = "rag-conversation"  # the page's localStorage entry
EMPTY = {"format": FORMAT, "turns": []}  # what a cleared conversation keeps (a value the page writes)
KEEP_CONCURRENCY = 4  # restoring renders a sources panel: a little CPU each


def login(request) -> str | None:
    """The user name of a request's login (`rag chat --auth`), None without one."""
    return getattr(request, "username", None) or None


def rating_record(turn) -> dict:
    """What a rating keeps of an answered turn, besides the rating (`FeedbackStore.rate`'s fields);
    the searched query only when it is not the question (a follow-up, rewritten)."""
    answer = turn.answer
    rewritten = turn.rewritten or answer.rewritten_query
    return {"question": turn.question, "answer": answer.text, "rewritten": "" if rewritten == turn.question else rewritten,
            "citations": [dataclasses.asdict(c) for c in answer.citations], "model": turn.model}


class ConversationControls:
    """Ratings, export and the kept conversation of one `ChatApp`, shared by all its sessions."""

    def __init__(self, app, folder: Path | None = None):
        """Args:
            app: the ChatApp (its settings, its rendering of turns).
            folder: where the ratings and the logins' conversations are kept (default: the cache's
                `rag.app.feedback.chat_folder`).
        """
        self.app = app
        folder = Path(folder) if folder is not None else chat_folder(app.settings)
        self.feedback = FeedbackStore(folder / FEEDBACK_FILE)
        self.conversations = ConversationStore(folder / CONVERSATIONS_FILE)
        self._exports: Path | None = None  # made when the first conversation is written
        self.kept = self.rated = self.comment_row = self.comment = self.download = None

    # ------------------------------------------------------------------ layout

    def buttons(self, chatbot, turns):
        """Build (under the question) the comment box of a rating, hidden until an answer is rated,
        and a row with "Clear conversation" and the export button; wire the chat's thumbs.

        Returns:
            The clear button (`wire` gives it its event).
        """
        self.kept = gr.BrowserState(EMPTY, storage_key=STORAGE_KEY)
        self.rated = gr.State("")  # the key of the answer the comment goes with
        with gr.Row(visible=False, elem_id="rag-feedback") as self.comment_row:
            self.comment = gr.Textbox(label="评论（可选）· Comment (optional)", max_lines=4, max_length=MAX_COMMENT_CHARS,
                                      placeholder="哪里好，哪里不对？ What was right or wrong?",
                                      submit_btn="发送 Send", elem_id="rag-comment")
        with gr.Row():
            clear = gr.Button("清空对话 · Clear conversation", size="sm", variant="secondary")
            self.download = gr.DownloadButton("导出对话 · Export this conversation", value=None, interactive=False,
                                              size="sm", variant="secondary", elem_id="rag-export")
        private = dict(api_visibility="private", show_progress="hidden", concurrency_limit=None)
        chatbot.like(self.rate, [turns], [self.comment_row, self.comment, self.rated], **private)
        self.comment.submit(self.add_comment, [self.rated, self.comment], [self.comment_row, self.comment, self.rated],
                            **private)
        return clear

    def wire(self, demo, answered, clear_triggers, outputs) -> None:
        """Keep the conversation after each ``answered`` event; clear it (`ChatApp.clear`, which
        cancels those events) and forget it on each of ``clear_triggers``; bring it back when the
        page opens.

        Args:
            outputs: the answer's outputs: chatbot, sources, textbox, turns.
        """
        chatbot, sources, _, turns = outputs
        kept = dict(api_visibility="private", show_progress="hidden", concurrency_id="keep",
                    concurrency_limit=KEEP_CONCURRENCY)
        for event in answered:
            event.then(self.keep, [turns], [self.kept, self.download], **kept)
        for trigger in clear_triggers:
            trigger(self.app.clear, None, outputs, cancels=list(answered), api_visibility="private").then(
                self.forget, None, [self.kept, self.download, self.comment_row, self.rated], **kept)
        demo.load(self.restore, [self.kept], [chatbot, sources, turns, self.download], **kept)

    # ------------------------------------------------------------------ ratings

    def rate(self, turns, liked: gr.LikeData, request: gr.Request) -> tuple:
        """A thumb clicked under an answer: the rating recorded, the comment box opened (closed when
        the rating is taken back): (comment row, comment box, rated answer's key) updates."""
        skip = (gr.skip(), gr.skip(), gr.skip())
        index = liked.index[0] if isinstance(liked.index, (list, tuple)) else liked.index
        turns = turns or []
        turn = turns[index // 2] if isinstance(index, int) and index % 2 == 1 and 0 <= index // 2 < len(turns) else None
        if turn is None or turn.answer is None:
            gr.Warning("只能评价已完成的回答 · Only a finished answer can be rated")
            return skip
        rating = 1 if liked.liked is True else -1 if liked.liked is False else 0
        try:
            self.feedback.rate(turn.key, rating, **rating_record(turn), user=login(request))
        except RagError as exc:
            log.warning("a rating could not be kept: %s", exc)
            gr.Warning(for_caller(exc))
            return skip
        if rating == 0:
            return gr.update(visible=False), gr.skip(), ""
        thumb = "👍" if rating > 0 else "👎"
        label = f"{thumb} 已记录，谢谢 · Thanks, noted — 评论（可选）· Comment on answer {index // 2 + 1} (optional)"
        return gr.update(visible=True), gr.update(value="", label=label), turn.key

    def add_comment(self, key, text) -> tuple:
        """The comment box sent: the comment added to the rating; the box closed."""
        closed = (gr.update(visible=False), gr.update(value=""), "")
        if not key or not str(text or "").strip():
            return closed
        try:
            found = self.feedback.comment(str(key), text)
        except RagError as exc:
            log.warning("a comment could not be kept: %s", exc)
            gr.Warning(for_caller(exc))
            return gr.skip(), gr.skip(), gr.skip()  # the text stays in the box, to send again
        if found:
            gr.Info("评论已记录，谢谢 · Comment noted, thank you")
        return closed

    # ------------------------------------------------------------------ kept conversation and export

    def keep(self, turns, request: gr.Request) -> tuple:
        """After an answer: the conversation kept (browser or login) and offered as Markdown:
        (browser's copy, download button) updates."""
        turns = list(turns or [])
        data = turns_to_json(turns)
        user, browser = login(request), gr.skip()
        if user:
            try:
                self.conversations.save(user, data)
            except RagError as exc:
                log.warning("the conversation of %r could not be kept: %s", user, exc)
                gr.Warning(for_caller(exc))
        else:
            browser = data
        return browser, self.export(turns, request)

    def forget(self, request: gr.Request) -> tuple:
        """"Clear conversation": nothing kept, nothing to export, no comment box open."""
        user = login(request)
        if user:
            try:
                self.conversations.forget(user)
            except RagError as exc:
                log.warning("the conversation of %r could not be forgotten: %s", user, exc)
                gr.Warning(for_caller(exc))
        return dict(EMPTY), gr.update(value=None, interactive=False), gr.update(visible=False), ""

    def restore(self, kept, request: gr.Request) -> tuple:
        """The page opened: the kept conversation back in the chat and the sources panel:
        (chatbot, sources, turns, download button) updates; nothing changes when none was kept."""
        user = login(request)
        try:
            turns = turns_from_json(self.conversations.load(user) if user else kept,
                                    self.app.settings.max_question_chars)
        except BadConversation as exc:
            log.warning("a kept conversation was refused, the page starts afresh: %s", exc)
            turns = []
        except RagError as exc:
            log.warning("the conversation of %r could not be read: %s", user, exc)
            gr.Warning(for_caller(exc))
            turns = []
        if not turns:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        try:
            return self.app._messages(turns), self.app._sources(turns), turns, self.export(turns, request)
        except Exception:  # noqa: BLE001 — checked values the rendering still chokes on: start afresh
            log.exception("a kept conversation could not be shown; the page starts afresh")
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()

    def export(self, turns, request=None):
        """The download button's update: the conversation written as Markdown, or disabled."""
        if not any(t.answer is not None or t.error for t in turns):
            return gr.update(value=None, interactive=False)
        stamp = datetime.now(timezone.utc)
        text = conversation_markdown(turns, exported_at=f"导出 Exported {stamp:%Y-%m-%d %H:%M} UTC")
        # The session's own folder; its name hashed, since a session hash is whatever the page sent.
        session = hashlib.sha256(str(getattr(request, "session_hash", None) or "local").encode()).hexdigest()[:16]
        try:
            if self._exports is None:  # Gradio serves files from the temporary folder
                self._exports = Path(tempfile.mkdtemp(prefix="rag-export-"))
                # A conversation is the user's: it goes with the chat, not left in /tmp for others.
                weakref.finalize(self, shutil.rmtree, self._exports, ignore_errors=True)
            folder = self._exports / session
            path = folder / f"conversation-{stamp:%Y%m%d-%H%M%S}.md"
            folder.mkdir(exist_ok=True)
            for old in folder.glob("*.md"):
                old.unlink(missing_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:  # a full disk: the chat goes on, without the export
            log.warning("the conversation could not be written for export: %s", exc)
            return gr.update(value=None, interactive=False)
        return gr.update(value=str(path), interactive=True)
