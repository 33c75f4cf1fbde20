"""The chat's "Timeline" tab: how the reporting on a topic developed (`rag.answer.timeline`).

With `rag.app.ui`, `rag.app.controls` and `rag.app.keeping`, a module that imports gradio. The tab
formats what `build_timeline` returns: a bar chart of the matching articles per 1,000 dated
articles of the archive in each period (`gr.BarPlot` over a pandas DataFrame; a gap is a period
with no bar, never filled), and the entries of the period picked, each a source card like a
citation's (`rag.app.chatview.source_card`: the sentence highlighted in its passage, the full
article one click away).

A period is picked from the menu under the chart; a click on a bar picks it too where Gradio's
plot reports it (`SelectData` of a native plot names the x range selected, which for bars of text
labels is not documented to be a label: the menu is what is relied on, and the browser test drives
it). The timeline itself is kept per browser session in a `gr.State`.
"""

from __future__ import annotations

import dataclasses
import logging

import gradio as gr
import pandas as pd

from rag.answer.timeline import build_timeline
from rag.app.chatview import esc, source_card, status_html
from rag.app.validation import for_caller
from rag.errors import BadQuestion, RagError
from rag.search.retrieve import open_searcher

log = logging.getLogger(__name__)

ALL = "全部 All"  # the menu's choice for every period at once
TIMELINE_CONCURRENCY = 2  # a timeline is 1-3 s of CPU: two at once keep the chat answering
GRANULARITY_CHOICES = [("自动 auto", "auto"), ("日 day", "day"), ("周 week", "week"), ("月 month", "month"),
                       ("年 year", "year")]
COLUMNS = ["period", "per_1000", "n_articles", "archive_articles"]


def counts_frame(timeline) -> pd.DataFrame:
    """The chart's data: one row per period, gaps included (0 matching articles)."""
    rows = [{"period": c.period, "per_1000": round(1000 * c.share, 2) if c.share is not None else 0.0,
             "n_articles": c.n_articles, "archive_articles": c.archive_articles} for c in timeline.counts]
    return pd.DataFrame(rows, columns=COLUMNS)


def summary_html(timeline) -> str:
    """The line over the chart: what was found, or that nothing was, with the nearest articles."""
    where = f" · 只看 only {timeline.filter}" if timeline.filter else ""
    if not timeline.covered:
        nearest = "；".join(timeline.nearest)
        text = (f"没有关于“{timeline.topic}”的文章 — {timeline.note}{where}."
                + (f" 最接近的文章 The nearest articles: {nearest}" if nearest else ""))
        return f'<div class="rag-statusline rag-timeline-empty">{esc(text)}</div>'
    gaps = len(timeline.periods_without_coverage)
    text = (f"“{timeline.topic}”: {len(timeline.entries)} 条 entries · 按{timeline.granularity}统计 counted per "
            f"{timeline.granularity} · {gaps} 个空缺 period{'s' if gaps != 1 else ''} without coverage{where}")
    if timeline.note:
        text += f"\n({timeline.note})"
    return status_html(text)


def entries_html(timeline, period: str | None, lookup) -> str:
    """The entries of one period (all of them for None or `ALL`), each a card that opens its article."""
    if timeline is None:
        return ('<div class="rag-sources rag-empty"><p>输入主题后，这里按日期列出各篇文章自己的句子。<br>'
                'Type a topic: the articles\' own sentences appear here, in date order.</p></div>')
    if not timeline.covered:
        return ""
    chosen = timeline.entries if period in (None, "", ALL) else timeline.entries_in(period)
    parts = ['<div class="rag-sources rag-timeline">']
    if not chosen:
        parts.append(f'<p class="rag-status">{esc(period)}: 没有相关文章 no matching articles (a gap).</p>')
    for shown, summary, entries in timeline.grouped(chosen):
        parts.append(f'<div class="rag-sources-head">{esc(shown or "dated to the month only")}</div>')
        if summary is not None and summary.text:
            parts.append(f'<p class="rag-status">概要 Summary (checked): {esc(summary.text)}</p>')
        for entry in entries:
            passage = dataclasses.replace(entry.passage, also_in=entry.also_in)
            parts.append(source_card(passage, f"tl-{entry.citation.n}", f"{entry.date}", lookup, kind="cited",
                                     quote=entry.text))
    parts.append("</div>")
    return "".join(parts)


def period_choices(timeline) -> list[str]:
    """The menu: every period, then all of them."""
    return [ALL] + [c.period for c in timeline.counts] if timeline is not None and timeline.covered else [ALL]


