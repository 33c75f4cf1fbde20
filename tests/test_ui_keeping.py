"""What the chat keeps (rag.app.keeping, rag.app.conversation): ratings from the thumbs, the
conversation after a reload (browser or login), "Clear conversation", the Markdown export, and a
kept conversation from a browser that does not check out."""

from __future__ import annotations

import copy
import gc
import json
from pathlib import Path

import gradio as gr
import pytest

from rag.answer.pipeline import Pipeline
from rag.app.conversation import MAX_KEPT_TURNS, turns_from_json, turns_to_json
from rag.app.keeping import EMPTY
from rag.app.ui import ChatApp

from fakes import scripted
from helpers import QINGQUAN

REPLY = "清泉村去年交易额超两亿元[1]。"
SKIP = type(gr.skip())


@pytest.fixture
def seen(monkeypatch):
    """The warnings and notes the page would show."""
    shown: list[str] = []
    monkeypatch.setattr(gr, "Warning", lambda message, *a, **k: shown.append(message))
    monkeypatch.setattr(gr, "Info", lambda message, *a, **k: shown.append(message))
    return shown


@pytest.fixture
def make_app(seed_settings, seed_searcher, tmp_path):
    """A ChatApp answering with scripted replies, keeping its ratings and conversations in tmp_path
    (a second one on the same folder: the app restarted)."""
    def build(*replies) -> ChatApp:
        chat = scripted(*replies)
        return ChatApp(seed_settings, pipeline_for=lambda chosen: Pipeline(chosen, seed_searcher, chat),
                       keep_dir=tmp_path / "kept")

    return build


def ask(app: ChatApp, question: str, turns=None):
    """The last update of one question: (messages, sources, textbox, turns)."""
    return list(app.respond(question, turns or [], "qwen-1.5b", 4))[-1]


def like(index: int, liked) -> gr.LikeData:
    return gr.LikeData(None, {"index": index, "value": ["…"], "liked": liked})


def test_a_thumb_records_the_answer_and_the_comment_joins_its_row(make_app, seen):
    app = make_app(REPLY, REPLY)
    _, _, _, turns = ask(app, QINGQUAN)
    row, box, key = app.keeping.rate(turns, like(1, False), gr.Request(username="alice"))
    assert row["visible"] is True and "👎" in box["label"] and key == turns[0].key
    app.keeping.add_comment(key, "数字对，但不是去年的")
    (rated,) = app.keeping.feedback.rows()
    assert (rated["question"], rated["answer"], rated["rating"], rated["user"], rated["model"]) == (
        QINGQUAN, REPLY, -1, "alice", "qwen-1.5b")
    assert rated["comment"] == "数字对，但不是去年的" and seen == ["评论已记录，谢谢 · Comment noted, thank you"]
    assert rated["rewritten"] == ""  # a first question is searched as asked
    assert rated["citations"][0]["article"] == "山货触网 农户生活更红火" and "两亿元" in rated["citations"][0]["quote"]
    assert make_app().keeping.feedback.rows() == [rated]  # the app restarted: the rating is still there
    row, _, key = app.keeping.rate(turns, like(1, ""), gr.Request())  # the same thumb again: taken back
    assert row["visible"] is False and key == "" and app.keeping.feedback.rows()[0]["rating"] == 0


def test_only_a_finished_answer_can_be_rated(make_app, seen):
    app = make_app(REPLY)
    _, _, _, turns = ask(app, QINGQUAN)
    for index in (0, 3, -1):  # the question itself; past the end
        assert all(isinstance(u, SKIP) for u in app.keeping.rate(turns, like(index, True), gr.Request()))
    assert app.keeping.feedback.rows() == [] and len(seen) == 3 and "finished answer" in seen[0]


