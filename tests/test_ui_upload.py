"""The chat's filter and upload: filters reach the pipeline and are checked, uploads land in the
index and the answer being written when one arrives is not disturbed."""

from __future__ import annotations

import threading

import gradio as gr
import pytest
from langchain_core.messages import AIMessage

from rag.answer.pipeline import Pipeline, Retrieved
from rag.app.archive import uploads_allowed
from rag.app.ui import ChatApp, build_app
from rag.search.retrieve import open_searcher

from fakes import GatedChat, scripted
from helpers import QINGQUAN

# Two lines of the news-cn dump: news-020.txt line 834 (新华社) and news-003.txt line 1299 (人民网),
# each cut after its first sentence.
XINHUA = ("2023-07-31 09:40，正文：新华社北京7月31日电 以色列总理本雅明·内塔尼亚胡30日说，以政府打算斥资1000亿新谢克尔"
          "（约合270亿美元）扩建铁路网络，有意将线路延伸至周边阿拉伯国家。")
PEOPLE = ("2023-08-08 09:32，正文：人民网成都8月7日电 (记者张荣)“虽然这座城市有点‘辣’,但我们在这里度过了非常愉快的时光。”"
          "5日,结束了与罗马尼亚队的比赛后,成都大运会葡萄牙女子篮球队队长卡洛尼娜·罗德里格斯接受了人民网记者的采访。")
RAIL = "以色列政府打算斥资多少扩建铁路网络？"


@pytest.fixture
def searcher(settings, hash_embedder):
    return open_searcher(settings, embedder=hash_embedder, progress=False)


@pytest.fixture
def warnings(monkeypatch):
    seen: list[str] = []
    monkeypatch.setattr(gr, "Warning", lambda message, *a, **k: seen.append(message))
    return seen


@pytest.fixture
def dump(tmp_path):
    path = tmp_path / "upload" / "新闻-2023-07.txt"
    path.parent.mkdir()
    path.write_text(XINHUA + "\n" + PEOPLE + "\n", encoding="utf-8")
    return path


def app_over(settings, pipeline, uploads=True) -> ChatApp:
    """A ChatApp that answers every question with ``pipeline`` (so an upload's reload is seen)."""
    return ChatApp(settings, pipeline_for=lambda _settings: pipeline, uploads=uploads)


def final(updates):
    messages, sources, _, turns = updates[-1]
    return messages, sources, turns


# --------------------------------------------------------------------------- filters


def test_the_filter_reaches_the_pipeline_and_heads_the_sources(seed_settings, seed_searcher, monkeypatch):
    settings = seed_settings
    pipeline = Pipeline(settings, seed_searcher, scripted("不该被问到。"))
    seen = []
    real = pipeline.stream
    monkeypatch.setattr(pipeline, "stream", lambda *a, **k: seen.append(k) or real(*a, **k))
    app = app_over(settings, pipeline)
    _, sources, turns = final(list(app.respond(QINGQUAN, [], "qwen-1.5b", 4, "2023-07", " 2023-07-31 ", ["人民网"])))
    assert seen[0] | {"history": None} == {"history": None, "date_from": "2023-07", "date_to": "2023-07-31",
                                           "paper": ["人民网"]}
    assert "只看 only 2023-07-01 – 2023-07-31 · 人民网" in sources
    # The seed pages print no dates: nothing passes, and the answer says the pages do not hold it.
    assert turns[0].answer.abstained and turns[0].answer.passages == []
    _, sources, turns = final(list(app.respond(QINGQUAN, [], "qwen-1.5b", 4, "", "", [])))
    assert seen[1]["date_from"] == "" and seen[1]["paper"] is None and "只看" not in sources


@pytest.mark.parametrize("date_from, date_to, paper, message", [
    ("2023-13-01", "", [], "date_from: '2023-13-01' is not a date"),
    ("", "七月", [], "date_to: '七月' is not a date"),
    ("2023-08", "2023-07", [], "date_to: the date range ends (2023-07) before it starts (2023-08)"),
    (20230701, "", [], "date_from: must be text"),
    ("", "", 7, "paper: must be an outlet name or a list of them"),
    ("", "", ["人民网", 3], "paper[1]: must be text"),
])
def test_a_bad_filter_is_a_warning_on_the_page_and_an_error_for_chat_callers(seed_settings, seed_searcher, warnings,
                                                                               date_from, date_to, paper, message):
    app = app_over(seed_settings, Pipeline(seed_settings, seed_searcher, scripted("x")))
    updates = list(app.respond(QINGQUAN, [], "qwen-1.5b", 4, date_from, date_to, paper))
    assert len(updates) == 1 and all(isinstance(u, type(gr.skip())) for u in updates[0])
    assert len(warnings) == 1 and warnings[0].startswith(message), warnings
    with pytest.raises(gr.Error) as refused:
        list(app.chat(QINGQUAN, [], "qwen-1.5b", 4, date_from, date_to, paper))
    assert refused.value.message == warnings[0]


