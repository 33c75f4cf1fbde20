"""HTML of the chat window: questions, answers with footnote markers, source cards, full articles.

Pure functions over a conversation's `Turn`s, no Gradio, so they are tested without a browser.
Every piece of question, answer or document text goes through `html.escape` — pages are OCR text
from outside and may contain markup — and each message is one `<div>` without blank lines, so
the chatbot's Markdown renderer leaves it as it is (no emphasis from `*`, no lists from `1.`).

Anchors: the card of citation n of turn t has id `src-t-n`; an answer's marker [n] is a link
`a.rag-cite` to it. The page script (`HEAD`) opens the card's full article when one is clicked.
The styles and the script are the package data files chat.css, chat-page.css and chat.js.
"""

from __future__ import annotations

import html
import re
import uuid
from dataclasses import dataclass, field
from importlib import resources
from typing import Callable, Iterable

from rag.ingest.library import find_span
from rag.answer.cite import MARKER, MARKER_PATTERN, UNSUPPORTED_MARK
from rag.errors import RagError

# A passage → (its article, the passage's span in article.text or None); raises RagError.
ArticleLookup = Callable[[object], tuple[object, tuple[int, int] | None]]

_TOKEN = re.compile(re.escape(UNSUPPORTED_MARK) + "|" + MARKER.pattern)
_STREAM_MARKER = re.compile(MARKER_PATTERN)  # without the space before it, which the stream keeps
_SENTENCE_END = re.compile(r"[。！？!?；]|\.(?=\s)|\n")
# The example questions that fill the empty chat, in Chinese and English.
EXAMPLES = [
    "水头镇的“和食堂”面向哪些老人开放？",
    "清泉村去年电商交易额是多少？",
    "苍南县建立了多少个党建联盟？",
    "How many party-building alliances had Cangnan county set up this year?",
    "Which hospital brought its shuttle bus to Dengta village in Deqing?",
]


@dataclass
class Turn:
    """One question of a conversation and what is known of its answer so far."""

    question: str
    model: str = ""
    follow_up: bool = False  # asked with history: the question is rewritten before the search
    rewritten: str = ""
    passages: list = field(default_factory=list)
    retrieve_s: float | None = None
    streamed: str = ""
    answer: object = None  # rag.answer.pipeline.Answer once complete
    error: str = ""
    key: str = field(default_factory=lambda: uuid.uuid4().hex)  # the answer's name in the ratings


def status_html(text: str) -> str:
    """The one-line index status at the top of the page."""
    return f'<div class="rag-statusline">{esc(text)}</div>'


def esc(text) -> str:
    """Escaped text; line breaks become <br> so a message never holds a blank line."""
    return html.escape(str(text), quote=True).replace("\r", "").replace("\n", "<br>")


def card_id(turn_no: int, key) -> str:
    """The anchor of a source card: citation number, or "r<rank>" for a retrieved passage."""
    return f"src-{turn_no}-{key}"


# --------------------------------------------------------------------------- chat messages


def question_html(turn: Turn) -> str:
    """The user's message, with the rewritten query (follow-ups) in small print under it."""
    extra = ""
    if turn.rewritten and turn.rewritten != turn.question:
        extra = f'<div class="rag-rewritten" title="what was searched">↳ 检索 searched as: {esc(turn.rewritten)}</div>'
    return f'<div class="rag-question">{esc(turn.question)}{extra}</div>'


def cited_passages(answer) -> dict[int, object]:
    """Citation number → the passage it cites, matched by chunk id (numbers count the LLM's
    context, which need not be the order of `answer.passages`)."""
    by_id = {p.chunk_id: p for p in answer.passages}
    return {c.n: by_id[c.chunk_id] for c in answer.citations if c.chunk_id in by_id}


