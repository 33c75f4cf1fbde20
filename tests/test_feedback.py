"""The ratings store (rag.app.feedback): durable across restarts and crashes, safe under concurrent
writes, versioned; and `rag feedback export`."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
import threading

import pytest

from rag.app.feedback import COLUMNS, MAX_COMMENT_CHARS, SCHEMA_VERSION, FeedbackStore, export_rows, feedback_path
from rag.cli import main
from rag.config import Settings
from rag.errors import RagError

from helpers import QINGQUAN, ROOT

# A rated answer as the chat records it (the seed page 山货触网 农户生活更红火).
CITATION = {"n": 1, "article": "山货触网 农户生活更红火", "source": "001_zhejiang_daily.txt", "paragraph": 2,
            "quote": "清泉村去年电商交易额超两亿元", "score": 0.81, "supported": True, "chunk_id": "001:3:2",
            "label": "山货触网 农户生活更红火", "paper": "浙江日报", "date": "2023-07-28", "page": None,
            "provenance": "浙江日报 · 2023-07-28", "also_in": []}


def rate(store: FeedbackStore, key: str, rating: int = 1, user: str | None = None) -> int:
    return store.rate(key, rating, question=QINGQUAN, answer="清泉村去年电商交易额超两亿元[1]。", citations=[CITATION],
                      rewritten="清泉村去年的电商交易额", model="qwen-1.5b", user=user)


def test_a_rating_and_its_comment_survive_a_new_store_on_the_same_file(tmp_path):
    path = tmp_path / "chat" / "feedback.sqlite3"
    first = FeedbackStore(path)
    row_id = rate(first, "answer-1", 1, user="alice")
    assert first.comment("answer-1", "  数字对，出处也对 \x00") is True
    del first
    rows = FeedbackStore(path).rows()  # the app restarted
    assert len(rows) == 1 and rows[0]["id"] == row_id
    row = rows[0]
    assert (row["question"], row["rewritten"], row["model"], row["user"], row["rating"], row["comment"]) == (
        QINGQUAN, "清泉村去年的电商交易额", "qwen-1.5b", "alice", 1, "数字对，出处也对")
    assert row["citations"] == [CITATION] and row["answer"].endswith("[1]。") and row["created"].endswith("+00:00")


@pytest.mark.slow  # over a second; the fast tier stays within its budget (CI runs both)
def test_rows_written_by_a_process_that_dies_without_closing_are_kept(tmp_path):
    path = tmp_path / "feedback.sqlite3"
    script = ("import os, sys; sys.path.insert(0, 'tests'); from rag.app.feedback import FeedbackStore; "
              f"s = FeedbackStore({str(path)!r}); "
              "[s.rate(f'k{i}', 1, question='q', answer='a', citations=[]) for i in range(3)]; "
              "s.comment('k2', 'last words'); os._exit(9)")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 9, done.stderr
    rows = FeedbackStore(path).rows()
    assert [r["answer_key"] for r in rows] == ["k0", "k1", "k2"] and rows[2]["comment"] == "last words"


@pytest.mark.slow  # 400 committed SQLite writes: seconds
def test_concurrent_ratings_from_many_threads_are_all_kept(tmp_path):
    path = tmp_path / "feedback.sqlite3"
    stores = [FeedbackStore(path), FeedbackStore(path)]  # two apps on one file, besides the threads
    errors = []
    start = threading.Barrier(8)

    def user(u: int):
        try:
            start.wait()
            for i in range(25):
                store = stores[i % 2]
                rate(store, f"u{u}-a{i}", 1 if i % 2 else -1, user=f"user{u}")
                store.comment(f"u{u}-a{i}", f"comment {u}/{i}")
        except Exception as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=user, args=(u,)) for u in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = stores[0].rows()
    assert len(rows) == 200 and len({r["id"] for r in rows}) == 200
    assert all(r["comment"] == "comment {}/{}".format(*r["answer_key"][1:].split("-a")) for r in rows)


def refusing(times: int, message: str = "database is locked"):
    """sqlite3.connect that turns the first ``times`` calls away at once, as SQLite does while the
    last connection to a WAL file checkpoints it (no busy timeout helps there)."""
    real, calls = sqlite3.connect, []

    def connect(*args, **kwargs):
        calls.append(1)
        if len(calls) <= times:
            raise sqlite3.OperationalError(message)
        return real(*args, **kwargs)
    return connect, calls


def test_a_call_turned_away_by_a_passing_lock_is_made_again_and_kept(tmp_path, monkeypatch):
    import rag.app.feedback as feedback
    from rag.app.conversation import ConversationStore
    connect, calls = refusing(2)
    monkeypatch.setattr(feedback.sqlite3, "connect", connect)
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    rate(store, "answer-1")
    assert len(calls) == 3 and [r["answer_key"] for r in store.rows()] == ["answer-1"]
    conversations = ConversationStore(tmp_path / "conversations.sqlite3")
    calls.clear()
    conversations.save("alice", {"turns": []})
    assert len(calls) == 3 and conversations.load("alice") == {"turns": []}


def test_other_errors_and_a_lock_that_stays_are_reported_not_hidden(tmp_path, monkeypatch):
    import rag.app.feedback as feedback
    connect, calls = refusing(10**6, "disk I/O error")
    monkeypatch.setattr(feedback.sqlite3, "connect", connect)
    with pytest.raises(RagError, match="disk I/O error"):
        rate(FeedbackStore(tmp_path / "feedback.sqlite3"), "k")
    assert len(calls) == 1  # not a lock: made once
    connect, calls = refusing(10**6)
    monkeypatch.setattr(feedback.sqlite3, "connect", connect)
    monkeypatch.setattr(feedback, "BUSY_TIMEOUT_S", 0.3)
    with pytest.raises(RagError, match="database is locked"):
        rate(FeedbackStore(tmp_path / "feedback.sqlite3"), "k")
    assert 3 <= len(calls) < 30  # tried again with growing pauses, then given up


def test_rating_again_changes_the_row_and_taking_it_back_keeps_it(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    first = rate(store, "answer-1", 1)
    store.comment("answer-1", "good")
    assert rate(store, "answer-1", -1) == first  # one row per answer
    rate(store, "answer-1", 0)
    rows = store.rows()
    assert len(rows) == 1 and rows[0]["rating"] == 0 and rows[0]["comment"] == "good"
    assert store.comment("never-rated", "x") is False and len(store.rows()) == 1
    with pytest.raises(ValueError, match="rating must be 1, -1 or 0"):
        rate(store, "answer-2", 5)
    store.comment("answer-1", "长" * (MAX_COMMENT_CHARS + 50))
    assert len(store.rows()[0]["comment"]) == MAX_COMMENT_CHARS


def test_a_newer_schema_or_a_file_that_is_no_database_is_refused_not_overwritten(tmp_path):
    newer = tmp_path / "newer.sqlite3"
    with sqlite3.connect(newer) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RagError, match="newer version of rag .*move the file away"):
        rate(FeedbackStore(newer), "k")
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"these are not the ratings" * 100)
    with pytest.raises(RagError, match="not a database this version can read"):
        rate(FeedbackStore(junk), "k")
    assert junk.read_bytes() == b"these are not the ratings" * 100


def test_export_formats_hold_every_column():
    rows = [{**dict.fromkeys(COLUMNS, ""), "id": 1, "rating": -1, "citations": [CITATION], "comment": 'a "quoted",\nline'}]
    lines = export_rows(rows, "jsonl").splitlines()
    assert len(lines) == 1 and json.loads(lines[0]) == rows[0]
    parsed = list(csv.DictReader(io.StringIO(export_rows(rows, "csv"))))
    assert len(parsed) == 1 and parsed[0]["comment"] == 'a "quoted",\nline' and json.loads(parsed[0]["citations"]) == [CITATION]
    with pytest.raises(RagError, match="unknown export format 'xml'; use one of: jsonl, csv"):
        export_rows(rows, "xml")


def test_rag_feedback_export_writes_the_ratings_of_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    path = feedback_path(Settings.from_env())
    assert main(["feedback", "export"]) == 0  # nothing rated yet: nothing written, no file made
    out = capsys.readouterr()
    assert out.out == "" and "0 ratings from" in out.err and not path.exists()
    store = FeedbackStore(path)
    rate(store, "a1", 1, user="alice")
    rate(store, "a2", -1)
    store.comment("a2", "引用的段落没有这个数字")
    assert main(["feedback", "export"]) == 0
    out = capsys.readouterr()
    rows = [json.loads(line) for line in out.out.splitlines()]
    assert [(r["answer_key"], r["rating"], r["user"]) for r in rows] == [("a1", 1, "alice"), ("a2", -1, None)]
    assert rows[1]["comment"] == "引用的段落没有这个数字" and rows[0]["citations"][0]["quote"] == CITATION["quote"]
    assert f"2 ratings from {path}" in out.err
    target = tmp_path / "ratings.csv"
    assert main(["feedback", "export", "--format", "csv", "--out", str(target)]) == 0
    table = list(csv.DictReader(target.open(encoding="utf-8")))
    assert [r["answer_key"] for r in table] == ["a1", "a2"] and list(table[0]) == list(COLUMNS)
    assert main(["feedback", "export", "--out", str(tmp_path / "missing" / "x.jsonl")]) == 2
    assert "cannot write" in capsys.readouterr().err