def test_the_filter_line_says_the_filter_or_why_it_is_not_one(seed_settings, warnings):
    controls = ChatApp(seed_settings).archive
    assert "只看 only 2023-01-01 – 2023-12-31 · 新华社, 人民网" in controls.filter_line("2023", "2023", ["新华社", "人民网"])
    assert "只看 only … – 2023-07-31" in controls.filter_line("", "2023年7月", None)
    assert controls.filter_line("", "", []) == "" and warnings == []
    assert "⚠ date_from: &#x27;2023-02-30&#x27; is not a date" in controls.filter_line("2023-02-30", "", [])
    assert warnings and warnings[0].startswith("date_from:")
    assert controls.clear_filter() == ("", "", [], "")


# --------------------------------------------------------------------------- uploads


def test_an_upload_is_indexed_answerable_and_filterable(settings, searcher, dump, tmp_path, warnings):
    picture = tmp_path / "upload" / "photo.txt"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    pipeline = Pipeline(settings, searcher, scripted("以政府打算斥资1000亿新谢克尔扩建铁路网络[1]。"))
    app = app_over(settings, pipeline)
    status, menu, note = app.archive.upload([str(dump), str(picture)])
    assert (settings.corpus_dir / dump.name).read_bytes() == dump.read_bytes()
    assert not (settings.corpus_dir / "photo.txt").exists()
    assert warnings == ["photo.txt: photo.txt is not UTF-8 or GB18030 text; convert it, e.g. `iconv -f BIG5 -t "
                        "UTF-8 photo.txt > fixed.txt`, then add it again"]
    assert f"已添加 added 1: {dump.name}" in note and "✗ 未添加 refused photo.txt: photo.txt is not UTF-8" in note
    assert str(tmp_path) not in note + "".join(warnings)  # the server's upload folder is never shown
    assert {"新华社", "人民网"} <= set(menu["choices"]) and "files ·" in status
    assert pipeline.searcher is not searcher and menu["choices"] == app.archive.outlet_menu()["choices"]
    # Only the new articles' texts were embedded; the seeds' came from the cache.
    embedded = pipeline.searcher.index.status().embedded
    assert 0 < embedded <= 8 and f"{embedded} new texts embedded" in note
    _, sources, turns = final(list(app.respond(RAIL, [], "qwen-1.5b", 4, "2023-07-01", "2023-07-31", ["新华社"])))
    answer = turns[0].answer
    assert not answer.abstained and answer.citations[0].source == dump.name
    assert {p.paper for p in answer.passages} == {"新华社"} and "1000亿新谢克尔" in answer.passages[0].text
    # The same file again is already there: nothing is rebuilt.
    status, menu, note = app.archive.upload([str(dump)])
    assert isinstance(status, type(gr.skip())) and f"已有 already there: {dump.name}" in note


def test_an_upload_while_an_answer_is_written_leaves_that_answer_whole(settings, searcher, dump):
    gate = threading.Event()
    reply = "清泉村去年交易额超两亿元[1]。"
    chat = GatedChat(messages=iter([AIMessage(content=reply), AIMessage(content="斥资1000亿新谢克尔[1]。")]),
                     seen=[], gate=gate)
    pipeline = Pipeline(settings, searcher, chat)
    app = app_over(settings, pipeline)
    updates = app.respond(QINGQUAN, [], "qwen-1.5b", 4)
    next(updates)
    next(updates)  # the passages are shown; the model waits at the gate
    app.archive.upload([str(dump)])
    assert pipeline.searcher is not searcher
    gate.set()
    _, _, turns = final(list(updates))
    assert not turns[0].error and not turns[0].answer.abstained and turns[0].answer.text == reply
    _, _, turns = final(list(app.respond(RAIL, [], "qwen-1.5b", 4)))  # the next question sees the upload
    assert turns[0].answer.passages[0].source == dump.name


@pytest.mark.slow  # over a second; the fast tier stays within its budget (CI runs both)
def test_the_upload_is_offered_only_with_a_login_or_on_loopback(settings, searcher, dump):
    assert uploads_allowed("127.0.0.1", None) and uploads_allowed("::1", None)
    assert uploads_allowed("0.0.0.0", [("reader", "s3cret")]) and not uploads_allowed("0.0.0.0", None)
    pipeline = Pipeline(settings, searcher, scripted("x"))
    offered = build_app(settings, pipeline_for=lambda s: pipeline, uploads=True)
    closed = build_app(settings, pipeline_for=lambda s: pipeline)
    buttons = [[b for b in demo.blocks.values() if isinstance(b, gr.UploadButton)] for demo in (offered, closed)]
    assert len(buttons[0]) == 1 and buttons[1] == []
    assert offered.upload_bytes == 50 << 20 and closed.upload_bytes == 0  # Gradio's upload route: closed
    with pytest.raises(gr.Error, match="takes no files"):
        app_over(settings, pipeline, uploads=False).archive.upload([str(dump)])
    assert not (settings.corpus_dir / dump.name).exists()


