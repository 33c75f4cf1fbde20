"""rag.timeline over a small dated news dump (the news-cn format) with the hash embedder: date order,
one entry per reprinted story, counts normalised by the archive with gaps left as gaps, an
uncovered topic, bad input, checked period summaries, the CLI."""

from __future__ import annotations

import json
from datetime import date as Date

import numpy as np
import pytest

import rag
import rag.models.embedder
from rag.answer.timeline import build_timeline
from rag.answer.timeline_periods import choose_granularity, period_label, period_number, place
from rag.cli import main
from rag.config import Settings
from rag.errors import BadQuestion
from rag.search.retrieve import open_searcher

from helpers import dump_searcher
from fakes import HashEmbedder, scripted

LANDFALL = ("中新网福州7月28日电 台风“杜苏芮”28日9时55分在福建晋江沿海登陆，登陆时中心附近最大风力15级，"
            "福建全省启动防台风一级应急响应，沿海渔船全部回港避风，学校和景区暂停开放。")
LINES = [
    "2023-07-18 09:00，正文：中新网北京7月18日电 中央气象台18日继续发布高温黄色预警，华北黄淮等地最高气温达到37℃至39℃。",
    "2023-07-21 10:00，正文：新华社北京7月21日电 今年第5号台风“杜苏芮”今天上午在菲律宾以东洋面生成，"
    "中央气象台预计它将向西偏北方向移动，逐渐靠近台湾东部海面。",
    "2023-07-25 08:30，正文：京东集团发布第二季度财报，营收同比增长7.6%，净利润超过市场预期。",
    f"2023-07-28 11:00，正文：{LANDFALL}",
    f"2023-07-29 08:00，正文：{LANDFALL}",  # the same story printed again the next day: a reprint
    "2023-08-01 16:20，正文：受台风“杜苏芮”残余环流影响，京津冀地区7月29日以来遭遇极端强降雨，北京门头沟、房山等地发生山洪。",
    "2023-08-09 12:00，正文：成都大运会闭幕，中国代表团以103枚金牌位列金牌榜第一。",
    "2023-08-14 09:40，正文：福建省公布台风“杜苏芮”灾后重建方案，将安排专项资金修复受损道路和海堤。",
    "，正文：台风“杜苏芮”过后，福建各地组织力量清理道路，恢复供电供水。",  # no date at all
]


@pytest.fixture
def archive(tmp_path, monkeypatch):
    return dump_searcher(tmp_path, monkeypatch, LINES)


def test_entries_are_the_articles_sentences_in_date_order_one_per_reprinted_story(archive):
    settings, searcher = archive
    timeline = build_timeline(searcher, "台风杜苏芮")
    dates = [e.date for e in timeline.entries]
    assert dates == ["2023-07-21", "2023-07-28", "2023-08-01", "2023-08-14"]  # the 07-29 reprint is not an entry
    landfall = timeline.entries[1]
    assert landfall.text in LANDFALL and "登陆" in landfall.text
    assert len(landfall.also_in) == 1 and "2023-07-29" in landfall.also_in[0]
    groups = [e.passage.group for e in timeline.entries if e.passage.group]
    assert len(groups) == len(set(groups))
    # Each entry is cited as an answer sentence is: its own words, where they are printed.
    for n, entry in enumerate(timeline.entries, start=1):
        c = entry.citation
        assert c.n == n and c.supported and c.quote and c.quote in entry.passage.text
        assert c.date == entry.date and c.source == "news-001.txt"
    assert "高温" not in " ".join(e.text for e in timeline.entries)  # not about the topic


def test_an_article_without_a_date_is_left_out_and_counted(archive):
    _, searcher = archive
    timeline = build_timeline(searcher, "台风杜苏芮")
    assert timeline.undated == 1 and "without a date" in timeline.note
    assert not any("清理道路" in e.text for e in timeline.entries)


