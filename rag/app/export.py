"""A chat conversation as a Markdown document ("Export this conversation"), with its citations.

Each question is a heading, its answer a paragraph, then one numbered list of the sources it cites:
the headline (bold), "outlet · date · page" where known, the file and paragraph, the story's other
printings, and the supporting quote as a block quote. A refusal and a failed answer say so.

Valid Markdown whatever the pages and the model wrote: all text is escaped (`md_escape`) — every
character CommonMark gives a meaning inline, HTML and entities included, and whatever would open
a heading, list, quote or code block at the start of a line. A Markdown list numbers its items
from its first and ignores the rest, so an answer citing [2] and [4] would list them as 1 and 2:
each answer's markers are therefore renumbered 1, 2, … in the order they first appear, the list
in the same order, so that a [n] in the text is item n of its list. Pure functions: no Gradio.
"""

from __future__ import annotations

import re

from rag.answer.cite import MARKER, UNSUPPORTED_MARK
from rag.app.chatview import Turn, cited_passages

TITLE = "报纸问答 · Conversation"
# Inline punctuation CommonMark may read as markup (emphasis, code, links, HTML, entities, GFM's
# tables and strikethrough); escaped with a backslash wherever it occurs.
_INLINE = re.compile(r"([\\`*_\[\]<>&|~!#])")
# What would still open a block at the start of a line once those are escaped ("#" and ">" are):
# an ordered list item ("1." "1)"), a bullet ("-" "+"), a thematic break or setext underline
# ("---" "==="). Leading spaces (four make code) are dropped.
_ORDERED = re.compile(r"^(\d+)([.)])")
_BLOCK_MARK = re.compile(r"^([-+=])")
_TOKEN = re.compile(re.escape(UNSUPPORTED_MARK) + "|" + MARKER.pattern)
_SLOT = "\ue000"


def md_escape(text) -> str:
    """Text as Markdown that shows exactly it: markup escaped; a line break is a soft break, a
    blank line a new paragraph (as in the text)."""
    lines = []
    for line in str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = _INLINE.sub(r"\\\1", line.strip())
        lines.append(_BLOCK_MARK.sub(r"\\\1", _ORDERED.sub(r"\1\\\2", line)))
    return "\n".join(lines)


def renumber(text: str, known: set[int]) -> tuple[str, list[int]]:
    """An answer's text as escaped Markdown with its markers renumbered in order of first mention.

    Args:
        text: the checked answer (`Answer.text`).
        known: the citation numbers that have a source (a marker without one becomes [?]).
    Returns:
        (Markdown, the original numbers in their new order: item i of the list is order[i - 1]).
    """
    order: list[int] = []
    shown: list[str] = []  # each marker's Markdown, put back after the text around it is escaped

    def mark(match: re.Match) -> str:
        if match.group(0).strip() == UNSUPPORTED_MARK:
            shown.append(r"\[?\]")
        else:
            numbers = []
            for number in (int(n) for n in re.split(r"\s*[,，、]\s*", match.group(1).strip())):
                if number in known and number not in order:
                    order.append(number)
                numbers.append(str(order.index(number) + 1) if number in known else "?")
            shown.append(r"\[" + ", ".join(numbers) + r"\]")
        return f"{_SLOT}{len(shown) - 1}{_SLOT}"  # private-use characters: nothing escapes them

    escaped = md_escape(_TOKEN.sub(mark, text.replace(_SLOT, "")))
    return re.sub(f"{_SLOT}(\\d+){_SLOT}", lambda m: shown[int(m.group(1))], escaped), order


def source_item(number: int, citation, passage=None) -> str:
    """One numbered item of an answer's source list, its quote as a block quote under it."""
    label = citation.label or citation.article
    parts = [f"**{md_escape(label)}**"]
    if citation.provenance:
        parts.append(md_escape(citation.provenance))
    parts.append(md_escape(f"{citation.source}, ¶{citation.paragraph}"))
    lines = [f"{number}. " + " · ".join(parts)]
    indent = " " * len(f"{number}. ")  # a list item's continuation lines start under its text
    if citation.also_in:
        lines.append(indent + md_escape("也刊于 also printed in: " + "; ".join(citation.also_in)))
    quote = " ".join((citation.quote or "").split())
    if quote:
        lines.append(f"{indent}> {md_escape(quote)}")
    elif passage is not None:
        lines.append(f"{indent}> {md_escape(' '.join(passage.text.split()))}")
    return "\n".join(lines)


def turn_markdown(turn: Turn, number: int) -> str:
    """One question and its answer with its sources; "" for a question left unanswered."""
    head = f"## {number}. {md_escape(' '.join(turn.question.split()))}"
    searched = ""
    if turn.rewritten and turn.rewritten != turn.question:
        searched = f"\n\n*检索 searched as:* {md_escape(turn.rewritten)}"
    answer = turn.answer
    if answer is None:
        if not turn.error:
            return ""
        return f"{head}{searched}\n\n*⚠ 出错 no answer:* {md_escape(turn.error)}"
    if answer.abstained:
        return f"{head}{searched}\n\n*∅ 资料中没有答案 · Not in the pages:* {md_escape(answer.text)}"
    by_number = {c.n: c for c in answer.citations}
    text, order = renumber(answer.text, set(by_number))
    blocks = [f"{head}{searched}", text]
    if answer.unsupported_sentences:
        blocks.append("*\\[?\\] 标记的句子在资料中找不到依据 · Sentences marked \\[?\\] are supported by no passage.*")
    if order:
        passages = cited_passages(answer)
        blocks.append("**来源 Sources**")
        blocks.append("\n".join(source_item(i, by_number[n], passages.get(n)) for i, n in enumerate(order, start=1)))
    return "\n\n".join(blocks)


def conversation_markdown(turns: list[Turn], exported_at: str = "") -> str:
    """A conversation as a Markdown document.

    Args:
        turns: the chat's turns, oldest first (`rag.app.chatview.Turn`).
        exported_at: when, shown under the title ("" for nothing).
    Returns:
        The document, ending with a newline; questions left unanswered are left out.
    """
    blocks = [f"# {TITLE}"]
    if exported_at:
        blocks.append(f"*{md_escape(exported_at)}*")
    shown = [md for md in (turn_markdown(t, i) for i, t in enumerate(turns, start=1)) if md]
    blocks += shown or ["*没有问答 · No questions yet.*"]
    return "\n\n".join(blocks) + "\n"