def answer_html(turn: Turn, turn_no: int) -> str:
    """The assistant's message: streaming text, the checked answer, a refusal or an error."""
    if turn.error:
        return (f'<div class="rag-answer rag-failed"><div class="rag-badge">⚠ 出错 Error</div>'
                f'<div class="rag-text">{esc(turn.error)}</div></div>')
    answer = turn.answer
    if answer is None:
        if not turn.streamed:
            state = ("正在阅读资料… reading the passages" if turn.passages else
                     "正在理解追问… reading the conversation" if turn.follow_up else "正在检索… searching")
            return f'<div class="rag-answer rag-pending"><span class="rag-wait">{state}</span></div>'
        body = _STREAM_MARKER.sub(lambda m: f'<sup class="rag-cite-pending">{esc(m.group(0).strip())}</sup>',
                                esc(turn.streamed))
        return (f'<div class="rag-answer rag-streaming"><div class="rag-text">{body}'
                f'<span class="rag-caret">▍</span></div></div>')
    meta = _meta(turn)
    if answer.abstained:
        return (f'<div class="rag-answer rag-refusal"><div class="rag-badge">∅ 资料中没有答案 · Not in the pages'
                f'</div><div class="rag-text">{esc(answer.text)}</div>{meta}</div>')
    targets = {n: card_id(turn_no, n) for n in cited_passages(answer)}
    text = render_markers(answer.text, targets)
    notes = []
    if answer.unsupported_sentences:
        notes.append("标有 ? 的句子在资料中找不到依据，请谨慎参考。 Sentences marked ? are not supported by any "
                     "passage — check them before relying on them.")
    if answer.unverified_numbers:
        notes.append("资料中找不到的数字 Numbers found in no passage: " + "、".join(answer.unverified_numbers))
    kind = "rag-partial" if answer.unsupported_sentences else "rag-sourced"
    badge = "◐ 部分有出处 · Partly sourced" if answer.unsupported_sentences else "✓ 有出处 · Sourced"
    note_html = "".join(f'<div class="rag-note">{esc(n)}</div>' for n in notes)
    return (f'<div class="rag-answer {kind}"><div class="rag-badge">{badge}</div>'
            f'<div class="rag-text">{text}</div>{note_html}{meta}</div>')


def render_markers(text: str, targets: dict[int, str]) -> str:
    """Answer text → HTML: [n] becomes a footnote link to its card, a sentence marked [?] is
    shown as unsupported.

    Args:
        text: the checked answer (`Answer.text`).
        targets: citation number → card anchor id; a number without one stays plain text.
    Returns:
        HTML with all text escaped.
    """
    out: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        before = text[pos:match.start()]
        pos = match.end()
        if match.group(0).strip() == UNSUPPORTED_MARK:
            cut = _last_sentence_start(before)
            out.append(esc(before[:cut]))
            sentence = before[cut:]
            lead = len(sentence) - len(sentence.lstrip())
            out.append(esc(sentence[:lead]))
            out.append(f'<span class="rag-unsupported" title="没有资料支持这句话 No passage supports this sentence">'
                       f'{esc(sentence[lead:])}</span><sup class="rag-q" title="unsupported">?</sup>')
            continue
        out.append(esc(before))
        for number in (int(n) for n in re.split(r"\s*[,，、]\s*", match.group(1).strip())):
            if number in targets:
                out.append(f'<a class="rag-cite" href="#{targets[number]}" title="来源 source {number}">[{number}]</a>')
            else:
                out.append(f'<sup class="rag-cite-pending">[{number}]</sup>')
    out.append(esc(text[pos:]))
    return "".join(out)


def _last_sentence_start(text: str) -> int:
    """Where the last sentence of `text` starts (after the last sentence end that has text after it)."""
    start = 0
    for match in _SENTENCE_END.finditer(text):
        if text[match.end():].strip():
            start = match.end()
    return start


def _meta(turn: Turn) -> str:
    timings = getattr(turn.answer, "timings", None) or {}
    parts = [turn.model] if turn.model else []
    for key, label in (("retrieve_s", "检索 retrieval"), ("ttft_s", "首字 first token"), ("total_s", "共 total")):
        if timings.get(key) is not None:
            parts.append(f"{label} {timings[key]:.2f} s" if key == "retrieve_s" else f"{label} {timings[key]:.1f} s")
    return f'<div class="rag-meta">{esc(" · ".join(parts))}</div>' if parts else ""


# --------------------------------------------------------------------------- sources panel


