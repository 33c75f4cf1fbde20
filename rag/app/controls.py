"""The chat's archive controls in Gradio: the filter over the question, and the upload.

With `rag.app.ui`, the only module that imports gradio; what the controls do apart from Gradio is
in `rag.app.archive`.

- **The filter** — dates from/to as typed ("2023-07-01", "2023-07", "2023"), outlets from a menu
  of the index's (filled when the page opens and after an upload) — goes with every question to
  `Pipeline.stream`, checked as `/chat`'s values are (`rag.app.validation.check_filters`). The
  line under it says the active filter, or why a date is not one; the sources panel of a filtered
  answer says it too. "Clear" empties it.
- **The upload** is on the page only when the app offers it (`ChatApp.uploads`: a login, or
  loopback). Files are checked and saved by `rag.ingest.intake`, the index is rebuilt with its
  progress shown, and the chat's pipelines answer from it from the next question on; each refused
  file is a warning and a line with its reason, and nothing else changes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr

from rag.app.archive import add_uploads, describe_filter, outlet_choices
from rag.app.chatview import status_html
from rag.app.validation import check_filters, for_caller
from rag.errors import BadQuestion, RagError
from rag.ingest.formats import SUFFIX_FORMATS

log = logging.getLogger(__name__)


class ArchiveControls:
    """The filter and upload of one `ChatApp`, shared by all its sessions."""

    def __init__(self, app):
        self.app = app
        self.menu = None  # the outlets menu, once built

    # ------------------------------------------------------------------ layout

    def filter_row(self) -> list:
        """Build the filter (inside the page's Blocks); returns its inputs for the question's events:
        date from, date to, outlets."""
        with gr.Accordion("筛选 · Filter by date and outlet", open=False, elem_id="rag-filters"):
            with gr.Row():
                date_from = gr.Textbox(label="从 From", placeholder="2023-07-01", max_lines=1, min_width=120,
                                       elem_id="rag-date-from")
                date_to = gr.Textbox(label="到 To", placeholder="2023-07-31", max_lines=1, min_width=120,
                                     elem_id="rag-date-to")
                self.menu = gr.Dropdown([], value=[], multiselect=True, label="来源 Outlets", scale=2,
                                        min_width=200, elem_id="rag-outlets")
            clear = gr.Button("清除筛选 · Clear the filter", size="sm", variant="secondary")
        line = gr.HTML("", elem_id="rag-filter-line", js_on_load=None)
        inputs = [date_from, date_to, self.menu]
        gr.on([date_from.blur, date_from.submit, date_to.blur, date_to.submit, self.menu.change], self.filter_line,
              inputs, line, api_visibility="private", show_progress="hidden", preprocess=False,
              # Typing the dates fires blur and submit in quick succession: the last one must run
              # (with both dates), not be dropped while the first is still on its way.
              trigger_mode="always_last", concurrency_limit=None)
        clear.click(self.clear_filter, None, [*inputs, line], api_visibility="private", show_progress="hidden")
        return inputs

    def upload_row(self, status) -> None:
        """Build the upload when the app offers it; an upload refreshes ``status`` and the outlets."""
        if not self.app.uploads:
            return
        with gr.Accordion("添加资料 · Add files to the archive", open=False, elem_id="rag-archive"):
            button = gr.UploadButton(f"上传 · Upload files ({' '.join(SUFFIX_FORMATS)}; at most "
                                     f"{self.app.settings.max_upload_mb} MB each)", file_count="multiple",
                                     file_types=list(SUFFIX_FORMATS), size="sm", elem_id="rag-upload")
            note = gr.HTML("", elem_id="rag-upload-note", js_on_load=None)
        button.upload(self.upload, button, [status, self.menu, note], api_visibility="private",
                      concurrency_id="upload", concurrency_limit=1, show_progress="full")

    # ------------------------------------------------------------------ events

    @staticmethod
    def filter_line(date_from, date_to, paper) -> str:
        """The active filter in a line ("" for none); a value that is not one is a warning."""
        try:
            where = describe_filter(*check_filters(date_from, date_to, paper))
        except BadQuestion as exc:
            gr.Warning(str(exc))
            return status_html(f"⚠ {exc}")
        return status_html(f"只看 only {where} · 清除筛选 Clear the filter to search everything") if where else ""

    @staticmethod
    def clear_filter() -> tuple:
        """No dates, no outlets, no filter line."""
        return "", "", [], ""

    def outlet_menu(self):
        """The outlets menu filled with the index's outlets (when the page opens, the index is)."""
        pipeline = self.app.pipeline_for(self.app.settings)
        if pipeline.searcher is None:  # the index could not be opened: the status line says why
            return gr.skip()
        return gr.update(choices=outlet_choices(pipeline.searcher.index))

    def upload(self, files, progress=gr.Progress(track_tqdm=True)) -> tuple:
        """Add the uploaded files to the archive: (status line, outlets menu, note) updates.

        Raises:
            gr.Error: the app offers no upload (a caller who found the route anyway).
        """
        if not self.app.uploads:
            raise gr.Error("this chat takes no files: uploads are offered only with a login or on this "
                           "machine", print_exception=False)
        progress(0, desc="检查文件、更新索引… Checking the files, updating the index…")
        paths = [f if isinstance(f, str) else getattr(f, "name", f) for f in (files or [])]
        pipelines = {id(p): p for p in map(self.app.pipeline_for, list(self.app.asked))}
        try:
            result = add_uploads(paths, self.app.settings, pipelines.values())
        except RagError as exc:
            log.warning("the uploaded files could not be indexed: %s", exc)
            gr.Warning(for_caller(exc))
            return gr.skip(), gr.skip(), status_html(f"⚠ {for_caller(exc)}")
        for given, error in result.report.refused:
            log.warning("upload of %s refused: %s", Path(given).name, error)
            gr.Warning(f"{Path(given).name}: {for_caller(error)}")
        note = status_html(result.summary())
        if result.status is None:
            return gr.skip(), gr.skip(), note
        return self.app.status(), gr.update(choices=result.outlets), note
