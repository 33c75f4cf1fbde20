"""A conversation as Markdown (rag.app.export): parsed back with markdown-it, every citation is in
its answer's one numbered list, and no text from the pages or the model turns into markup."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from rag.answer.cite import Citation
from rag.answer.pipeline import Pipeline
from rag.answer.types import Answer
from rag.app.chatview import Turn
from rag.app.export import conversation_markdown, md_escape
from rag.search.passage import Passage

from fakes import scripted
from helpers import QINGQUAN

MD = MarkdownIt("commonmark")
HOSTILE_LABEL = "# 标题 *星号* <script>alert(1)</script> [链接](http://x.example) `代码` &amp; 1. 列表 | 表"
HOSTILE_QUOTE = "> 不是引用\n---\n    四个空格 2023. 年 - 项 + 项 ==="


def sections(markdown: str) -> list[list]:
    """The document's tokens, cut at each question's heading (h2); the part before the first dropped."""
    parts: list[list] = []
    for token in MD.parse(markdown):
        if token.type == "heading_open" and token.tag == "h2":
            parts.append([])
        if parts:
            parts[-1].append(token)
    return parts


def plain(inline) -> str:
    """An inline token's text as a reader sees it (escapes resolved, emphasis markers gone)."""
    return "".join("\n" if c.type == "softbreak" else c.content for c in inline.children
                   if c.type in ("text", "softbreak", "code_inline"))


def items(section: list) -> list[tuple[str, str]]:
    """(the item's first line, its block quote) of each item of the section's one ordered list."""
    assert [t.type for t in section].count("ordered_list_open") == 1
    found, inside_quote, current = [], False, None
    for token in section:
        if token.type == "list_item_open":
            current = ["", ""]
            found.append(current)
        elif token.type == "blockquote_open":
            inside_quote = True
        elif token.type == "blockquote_close":
            inside_quote = False
        elif token.type == "inline" and current is not None:
            current[1 if inside_quote else 0] += plain(token)
    return [tuple(i) for i in found]


@pytest.fixture(scope="module")
def answered(seed_settings, seed_searcher):
    """A real conversation over the seed pages: an answer, a follow-up, a refusal."""
    pipeline = Pipeline(seed_settings, seed_searcher, scripted(
        "清泉村去年交易额超两亿元[1]。", "清泉村去年的电商交易额是多少？", "交易额超两亿元[1]。", "The documents don't say."))
    first = pipeline.ask(QINGQUAN)
    follow = pipeline.ask("那去年呢？", [(QINGQUAN, first.text)])
    refused = pipeline.ask("What was Qingquan's GDP in 1990?")
    assert first.citations and follow.citations and refused.abstained
    return [Turn(QINGQUAN, model="qwen-1.5b", answer=first),
            Turn("那去年呢？", follow_up=True, rewritten=follow.rewritten_query, answer=follow),
            Turn("What was Qingquan's GDP in 1990?", answer=refused),
            Turn("left mid-answer", streamed="清泉村")]


def test_every_citation_of_every_answer_is_in_its_one_numbered_list(answered):
    markdown = conversation_markdown(answered, exported_at="导出 Exported 2026-12-02 10:00 UTC")
    parts = sections(markdown)
    assert len(parts) == 3  # the question left mid-answer is not exported
    for section, turn in zip(parts[:2], answered):
        listed = items(section)
        assert len(listed) == len(turn.answer.citations)
        for (line, quote), citation in zip(listed, sorted(turn.answer.citations, key=lambda c: c.n)):
            assert citation.label in line and citation.source in line and f"¶{citation.paragraph}" in line
            if citation.provenance:
                assert citation.provenance in line
            assert quote == " ".join(citation.quote.split()) and quote
    assert "searched as:" in markdown and answered[1].rewritten in markdown
    refusal = parts[2]
    assert "ordered_list_open" not in [t.type for t in refusal]
    assert "Not in the pages" in "".join(plain(t) for t in refusal if t.type == "inline")


def hostile_answer() -> Answer:
    def passage(n: int) -> Passage:
        return Passage(f"原文 {n}", HOSTILE_LABEL, f"page-{n}.txt", n, 1.0, f"p:{n}:1", n, "article", None, 0, 6,
                       1.0, 0.0, n, date="2023-07-28", paper="人民网")

    citations = [Citation(n, HOSTILE_LABEL, f"page-{n}.txt", n, HOSTILE_QUOTE, 0.9, True, f"p:{n}:1",
                          label=f"{HOSTILE_LABEL} {n}", paper="人民网", date="2023-07-28",
                          provenance="人民网 · 2023-07-28", also_in=("新华网 · 2023-07-29 · 转载",))
                 for n in (2, 4)]
    text = "第一句 *强调* <b>粗</b>[4]。第二句 [链接](http://x.example)[2, 4]。\n# 不是标题 无据[?]。"
    return Answer("q", text, citations, [passage(2), passage(4)], False, "", "zh",
                  unsupported_sentences=["无据"])


def test_text_from_the_pages_and_the_model_never_becomes_markup_and_markers_follow_the_list():
    markdown = conversation_markdown([Turn("<i>问</i> *题* [x](y)", answer=hostile_answer())])
    html = MD.render(markdown)
    for tag in ("<script", "<b>", "<i>", "<a ", "<code", "<hr", "<h1>标题", "<table"):
        assert tag not in html, tag
    section = sections(markdown)[0]
    assert plain(section[1]) == "1. <i>问</i> *题* [x](y)"  # the heading shows the question as typed
    answer = next(plain(t) for t in section if t.type == "inline" and "第一句" in t.content)
    # [4] is mentioned first, so it is source 1 of the list; [2] is source 2.
    assert answer == "第一句 *强调* <b>粗</b>[1]。第二句 [链接](http://x.example)[2, 1]。\n# 不是标题 无据[?]。"
    (first, quote_1), (second, _) = items(section)
    assert first.startswith(f"{HOSTILE_LABEL} 4") and second.startswith(f"{HOSTILE_LABEL} 2")
    assert "人民网 · 2023-07-28" in first and "page-4.txt, ¶4" in first and "新华网 · 2023-07-29 · 转载" in first
    assert quote_1 == " ".join(HOSTILE_QUOTE.split())
    assert "Sentences marked [?] are supported by no passage" in MD.render(markdown)


@pytest.mark.parametrize("text", ["1. 不是列表", "2023) 年", "- 不是项", "+ 也不是", "===", "---", "    代码？",
                                  "> 引", "a\\b", "&copy; 不是实体", "~~~", "```", "<!-- x -->", "| a | b |"])
def test_escaped_text_reads_back_as_the_same_text(text):
    tokens = MD.parse(md_escape(text))
    assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"], text
    assert plain(tokens[1]) == text.strip()


def test_an_empty_conversation_is_a_document_saying_so():
    markdown = conversation_markdown([])
    assert markdown.startswith("# ") and "No questions yet" in markdown and markdown.endswith("\n")