@pytest.mark.slow  # slow tier: a served app (seconds)
def test_chat_callers_may_send_filters_or_leave_them_out(settings, searcher, dump):
    import json
    import urllib.request

    from gradio_client import Client

    from helpers import free_port
    from rag.app.ui import launch

    pipeline = Pipeline(settings, searcher, scripted(*["以政府打算斥资1000亿新谢克尔扩建铁路网络[1]。"] * 4))
    app = app_over(settings, pipeline)
    app.archive.upload([str(dump)])
    demo = app.build()
    url = launch(demo, port=free_port(), prevent_thread_lock=True)
    try:
        client = Client(url, verbose=False)
        _, sources, _ = client.predict(RAIL, "qwen-1.5b", 4, api_name="/chat")  # as callers from before filters
        assert dump.name in sources and "只看" not in sources
        _, sources, _ = client.predict(RAIL, "qwen-1.5b", 4, "2023-07-01", "2023-07-31", ["新华社"], api_name="/chat")
        assert "只看 only 2023-07-01 – 2023-07-31 · 新华社" in sources and dump.name in sources
        with pytest.raises(Exception, match="date_from: '2023-13' is not a date"):
            client.predict(RAIL, "qwen-1.5b", 4, "2023-13", "", [], api_name="/chat")

        def raw(values) -> str:  # the HTTP API without gradio_client: values by position, some left out
            request = urllib.request.Request(f"{url.rstrip('/')}/gradio_api/call/chat", method="POST",
                                             data=json.dumps({"data": values}).encode(),
                                             headers={"Content-Type": "application/json"})
            event = json.loads(urllib.request.urlopen(request, timeout=30).read())["event_id"]
            return urllib.request.urlopen(f"{url.rstrip('/')}/gradio_api/call/chat/{event}", timeout=60).read().decode()

        assert "event: complete" in raw([RAIL, "qwen-1.5b", 4, "2023-07"])
        assert "date_to: 'x' is not a date" in raw([RAIL, "qwen-1.5b", 4, "", "x"])
        assert "model, passages: missing; /chat takes 3 values" in raw([RAIL])
    finally:
        demo.close()


def test_a_card_says_where_and_when_its_story_was_printed_and_reprinted(settings, searcher, dump, tmp_path):
    reprint = tmp_path / "upload" / "转载.txt"
    reprint.write_text(XINHUA.replace("2023-07-31 09:40", "2023-08-01 10:00") + "\n", encoding="utf-8")
    app = app_over(settings, Pipeline(settings, searcher, scripted("以政府打算斥资1000亿新谢克尔扩建铁路网络[1]。")))
    app.archive.upload([str(dump), str(reprint)])
    _, sources, turns = final(list(app.respond(RAIL, [], "qwen-1.5b", 4)))
    card = sources.split('id="src-1-1"')[1].split('<div class="rag-quote">')[0]
    assert f"新华社 · 2023-07-31 · {dump.name} · 第 1 段" in card  # the earliest printing is the one shown
    assert "也刊于 also printed in: 新华社 · 2023-08-01 · 以色列总理本雅明·内塔尼亚胡30日说" in card
    assert [p.source for p in turns[0].answer.passages].count(reprint.name) == 0  # one copy of the story


def test_bad_uploads_are_each_refused_with_their_reason_and_nothing_changes(settings, searcher, tmp_path, warnings):
    """Through the chat's upload: an empty file, a 200 MB one (sparse: nothing allocated), a binary
    one and one whose name holds `..` are refused each with its reason; the corpus and the index
    stay as they were. (A `../` path cannot reach the handler as a file name: `intake.accept`
    refuses it, tests/test_intake.py.)"""
    folder = tmp_path / "up"
    folder.mkdir()
    (folder / "empty.txt").write_bytes(b"")
    with (folder / "huge.txt").open("wb") as out:
        out.truncate(200 << 20)
    (folder / "scan.txt").write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 4)
    (folder / "..txt").write_text(XINHUA + "\n", encoding="utf-8")
    before = sorted((p.name, p.read_bytes()) for p in settings.corpus_dir.iterdir())
    pipeline = Pipeline(settings, searcher, scripted("x"))
    app = app_over(settings, pipeline)
    _, _, note = app.archive.upload([str(folder / n) for n in ("empty.txt", "huge.txt", "scan.txt", "..txt")])
    assert "empty.txt is empty" in note and "huge.txt is 200.0 MB" in note
    assert "scan.txt" in note and "holding `..`" in note and "已添加 added" not in note
    assert len(warnings) == 4
    assert sorted((p.name, p.read_bytes()) for p in settings.corpus_dir.iterdir()) == before
    assert pipeline.searcher is searcher  # nothing was added: the index was not rebuilt
