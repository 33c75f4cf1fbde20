"""The chat's archive controls, apart from Gradio: who may upload, uploads into the corpus and the
index, the outlets the filter offers, the filter and the archive (for the status line) in words.

An upload is checked and saved by `rag.ingest.intake` (the rules of `rag add`), then the index is
rebuilt — only the new texts are embedded, the rest come from the embedding cache — and every
pipeline the chat answers with is moved onto it (`Pipeline.reload`), so the next question can be
answered from the new articles. A question being answered meanwhile keeps the index it started
with. Nothing here imports gradio.

Who may upload: a chat that asks for a login, or one that listens on loopback only, where whoever
reaches it is a user of this machine. A chat open to the network without a login never offers it.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rag.app.access import LOOPBACK
from rag.app.validation import for_caller
from rag.config import Settings
from rag.ingest.article import display_date
from rag.ingest.intake import AddReport, add_paths
from rag.search.filters import SearchFilter
from rag.search.index import IndexStatus
from rag.search.retrieve import open_searcher

# One upload at a time: two rebuilds at once would embed the same new texts twice.
_UPLOAD_LOCK = threading.Lock()


def uploads_allowed(host: str, logins) -> bool:
    """Whether the chat offers the upload: with a login, or on loopback only."""
    return bool(logins) or host in LOOPBACK


def outlet_choices(index) -> list[str]:
    """The outlets of the index's articles, the most printed first, for the filter's menu."""
    counts = Counter(c.paper for c in index.chunks if c.paper)
    return [name for name, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def archive_line(status: IndexStatus) -> str:
    """The archive in words for the status line: "档案 Archive: 10,000 articles · 3 outlets ·
    2023-01-01 – 2023-07-31" (the outlets and the dates where the index knows them)."""
    parts = [f"{status.articles:,} articles"]
    if status.outlets:
        parts.append(f"{status.outlets:,} outlet{'s' if status.outlets > 1 else ''}")
    if status.first_date:
        first, last = display_date(status.first_date), display_date(status.last_date)
        parts.append(first if first == last else f"{first} – {last}")
    return "档案 Archive: " + " · ".join(parts)


def describe_filter(date_from: str = "", date_to: str = "", paper=()) -> str:
    """A checked filter in words ("2023-07-01 – 2023-07-31 · 人民网, 新华网"); "" for none.

    Args:
        date_from, date_to, paper: as `rag.app.validation.check_filters` returns them.
    """
    dates = SearchFilter.parse(date_from, date_to)
    parts = [dates.describe()] if dates else []
    if paper:
        parts.append(", ".join(paper))
    return " · ".join(parts)


@dataclass
class UploadResult:
    """What an upload did: the files (`AddReport`) and the index the chat answers from now."""

    report: AddReport
    status: IndexStatus | None = None  # None: nothing was added, the index is as it was
    outlets: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """For the page: what was added and embedded, what was already there, then a line per
        refused file with its reason, in the caller's terms (`for_caller`)."""
        report = self.report
        parts = []
        if report.added:
            parts.append(f"已添加 added {len(report.added)}: " + ", ".join(p.name for p in report.added))
        if self.status is not None:
            parts.append(f"{self.status.embedded} new texts embedded; the index holds {self.status.articles} articles")
        if report.already:
            parts.append(f"已有 already there: " + ", ".join(Path(given).name for given, _ in report.already))
        lines = [" · ".join(parts)] if parts else []
        lines += [f"✗ 未添加 refused {Path(given).name}: {for_caller(error)}" for given, error in report.refused]
        return "\n".join(lines) or "no files"


def add_uploads(paths, settings: Settings, pipelines, progress: bool = True) -> UploadResult:
    """Add uploaded files to the corpus, rebuild the index and move the pipelines onto it.

    Args:
        paths: the uploaded files, each under the name it had on its user's machine.
        settings: the chat's settings: the corpus folder, the size limit, how files are read.
        pipelines: the pipelines the chat answers with (they share one index: same settings but
            for model and passages).
        progress: progress bars while embedding (the page shows them).
    Returns:
        What was added, and the new index's status and outlets when something was.
    Raises:
        RagError: the index could not be rebuilt; the files stay added, and the next time the
            index is opened it is rebuilt.
    """
    pipelines = list(pipelines)
    with _UPLOAD_LOCK:
        report = add_paths(paths, settings.corpus_dir, settings)
        if not report.added:
            return UploadResult(report)
        # The embedder already loaded (a test's fake too); the index is stale now, so this rebuilds it.
        embedder = next((p.searcher.embedder for p in pipelines if p.searcher is not None), None)
        searcher = open_searcher(settings, embedder=embedder, progress=progress)
        for pipeline in pipelines:
            pipeline.reload(searcher)
        return UploadResult(report, searcher.index.status(), outlet_choices(searcher.index))