def test_counts_are_normalised_by_the_archive_and_gaps_stay_gaps(archive):
    _, searcher = archive
    timeline = build_timeline(searcher, "台风杜苏芮", granularity="week")
    counts = {c.period: c for c in timeline.counts}
    assert list(counts) == ["2023-W29", "2023-W30", "2023-W31", "2023-W32", "2023-W33"]
    # Both printings of the landfall story count: more printings are more coverage.
    assert [counts[p].n_articles for p in counts] == [1, 2, 1, 0, 1]
    assert [counts[p].archive_articles for p in counts] == [2, 3, 1, 1, 1]
    assert counts["2023-W30"].share == pytest.approx(2 / 3, abs=1e-4)
    assert timeline.periods_without_coverage == ["2023-W32"]  # the archive has an article then, not on this
    assert [e.period for e in timeline.entries] == ["2023-W29", "2023-W30", "2023-W31", "2023-W33"]
    assert timeline.entries_in("2023-W32") == []


def test_auto_granularity_follows_the_span_and_a_date_range(archive):
    _, searcher = archive
    assert build_timeline(searcher, "台风杜苏芮").granularity == "day"  # 07-21 … 08-14: under a month
    ranged = build_timeline(searcher, "台风杜苏芮", date_from="2023-07-27", date_to="2023-08-02")
    assert [e.date for e in ranged.entries] == ["2023-07-28", "2023-08-01"]
    assert ranged.counts[0].period == "2023-07-27" and ranged.counts[-1].period == "2023-08-02"
    assert "2023-07-30" in ranged.periods_without_coverage
    assert ranged.undated == 0 and "never inside a date range" in ranged.note
    assert build_timeline(searcher, "台风杜苏芮", date_from="2023", date_to="2025").granularity == "month"


def test_a_topic_the_archive_does_not_cover_says_so_with_the_nearest_articles(archive):
    _, searcher = archive
    timeline = build_timeline(searcher, "火星探测器着陆")
    assert not timeline.covered and timeline.entries == [] and timeline.counts == []
    assert timeline.note.startswith("no articles on this") and 1 <= len(timeline.nearest) <= 3
    assert "no articles on this" in timeline.lines()[0]


@pytest.mark.parametrize("kwargs, message", [
    (dict(topic=""), "the topic is empty"),
    (dict(topic="   "), "the topic is empty"),
    (dict(topic="台风", date_from="2023-08-01", date_to="2023-07-01"), "before it starts"),
    (dict(topic="台风", date_from="2024-01", date_to="2024-02"), "holds no articles for 2024-01-01 – 2024-02-29"),
    (dict(topic="台风", outlet="不存在的报纸"), "holds no articles for"),
    (dict(topic="台风", date_from="last week"), "is not a date"),
    (dict(topic="台风", granularity="fortnight"), "granularity 'fortnight'"),
    (dict(topic="台风", max_entries=0), "max_entries"),
])
def test_bad_input_is_refused_with_what_to_do(archive, kwargs, message):
    _, searcher = archive
    with pytest.raises(BadQuestion, match=message):
        build_timeline(searcher, **kwargs)


def test_the_empty_range_message_names_the_archives_span(archive):
    _, searcher = archive
    with pytest.raises(BadQuestion, match="run from 2023-07-18 to 2023-08-14; widen the range"):
        build_timeline(searcher, "台风", date_from="2022", date_to="2022")


def test_max_entries_keeps_the_strongest_story_of_each_period(archive):
    _, searcher = archive
    timeline = build_timeline(searcher, "台风杜苏芮", granularity="week", max_entries=3)
    assert len(timeline.entries) == 3 and "3 of 4 stories shown" in timeline.note
    assert len({e.period for e in timeline.entries}) == 3  # shared out over the periods
    assert sum(c.n_articles for c in timeline.counts) == 5  # the counts still hold them all


def test_period_summaries_keep_only_what_the_entries_support(archive):
    _, searcher = archive
    chat = scripted("台风“杜苏芮”28日在福建晋江沿海登陆[2]。月球上发现了大片湖泊[1]。",
                    "京津冀地区遭遇极端强降雨[1]。")
    timeline = build_timeline(searcher, "台风杜苏芮", granularity="month", summarise=True, chat=chat)
    july, august = timeline.summaries
    assert july.period == "2023-07" and "晋江" in july.text and "[2]" in july.text
    assert july.dropped == ["月球上发现了大片湖泊。"] and "月球" not in july.text
    assert [c.n for c in july.citations] == [2]
    assert august.period == "2023-08" and "[3]" in august.text  # renumbered to the entry list
    prompt = chat.seen[0][-1].content
    assert "2023-07" in prompt and "菲律宾以东洋面生成" in prompt and "门头沟" not in prompt  # that period only