def sources_html(turns: list[Turn], lookup: ArticleLookup) -> str:
    """The sources panel: the latest question's evidence first, earlier questions folded below."""
    if not turns:
        return ('<div class="rag-sources rag-empty"><div class="rag-sources-head">来源 Sources</div>'
                '<p>提问后，这里会先列出检索到的段落，回答完成后只保留被引用的段落。<br>'
                'Ask a question: the retrieved passages appear here first, then only those the answer cites.</p></div>')
    latest = len(turns)
    parts = ['<div class="rag-sources">', _turn_sources(turns[-1], latest, lookup, current=True)]
    if len(turns) > 1:
        parts.append('<div class="rag-earlier-head">更早的问题 Earlier questions</div>')
        for number in range(latest - 1, 0, -1):
            turn = turns[number - 1]
            parts.append(f'<details class="rag-earlier"><summary>{esc(turn.question)}</summary>'
                         f'{_turn_sources(turn, number, lookup, current=False)}</details>')
    parts.append("</div>")
    return "".join(parts)


def _turn_sources(turn: Turn, turn_no: int, lookup: ArticleLookup, current: bool) -> str:
    head = (f'<div class="rag-sources-head">来源 Sources <span class="rag-for">· {esc(turn.question)}</span></div>'
            if current else "")
    answer = turn.answer
    if answer is None:
        if turn.error:
            return head + f'<p class="rag-status">{esc(turn.error)}</p>'
        if not turn.passages:
            waiting = ("正在根据对话改写追问… Rewriting the follow-up with the conversation, then searching…"
                       if turn.follow_up else "正在检索… Searching the pages…")
            return head + f'<p class="rag-status">{waiting}</p>'
        took = f" in {turn.retrieve_s:.2f} s" if turn.retrieve_s is not None else ""
        status = (f'<p class="rag-status">检索到 {len(turn.passages)} 段，正在生成回答… '
                  f'Retrieved {len(turn.passages)} passages{took}; the answer is being written.</p>')
        return head + status + "".join(source_card(p, card_id(turn_no, f"r{i}"), f"#{i}", lookup, kind="retrieved")
                                       for i, p in enumerate(turn.passages, start=1))
    if answer.abstained:
        status = ('<p class="rag-status rag-status-refusal">没有段落回答这个问题。最接近的段落： '
                  'No passage answers this question. The nearest ones:</p>')
        return head + status + "".join(source_card(p, card_id(turn_no, f"r{i}"), f"#{i}", lookup, kind="nearest")
                                       for i, p in enumerate(answer.passages[:3], start=1))
    cited = cited_passages(answer)
    quotes = {c.n: c.quote for c in answer.citations}
    cards = [source_card(p, card_id(turn_no, n), f"[{n}]", lookup, kind="cited", quote=quotes.get(n, ""))
             for n, p in cited.items()]
    used = {p.chunk_id for p in cited.values()}
    others = [p for p in answer.passages if p.chunk_id not in used]
    status = f'<p class="rag-status">回答引用了 {len(cards)} 段 The answer cites {len(cards)} passage(s).</p>'
    rest = ""
    if others:
        rest = (f'<details class="rag-others"><summary>其他检索到的段落 Other retrieved passages ({len(others)})</summary>'
                + "".join(source_card(p, card_id(turn_no, f"r{p.rank}"), f"#{p.rank}", lookup, kind="retrieved")
                          for p in others) + "</details>")
    return head + status + "".join(cards) + rest


def source_card(passage, anchor: str, label: str, lookup: ArticleLookup, kind: str, quote: str = "") -> str:
    """One passage: headline ("headline › sub-heading" inside a sectioned story), page file and
    paragraph, the text with the supporting quote highlighted, and the full article (folded) with
    the passage highlighted."""
    kicker = f'<span class="rag-kicker">{esc(passage.kicker)}</span> ' if passage.kicker else ""
    quote_span = _find(passage.text, quote)
    body = highlight(passage.text, None, quote_span)
    headline = getattr(passage, "label", passage.article)
    # A title made from the lead (no headline was printed or given) says so, so no one quotes it
    # as the paper's headline.
    made = (' <span class="rag-lead-title" title="no printed headline: the lead sentence">（导语 lead）</span>'
            if getattr(passage, "headline_source", "page") == "lead" else "")
    return (f'<div class="rag-card rag-{kind}" id="{esc(anchor)}">'
            f'<div class="rag-card-head"><span class="rag-num">{esc(label)}</span>'
            f'<span class="rag-headline">{kicker}{esc(headline)}{made}</span></div>'
            f'{_card_meta(passage)}'
            f'<div class="rag-quote">{body}</div>'
            f'{article_html(passage, lookup, quote)}</div>')


