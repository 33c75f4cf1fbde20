"""The MCP tools through the MCP SDK's own client: in process (fast), and over stdio from a second
process, as `rag mcp` serves them (slow tier: a second Python process)."""

from __future__ import annotations

import os
import sys
import textwrap

import anyio
import pytest

from rag.answer.pipeline import Pipeline
from rag.app.service import SOURCES_HEADING, ArchiveService

from fakes import scripted
from helpers import QINGQUAN, ROOT, TYPHOON_LINES, dump_searcher

mcp = pytest.importorskip("mcp")

QINGQUAN_HEADLINE = "山货触网 农户生活更红火"
ANSWER = "清泉村去年电商交易额超两亿元[1]。"
TOOLS = {"search_articles", "get_article", "ask", "timeline"}


def call_all(server) -> dict:
    """List the tools and call each, as an agent would: search, read the first hit, ask."""
    from mcp import Client

    async def run():
        async with Client(server) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            found = await client.call_tool("search_articles", {"query": QINGQUAN, "k": 3})
            first = found.structured_content["passages"][0]
            article = await client.call_tool("get_article", {"id": first["article_id"]})
            answer = await client.call_tool("ask", {"question": QINGQUAN})
            refused = await client.call_tool("ask", {"question": "问" * 200_000})
            missing = await client.call_tool("get_article", {"id": "nowhere.txt:1"})
            return {"tools": tools, "found": found, "article": article, "answer": answer, "refused": refused,
                    "missing": missing}

    return anyio.run(run)


def check(results: dict) -> None:
    tools = results["tools"]
    assert set(tools) == TOOLS
    assert {"query", "k", "date_from", "date_to", "outlet"} <= set(tools["search_articles"].input_schema["properties"])
    assert set(tools["ask"].input_schema["properties"]) == {"question", "history"}
    passages = results["found"].structured_content["passages"]
    assert len(passages) == 3 and passages[0]["title"] == QINGQUAN_HEADLINE and not results["found"].is_error
    article = results["article"].structured_content
    assert article["headline"] == QINGQUAN_HEADLINE and passages[0]["text"] in article["text"]
    answer = results["answer"].structured_content
    assert answer["answer"] == ANSWER and answer["abstained"] is False
    assert answer["text"].startswith(ANSWER + f"\n\n{SOURCES_HEADING}\n[1] {QINGQUAN_HEADLINE}")
    citation = answer["citations"][0]
    assert citation["article"] == QINGQUAN_HEADLINE and citation["supported"] and citation["article_id"]
    refused = results["refused"]
    assert refused.is_error and "question: the question is 200,000 characters long" in refused.content[0].text
    missing = results["missing"]
    assert missing.is_error and "no article 'nowhere.txt:1'" in missing.content[0].text


def test_the_tools_are_listed_and_answer_in_process(seed_settings, seed_searcher):
    from rag.app.mcpserver import build_mcp

    chat = scripted(*[ANSWER] * 3)
    service = ArchiveService(seed_settings, lambda s: Pipeline(s, seed_searcher, chat))
    check(call_all(build_mcp(service)))


def test_ask_takes_the_history_and_refuses_a_bad_one(seed_settings, seed_searcher):
    from mcp import Client

    from rag.app.mcpserver import build_mcp

    chat = scripted("清泉村有多少人从事电商？", ANSWER)
    server = build_mcp(ArchiveService(seed_settings, lambda s: Pipeline(s, seed_searcher, chat)))

    async def run():
        async with Client(server) as client:
            follow = await client.call_tool("ask", {"question": "那村里呢？", "history": [[QINGQUAN, ANSWER]]})
            bad = await client.call_tool("ask", {"question": "那村里呢？", "history": [[QINGQUAN]]})
            return follow, bad

    follow, bad = anyio.run(run)
    assert follow.structured_content["rewritten_query"] == "清泉村有多少人从事电商？"
    assert QINGQUAN in chat.seen[0][-1].content  # the condense prompt read the history
    assert bad.is_error and "history[0]: must be a [question, answer] pair" in bad.content[0].text


def test_the_timeline_tool_gives_dated_cited_entries_that_open_their_article(tmp_path, monkeypatch):
    from mcp import Client

    from rag.app.mcpserver import build_mcp

    settings, searcher = dump_searcher(tmp_path, monkeypatch, TYPHOON_LINES)
    server = build_mcp(ArchiveService(settings, lambda s: Pipeline(s, searcher, scripted())))

    async def run():
        async with Client(server) as client:
            timeline = await client.call_tool("timeline", {"topic": "台风杜苏芮", "granularity": "day"})
            first = timeline.structured_content["entries"][0]
            article = await client.call_tool("get_article", {"id": first["article_id"]})
            reversed_range = await client.call_tool("timeline", {"topic": "台风杜苏芮", "date_from": "2023-08",
                                                                 "date_to": "2023-07"})
            empty = await client.call_tool("timeline", {"topic": " "})
            return timeline.structured_content, article.structured_content, reversed_range, empty

    timeline, article, reversed_range, empty = anyio.run(run)
    entries = timeline["entries"]
    assert [e["date"] for e in entries] == ["2023-07-21", "2023-07-28"] and timeline["granularity"] == "day"
    assert entries[0]["text"] in article["text"] and entries[0]["citation"]["source"] == article["file"]
    assert "2023-07-25" in {c["period"] for c in timeline["counts"]}  # the archive's day without the topic
    assert reversed_range.is_error and "2023-08" in reversed_range.content[0].text
    assert empty.is_error and "topic is empty" in empty.content[0].text


# A second process serving the tools over stdio as `rag mcp` does (`serve_stdio`), with the hash
# embedder and a scripted model instead of the bundled ones.
STDIO_SERVER = textwrap.dedent("""
    import sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from fakes import HashEmbedder, scripted
    from rag.answer.pipeline import Pipeline
    from rag.app.mcpserver import serve_stdio
    from rag.app.service import ArchiveService
    from rag.config import Settings
    from rag.search.retrieve import open_searcher

    settings = Settings(corpus_dir=Path({seeds!r}), index_dir=Path({index!r}), cache_dir=Path({cache!r}))
    searcher = open_searcher(settings, embedder=HashEmbedder(), progress=False)
    chat = scripted(*[{answer!r}] * 3)
    serve_stdio(settings, ArchiveService(settings, lambda s: Pipeline(s, searcher, chat)))
""")


@pytest.mark.slow  # a second Python process (seconds)
def test_the_tools_over_stdio_from_a_second_process(tmp_path):
    from mcp import StdioServerParameters

    script = STDIO_SERVER.format(tests=str(ROOT / "tests"), seeds=str(ROOT / "seeds"), index=str(tmp_path / "index"),
                                 cache=str(tmp_path / "cache"), answer=ANSWER)
    env = {k: v for k, v in os.environ.items() if k.startswith(("PATH", "HOME", "LANG", "HF_", "TRANSFORMERS"))}
    server = StdioServerParameters(command=sys.executable, args=["-c", script], env=env, cwd=str(tmp_path))
    check(call_all(server))


def test_rag_mcp_is_a_command(capsys):
    from rag.cli import build_parser

    args = build_parser().parse_args(["mcp", "--model", "fast"])
    assert args.command == "mcp" and args.model == "fast" and callable(args.func)