def period_at(timeline, selected) -> str | None:
    """The period a click on the chart names, if it names one (see the module docstring)."""
    if timeline is None or not timeline.counts:
        return None
    labels = [c.period for c in timeline.counts]
    for value in (getattr(selected, "value", None), getattr(selected, "index", None)):
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, str) and v in labels:
                return v
            if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= round(v) < len(labels):
                return labels[int(round(v))]
    return None


class TimelineTab:
    """The Timeline tab of one `ChatApp` (its settings, pipelines and article library)."""

    def __init__(self, app):
        self.app = app

    def make(self, topic, date_from="", date_to="", outlet="", granularity="auto"):
        """Build the timeline: (summary, chart, menu, entries, state) updates; a refusal is a warning."""
        try:
            timeline = build_timeline(self._searcher(), topic, date_from or None, date_to or None, outlet or None,
                                      granularity or "auto", settings=self.app.settings)
        except BadQuestion as exc:
            log.warning("timeline refused: %s", exc)
            gr.Warning(str(exc))
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        except RagError as exc:
            log.warning("timeline of %r failed: %s", topic, exc)
            gr.Warning(for_caller(exc))
            return status_html(f"⚠ {for_caller(exc)}"), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        lookup = self.app.articles.locate
        return (summary_html(timeline), gr.update(value=counts_frame(timeline), visible=timeline.covered),
                gr.update(choices=period_choices(timeline), value=ALL, interactive=timeline.covered),
                entries_html(timeline, ALL, lookup), timeline)

    def _searcher(self):
        """The chat's searcher: the pipeline's, or the same process-wide one opened without the LLM
        (an extractive timeline needs none)."""
        pipeline = self.app.pipeline_for(self.app.settings)
        return pipeline.searcher if pipeline.searcher is not None else open_searcher(self.app.settings)

    def pick(self, period, timeline) -> str:
        """The entries of the period picked in the menu."""
        return entries_html(timeline, period, self.app.articles.locate)

    def clicked(self, timeline, selected: gr.SelectData):
        """A bar clicked: the menu set to its period, when the chart says which it is."""
        period = period_at(timeline, selected)
        return gr.update(value=period) if period else gr.skip()

    def tab(self) -> None:
        """The tab's layout and events (call inside the app's Blocks)."""
        with gr.Tabs(elem_id="rag-timeline-tabs"):
            with gr.Tab("时间线 Timeline", elem_id="rag-timeline-tab"):
                state = gr.State(None)
                with gr.Row(equal_height=False):
                    topic = gr.Textbox(label="主题 Topic", placeholder="例如 e.g. 台风杜苏芮", scale=3,
                                       elem_id="rag-timeline-topic", submit_btn="生成 Build")
                    date_from = gr.Textbox(label="从 From", placeholder="2023-07", scale=1, elem_id="rag-timeline-from")
                    date_to = gr.Textbox(label="到 To", placeholder="2023-08-31", scale=1, elem_id="rag-timeline-to")
                    outlet = gr.Textbox(label="媒体 Outlet", placeholder="新华社", scale=1)
                    granularity = gr.Dropdown(GRANULARITY_CHOICES, value="auto", label="周期 Period", scale=1)
                summary = gr.HTML(status_html("输入主题，按回车 · Type a topic, press Enter"), elem_id="rag-timeline-summary",
                                  js_on_load=None)
                chart = gr.BarPlot(pd.DataFrame(columns=COLUMNS), x="period", y="per_1000",
                                   tooltip=["period", "n_articles", "archive_articles", "per_1000"],
                                   x_title="period", y_title="matching articles per 1,000 in the archive",
                                   label="报道量 Coverage", elem_id="rag-timeline-chart", height=260, visible=False)
                period = gr.Dropdown([ALL], value=ALL, label="选择周期 Pick a period", interactive=False,
                                     elem_id="rag-timeline-period")
                entries = gr.HTML(entries_html(None, None, None), elem_id="rag-timeline-entries", js_on_load=None)
            args = dict(api_visibility="private", concurrency_id="timeline", concurrency_limit=TIMELINE_CONCURRENCY)
            topic.submit(self.make, [topic, date_from, date_to, outlet, granularity],
                         [summary, chart, period, entries, state], **args)
            period.input(self.pick, [period, state], entries, api_visibility="private")
            chart.select(self.clicked, state, period, api_visibility="private").then(
                self.pick, [period, state], entries, api_visibility="private")