def test_the_cli_prints_the_timeline_and_json(archive, capsys):
    settings, _ = archive
    base = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]
    assert main(base + ["timeline", "台风杜苏芮", "--granularity", "week"]) == 0
    out = capsys.readouterr().out
    assert "2023-W32" in out and "gap" in out and "登陆" in out and "also printed in" in out
    assert main(base + ["timeline", "台风杜苏芮", "--from", "2023-07-27", "--to", "2023-08-02", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["date"] for e in data["entries"]] == ["2023-07-28", "2023-08-01"]
    assert data["counts"][0]["period"] == "2023-07-27" and "passage" not in data["entries"][0]
    assert main(base + ["timeline", "", "--from", "2023-08"]) == 2
    assert "the topic is empty" in capsys.readouterr().err


def test_the_python_api_is_exported(archive):
    settings, _ = archive
    timeline = rag.timeline("台风杜苏芮", settings=settings, granularity="week")
    assert isinstance(timeline, rag.Timeline) and len(timeline.entries) == 4


def test_periods_are_iso_labelled_and_coarse_dates_are_not_spread():
    day = Date(2023, 7, 28).toordinal()
    assert [period_label(int(period_number(np.asarray([day]), g)[0]), g) for g in ("day", "week", "month", "year")] \
        == ["2023-07-28", "2023-W30", "2023-07", "2023"]
    july = (Date(2023, 7, 1).toordinal(), Date(2023, 7, 31).toordinal())
    assert place(np.asarray([july, (-1, -1)]), "week").tolist() == [-1, -1]  # a month is in no one week
    assert period_label(int(place(np.asarray([july]), "month")[0]), "month") == "2023-07"
    assert choose_granularity(day, day + 30) == "day" and choose_granularity(day, day + 31) == "week"
    assert choose_granularity(day, day + 400) == "month" and choose_granularity(day, day + 2000) == "year"


def test_a_day_with_more_matching_articles_than_a_search_returns_is_counted_in_full(tmp_path):
    folder = tmp_path / "busy"
    folder.mkdir()
    cities = ["福州", "厦门", "泉州", "漳州", "莆田", "宁德"]
    busy = [f"2023-07-28 {i // 60:02d}:{i % 60:02d}，正文：{cities[i % 6]}第{i + 1}号通报：台风“杜苏芮”影响当地，"
            f"已转移群众{(i + 3) * 137}人，关闭景区{i % 9 + 1}处。" for i in range(60)]
    quiet = ["2023-07-27 09:00，正文：京东集团发布第二季度财报，营收同比增长7.6%。",
             "2023-07-29 09:00，正文：台风“杜苏芮”减弱为热带风暴，继续向北移动。"]
    (folder / "news-001.txt").write_text("\n".join(busy + quiet) + "\n", encoding="utf-8")
    settings = Settings(corpus_dir=folder, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache")
    searcher = open_searcher(settings, embedder=HashEmbedder(), progress=False)
    timeline = build_timeline(searcher, "台风杜苏芮")
    counts = {c.period: c.n_articles for c in timeline.counts}
    assert counts == {"2023-07-28": 60, "2023-07-29": 1}  # one search returns at most 50
    assert len(timeline.entries) == 61 and timeline.timings["searches"] <= 8


def test_an_outlet_is_counted_against_that_outlets_own_articles(archive):
    _, searcher = archive
    timeline = build_timeline(searcher, "台风杜苏芮", outlet="中新网", granularity="week")
    assert [(e.date, e.citation.paper) for e in timeline.entries] == [("2023-07-28", "中新网")]
    [week] = timeline.counts
    assert (week.period, week.n_articles, week.archive_articles) == ("2023-W30", 2, 2)  # 中新网's two that week
    assert timeline.filter == "中新网" and "[only 中新网]" in timeline.lines()[0]


def test_the_cli_refuses_an_unknown_granularity_in_one_line(archive, capsys):
    settings, _ = archive
    base = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]
    assert main(base + ["timeline", "台风杜苏芮", "--granularity", "fortnight"]) == 2
    assert capsys.readouterr().err.startswith("error: granularity 'fortnight' is not one of auto, day, week")