def _card_meta(passage) -> str:
    """Under a card's headline: "outlet · date · page" where known, the file and paragraph, and the
    story's other printings (a reprinted wire story is shown once)."""
    where = " · ".join(p for p in (getattr(passage, "provenance", ""), passage.source) if p)
    meta = f'<div class="rag-card-meta">{esc(where)} · 第 {passage.paragraph} 段 ¶{passage.paragraph}</div>'
    also_in = getattr(passage, "also_in", ())
    if also_in:
        meta += f'<div class="rag-card-meta rag-also-in">也刊于 also printed in: {esc("; ".join(also_in))}</div>'
    return meta


def article_html(passage, lookup: ArticleLookup, quote: str = "") -> str:
    """The passage's full article, folded, with the passage (and the quote in it) highlighted and
    its sub-headings as headings between its paragraphs."""
    try:
        article, span = lookup(passage)
    except RagError as exc:  # a page gone since indexing must not break the whole panel
        return f'<div class="rag-article-missing">全文不可用 Full article unavailable: {esc(exc)}</div>'
    inner = None
    if span is not None and quote:
        found = _find(article.text[span[0]:span[1]], quote)
        inner = (span[0] + found[0], span[0] + found[1]) if found else None
    # A page's byline is in its text already (rag.ingest.pages); other readers keep it apart.
    shown = getattr(article, "byline", None)
    byline = f'<div class="rag-byline">{esc(shown)}</div>' if shown and shown not in article.text else ""
    return (f'<details class="rag-article"><summary>打开全文 Open full article</summary>'
            f'<div class="rag-article-body"><div class="rag-article-title">{esc(article.headline)}</div>{byline}'
            f'<div class="rag-article-text">{highlight(article.text, span, inner, _subhead_offsets(article))}'
            f'</div></div></details>')


def _subhead_offsets(article) -> list[tuple[int, str]]:
    """(offset in article.text, sub-heading) for each sub-heading (rag.ingest.article.Article.subheads)."""
    starts, offset = [], 0
    for paragraph in article.paragraphs:
        starts.append(offset)
        offset += len(paragraph) + 2  # article.text joins paragraphs with a blank line
    return [(starts[i], title) for i, title in getattr(article, "subheads", ()) if i < len(starts)]


def highlight(text: str, outer: tuple[int, int] | None, inner: tuple[int, int] | None,
              headings: Iterable[tuple[int, str]] = ()) -> str:
    """Escaped text with `outer` marked as the passage and `inner` (inside it) as the support.

    Paragraph breaks are kept as <br><br>, so the result holds no blank line. `headings`,
    (offset, title) pairs, are shown as a bold line before the text at their offset.
    """
    cuts: list[tuple[int, int, str]] = []  # (offset, rank at that offset, HTML)
    if outer:
        cuts += [(outer[0], 2, '<mark class="rag-passage">'), (outer[1], 0, "</mark>")]
    if inner:
        lo, hi = inner
        if outer:
            lo, hi = max(lo, outer[0]), min(hi, outer[1])
        if lo < hi:
            cuts += [(lo, 2, '<mark class="rag-support">'), (hi, 0, "</mark>")]
    cuts += [(at, 1, f'<strong class="rag-subhead">{esc(title)}</strong><br>') for at, title in headings]
    # At one offset, marks close first, then a sub-heading, then marks open: a passage starting
    # at a section's first paragraph is highlighted under its sub-heading, not around it.
    cuts.sort(key=lambda c: (c[0], c[1]))
    out, pos = [], 0
    for at, _, tag in cuts:
        out.append(esc(text[pos:at]))
        out.append(tag)
        pos = at
    out.append(esc(text[pos:]))
    return "".join(out)


def _find(text: str, needle: str) -> tuple[int, int] | None:
    return find_span(text, needle) if needle else None


# --------------------------------------------------------------------------- page assets


def _asset(name: str) -> str:
    """A file shipped beside this module (package data: see pyproject's package-data)."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


STYLE = _asset("chat.css")
# For the page's <head>: rules Gradio would scope below the page's own padding (its `css` is
# prefixed with the app container), and the script that opens a clicked footnote's full article.
HEAD = f"<style>\n{_asset('chat-page.css')}</style>\n<script>\n{_asset('chat.js')}</script>"
