"""The MCP server: the archive's tools for agents and desktop assistants, with the official MCP SDK.

Four tools, over stdio (`rag mcp`, what Claude Desktop, Cursor and the like launch) and over
streamable HTTP at /mcp of `rag serve` (behind its API keys):

- ``search_articles(query, k, date_from, date_to, outlet)`` → the passages, best first, each with
  its article id, title, outlet, date, file, paragraph and score;
- ``get_article(id)`` → the whole article with its metadata (ids as in `rag.app.service`);
- ``ask(question, history)`` → the checked answer (`text`: with its [n] markers and the sources at
  its end; `answer` without them), its `citations` and whether it is a refusal (`abstained`);
- ``timeline(topic, date_from, date_to, outlet, granularity)`` → the extractive timeline
  (`rag.timeline`): dated, cited entries, each with its article id, and the counts per period.

Values are checked by the app's one boundary (rag.app.validation), and a refusal or failure is the
tool's error result (``isError``) with the message in the caller's terms, never a traceback. Over
stdio nothing but the protocol may reach stdout: the pipeline writes progress and warnings to
stderr, and the SDK points file descriptor 1 at stderr while it serves, for what a library prints. The index and models load in the background as the server starts,
so the client's handshake is not kept waiting; the first call waits for them.
"""

from __future__ import annotations

import sys
import threading
from typing import Annotated, Any

from pydantic import Field

from rag.app.service import ArchiveService, answer_dict, article_dict, for_caller, passage_dict, timeline_dict
from rag.config import Settings
from rag.errors import BadQuestion, RagError
from rag.search.retrieve import MAX_K

INSTRUCTIONS = ("Search and quote a Chinese newspaper archive. search_articles finds passages (Chinese or "
                "English queries); get_article reads a whole article by the article_id a passage or citation "
                "carries; ask answers a question from the archive with checked citations [n], or says that "
                "the pages do not tell; timeline lists dated, cited sentences on a topic in date order.")


def build_mcp(service: ArchiveService):
    """The MCP server with its tools, answering from ``service``.

    Returns:
        An `mcp.server.mcpserver.MCPServer`: `.run("stdio")`, or `.streamable_http_app()` to mount.
    """
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer("rag", instructions=INSTRUCTIONS, log_level="WARNING")

    def refused(exc: Exception) -> ToolError:
        if isinstance(exc, BadQuestion):
            return ToolError(exc.message)
        if isinstance(exc, RagError):
            print(f"warning: {exc}", file=sys.stderr)
            return ToolError(for_caller(exc))
        return ToolError(f"something went wrong on the server ({type(exc).__name__}); its terminal shows the details")

    @server.tool(title="Search the archive")
    def search_articles(
        query: Annotated[str, Field(description="what to look for, in Chinese or English")],
        k: Annotated[int, Field(description=f"passages to return (1-{MAX_K})")] = 5,
        date_from: Annotated[str, Field(description='only articles dated from: "2023", "2023-07", "2023-07-28"')] = "",
        date_to: Annotated[str, Field(description="only articles dated up to (inclusive)")] = "",
        outlet: Annotated[str, Field(description="only this outlet (several: comma-separated)")] = "",
    ) -> dict[str, Any]:
        """Find passages of newspaper articles for a query, best first, with where each was printed."""
        try:
            passages = service.search(query, k, service.filters(date_from, date_to, outlet))
        except Exception as exc:  # noqa: BLE001 — the caller gets the error result
            raise refused(exc) from None
        return {"passages": [passage_dict(p) for p in passages]}

    @server.tool(title="Read an article")
    def get_article(
        id: Annotated[str, Field(description="an article_id from search_articles or a citation, <file>:<number>")],
    ) -> dict[str, Any]:
        """The whole article: headline, outlet, date, page, paragraphs and text."""
        try:
            return article_dict(service.article(id))
        except Exception as exc:  # noqa: BLE001
            raise refused(exc) from None

    @server.tool(title="Ask the archive")
    def ask(
        question: Annotated[str, Field(description="a question about the archive, in Chinese or English")],
        history: Annotated[list[list[str]] | None,
                           Field(description="earlier [question, answer] pairs, for a follow-up")] = None,
    ) -> dict[str, Any]:
        """Answer a question from the newspaper archive with checked citations, or say the pages do not tell."""
        try:
            answer = service.answer(service.check(question, history))
        except Exception as exc:  # noqa: BLE001
            raise refused(exc) from None
        return answer_dict(answer)

    @server.tool(title="Timeline of a topic")
    def timeline(
        topic: Annotated[str, Field(description="what the timeline is about, e.g. 台风杜苏芮")],
        date_from: Annotated[str, Field(description='only articles dated from: "2023", "2023-07", "2023-07-28"')] = "",
        date_to: Annotated[str, Field(description="only articles dated up to (inclusive)")] = "",
        outlet: Annotated[str, Field(description="only this outlet (several: comma-separated)")] = "",
        granularity: Annotated[str, Field(description="auto, day, week, month or year")] = "auto",
    ) -> dict[str, Any]:
        """How the reporting on a topic developed: one dated, cited sentence per story in date order,
        articles per period against what the archive holds then, and the periods with none."""
        try:
            return timeline_dict(service.timeline(topic, date_from, date_to, outlet, granularity))
        except Exception as exc:  # noqa: BLE001
            raise refused(exc) from None

    return server


def serve_stdio(settings: Settings, service: ArchiveService | None = None) -> None:
    """`rag mcp`: the tools over stdin/stdout until the client closes them.

    Args:
        settings: configuration; service: what to answer with (default: one over ``settings``).
    """
    service = service or ArchiveService(settings)
    server = build_mcp(service)

    def warm() -> None:
        try:
            service.pipeline().warm()
        except RagError as exc:  # the tools say so when called; the operator reads it here
            print(f"warning: {exc}", file=sys.stderr)

    threading.Thread(target=warm, name="rag-warm", daemon=True).start()
    print("rag mcp: serving the tools search_articles, get_article, ask and timeline over stdio", file=sys.stderr, flush=True)
    server.run("stdio")
