"""The chat's Timeline tab (rag.app.timeline) without a browser: what it shows for a topic, a
period, a gap, an uncovered topic and a refused one, over the dated dump of tests/test_timeline.py."""

from __future__ import annotations

import html
from types import SimpleNamespace

import gradio as gr
import pytest

from rag.answer.pipeline import Pipeline
from rag.app.timeline import ALL, counts_frame, period_at
from rag.app.ui import ChatApp, build_app

from fakes import scripted
from helpers import TYPHOON_LINES as LINES, dump_searcher



@pytest.fixture
def app(tmp_path, monkeypatch):
    settings, searcher = dump_searcher(tmp_path, monkeypatch, LINES)
    return ChatApp(settings, pipeline_for=lambda s: Pipeline(s, searcher, scripted()), keep_dir=tmp_path / "keep")


def test_a_topic_shows_the_chart_the_periods_and_cards_that_open_their_article(app):
    summary, chart, menu, entries, timeline = app.timeline.make("台风杜苏芮", granularity="day")
    frame = chart["value"]
    assert list(frame["period"])[:2] == ["2023-07-21", "2023-07-22"] and frame["n_articles"].sum() == 2
    assert frame.loc[frame.period == "2023-07-21", "per_1000"].item() == 1000.0  # the archive's only article that day
    assert menu["choices"][0] == ALL and "2023-07-25" in menu["choices"] and chart["visible"]
    assert "2 条 entries" in summary and "without coverage" in summary
    assert entries.count('class="rag-card rag-cited"') == 2 and "打开全文 Open full article" in entries
    assert '<mark class="rag-support">' in entries and "晋江" in html.unescape(entries)
    landfall = app.timeline.pick("2023-07-28", timeline)
    assert landfall.count("rag-card rag-cited") == 1 and "晋江" in html.unescape(landfall)
    assert "a gap" in app.timeline.pick("2023-07-25", timeline)


def test_an_uncovered_topic_says_so_and_hides_the_chart(app):
    summary, chart, menu, entries, timeline = app.timeline.make("火星探测器着陆")
    assert "没有关于" in summary and "no articles on this" in summary and "The nearest articles" in summary
    assert chart["visible"] is False and menu["choices"] == [ALL] and entries == ""


def test_a_refused_topic_is_a_warning_and_changes_nothing(app):
    with pytest.warns(UserWarning, match="the topic is empty"):
        updates = app.timeline.make("  ")
    assert updates == tuple(gr.skip() for _ in range(5))


def test_a_click_on_a_bar_names_its_period_when_the_chart_says_which():
    timeline = SimpleNamespace(counts=[SimpleNamespace(period=p) for p in ("2023-W29", "2023-W30")])
    assert period_at(timeline, SimpleNamespace(value="2023-W30", index=None)) == "2023-W30"
    assert period_at(timeline, SimpleNamespace(value=None, index=[0.2, 0.9])) == "2023-W29"
    assert period_at(timeline, SimpleNamespace(value=None, index=None)) is None


def test_the_app_builds_with_the_tab(app):
    demo = app.build()
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"rag-timeline-tab", "rag-timeline-chart", "rag-timeline-period", "rag-timeline-entries"} <= ids
    assert counts_frame(SimpleNamespace(counts=[])).empty
