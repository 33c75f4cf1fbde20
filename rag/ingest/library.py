"""Full articles for cited passages: the article a passage comes from, and where it sits in it.

The chat shows a cited passage inside its whole article. Pages are looked up by name among the
corpus folder's own page files only — a name the corpus does not list is refused, never opened,
and so is a page that became a link (or a FIFO…) since it was listed (`rag.ingest.discovery`) —
and read with the reader, format and field map the index was built with (`rag.ingest.formats`),
so a passage's article number names the same article and its character span (`Passage.start/end`)
points into `Article.text`. Parsed pages are cached until their file changes.
"""

from __future__ import annotations

import threading
from pathlib import Path

from rag.ingest.article import Article, Page
from rag.ingest.corpus import read_page
from rag.ingest.formats import check_format, read_file
from rag.ingest.discovery import Refusal, check_page, discover_pages
from rag.errors import CorpusError


class ArticleLibrary:
    """Looks up articles by page name and article number; safe to share between threads."""

    def __init__(self, corpus_dir: Path, fmt: str = "auto", field_map: str = ""):
        """Args: corpus_dir, and the index's `Settings.corpus_format` and `Settings.field_map`."""
        self.corpus_dir = Path(corpus_dir)
        self.fmt = check_format(fmt)
        self.field_map = field_map
        self._files: dict[str, Path] = {}
        self._refused: dict[str, Refusal] = {}
        self._pages: dict[str, tuple[tuple[int, int], Page]] = {}
        self._lock = threading.Lock()

    def article(self, source: str, number: int) -> Article:
        """The article `number` of page `source`.

        Args:
            source: the page's name relative to the corpus folder, as in `Passage.source`.
            number: the article's number on the page (`Passage.article_no`).
        Returns:
            The article as the parser reads it now.
        Raises:
            CorpusError: the corpus has no such page or the page no such article.
        """
        page = self._page(source)
        for article in page.articles:
            if article.number == number:
                return article
        raise CorpusError(f"page {source} has no article number {number}; the pages may have changed "
                          f"since the answer — ask again")

    def locate(self, passage) -> tuple[Article, tuple[int, int] | None]:
        """The passage's article and the passage's span in `article.text` (None if not found).

        Raises:
            CorpusError: as `article`.
        """
        article = self.article(passage.source, passage.article_no)
        text = article.text
        if 0 <= passage.start < passage.end <= len(text) and text[passage.start:passage.end] == passage.text:
            return article, (passage.start, passage.end)
        return article, find_span(text, passage.text)

    def _page(self, source: str) -> Page:
        with self._lock:
            path = self._files.get(source)
            if path is None:  # a page added since the last look, or a name the corpus does not have
                found = discover_pages(self.corpus_dir)
                self._files = {str(p.relative_to(self.corpus_dir)): p for p in found.pages}
                self._refused = {r.file: r for r in found.refused}
                path = self._files.get(source)
            if path is None:
                self._refuse(source, self._refused.get(source))
            try:
                stat = path.stat()
            except OSError as exc:
                raise CorpusError(f"page {source} can no longer be read ({exc}); run `rag index`") from exc
            self._refuse(source, check_page(path, self.corpus_dir))  # it may have become a link since
            stamp = (stat.st_mtime_ns, stat.st_size)
            cached = self._pages.get(source)
            if cached is None or cached[0] != stamp:
                page = read_file(read_page(path, self.corpus_dir), source, self.fmt, self.field_map)
                cached = self._pages[source] = (stamp, page)
            return cached[1]

    def _refuse(self, source: str, refusal: Refusal | None) -> None:
        """Raise for a name the corpus does not list, or lists as refused (never naming a link's target)."""
        if refusal is None and source in self._files:
            return
        self._files.pop(source, None)
        self._pages.pop(source, None)
        why = f": refused, {refusal.kind}" if refusal is not None else ""
        raise CorpusError(f"{source!r} is not a page of the corpus in {self.corpus_dir}{why}")


def find_span(text: str, needle: str) -> tuple[int, int] | None:
    """Where `needle` occurs in `text`, ignoring surrounding whitespace and a final full stop.

    Returns:
        (start, end) in `text`, or None when it does not occur.
    """
    for candidate in (needle, needle.strip(), needle.strip().rstrip("。.！？!?；;")):
        if candidate:
            at = text.find(candidate)
            if at >= 0:
                return at, at + len(candidate)
    return None