def test_the_conversation_comes_back_after_a_reload_and_goes_on(make_app, seen):
    app = make_app(REPLY, "清泉村去年的电商交易额是多少？", "交易额超两亿元[1]。")
    messages, sources, _, turns = ask(app, QINGQUAN)
    browser, download = app.keeping.keep(turns, gr.Request(session_hash="tab-1"))
    exported = open(download["value"], encoding="utf-8").read()
    assert download["interactive"] is True and QINGQUAN in exported and "山货触网 农户生活更红火" in exported
    stored = json.loads(json.dumps(browser))  # through the page's localStorage
    again, panel, restored, offered = app.keeping.restore(stored, gr.Request(session_hash="tab-2"))
    assert again == messages and panel == sources and offered["interactive"] is True
    assert [t.key for t in restored] == [t.key for t in turns] and restored[0].answer.citations == turns[0].answer.citations
    follow, _, _, turns = ask(app, "那去年呢？", restored)  # the follow-up reads the restored conversation
    assert len(turns) == 2 and "searched as: 清泉村去年的电商交易额是多少？" in follow[2]["content"]
    app.keeping.rate(turns, like(3, True), gr.Request())  # the follow-up rated: its rewritten query kept
    assert [(r["question"], r["rewritten"]) for r in app.keeping.feedback.rows()] == [("那去年呢？", "清泉村去年的电商交易额是多少？")]
    assert seen == []


def test_with_a_login_the_conversation_is_kept_on_the_server_for_that_user(make_app, seen):
    app = make_app(REPLY)
    messages, _, _, turns = ask(app, QINGQUAN)
    browser, _ = app.keeping.keep(turns, gr.Request(username="alice"))
    assert isinstance(browser, SKIP)  # nothing of a login's conversation is left in the browser
    restarted = make_app()
    again, _, restored, _ = restarted.keeping.restore(EMPTY, gr.Request(username="alice"))
    assert again == messages and restored[0].answer.text == REPLY
    assert all(isinstance(u, SKIP) for u in restarted.keeping.restore(EMPTY, gr.Request(username="bob")))
    kept, download, row, key = restarted.keeping.forget(gr.Request(username="alice"))  # "Clear conversation"
    assert kept == EMPTY and download["value"] is None and download["interactive"] is False and row["visible"] is False
    assert all(isinstance(u, SKIP) for u in make_app().keeping.restore(EMPTY, gr.Request(username="alice")))
    assert seen == []


def tampered(data: dict, change) -> dict:
    data = copy.deepcopy(data)
    change(data)
    return data


def test_a_kept_conversation_that_does_not_check_out_is_dropped_and_the_page_starts_afresh(make_app, seen):
    app = make_app(REPLY)
    _, _, _, turns = ask(app, QINGQUAN)
    good = json.loads(json.dumps(turns_to_json(turns)))
    answer = lambda d: d["turns"][0]["answer"]  # noqa: E731
    bad = [
        "not a conversation", [1, 2], {"format": 99, "turns": []},
        tampered(good, lambda d: answer(d)["passages"][0].update(paragraph="2")),
        tampered(good, lambda d: answer(d)["citations"][0].update(supported="yes")),
        tampered(good, lambda d: answer(d).update(text="长" * 20_001)),
        tampered(good, lambda d: answer(d).update(timings={"total_s": "soon"})),
        tampered(good, lambda d: answer(d)["passages"][0].pop("text")),
        tampered(good, lambda d: d["turns"][0].update(question="")),
        tampered(good, lambda d: d["turns"][0].update(key="someone-else's answer")),
        tampered(good, lambda d: d["turns"][0].update(answer=None)),
        tampered(good, lambda d: d.update(turns=d["turns"] * (MAX_KEPT_TURNS + 1))),
    ]
    for value in bad:
        assert all(isinstance(u, SKIP) for u in app.keeping.restore(value, gr.Request())), value
    assert seen == []  # a line in the log; the user simply starts afresh
    restored = turns_from_json(good, app.settings.max_question_chars)
    assert restored[0].answer.passages == turns[0].answer.passages  # and the good one checks out


def test_a_question_left_mid_answer_is_not_kept(make_app):
    app = make_app(REPLY)
    _, _, _, turns = ask(app, QINGQUAN)
    updates = app.respond("清泉村有多少人做电商？", turns, "qwen-1.5b", 4)
    *_, pending = next(updates)  # asked, not answered: the user reloads now
    data = turns_to_json(pending)
    assert len(pending) == 2 and [t["question"] for t in data["turns"]] == [QINGQUAN]
    updates.close()


def test_the_exported_conversations_go_with_the_chat(make_app, seen):
    app = make_app(REPLY)
    _, _, _, turns = ask(app, QINGQUAN)
    _, download = app.keeping.keep(turns, gr.Request(session_hash="tab-1"))
    folder = Path(download["value"]).parent.parent
    assert folder.name.startswith("rag-export-") and folder.is_dir()
    keeping = app.keeping
    del app, keeping.app, keeping  # the chat closed (or its process exiting): no conversation left behind
    gc.collect()
    assert not folder.exists()
