"""The app's boundary (rag/app/validation.py): every API value checked before anything runs, each
refusal naming its field, errors in the caller's terms, one log line per refusal — on the values
directly, then through the running app with gradio_client and raw HTTP."""

from __future__ import annotations

import json
import logging
import math
import urllib.request

import pytest
from langchain_core.messages import AIMessage

from rag.answer.pipeline import Pipeline
from rag.app.ui import build_app, launch
from rag.app.validation import (MAX_ANSWER_CHARS, MAX_HISTORY_TURNS, Request, check_request, for_caller,
                                missing_arguments)
from rag.config import Settings
from rag.errors import BadQuestion, IndexMismatch, ModelUnavailable, RagError

from fakes import OverflowingChat
from helpers import QINGQUAN, free_port

MODELS = ["qwen-1.5b", "fast"]
REPLY = "清泉村去年交易额超两亿元[1]。"
LONG = "问" * 200_000


@pytest.mark.parametrize("values, field", [
    (dict(question="清泉村去年电商交易额是多少？\ud800"), "question: the question holds a lone surrogate (U+D800) at character 15"),
    (dict(question=LONG), "question: the question is 200,000 characters long"),
    (dict(question=None), "question: the question must be text"),
    (dict(history=5), "history: must be a list of [question, answer] pairs, not a number (5)"),
    (dict(history="清泉村"), "history: must be a list"),
    (dict(history=[None]), "history[0]: must be a [question, answer] pair, not null"),
    (dict(history=[["a", "b", "c"]]), "history[0]: must be a [question, answer] pair"),
    (dict(history=[["问", "答"], ["问", 7]]), "history[1][1]: must be text, not a number (7)"),
    (dict(history=[[LONG, "答"]]), "history[0][0]: 200,000 characters; the limit is 2,000"),
    (dict(history=[["问", "答" * (MAX_ANSWER_CHARS + 1)]]), "history[0][1]: 10,001 characters; the limit is 10,000"),
    (dict(history=[["问\udc00", "答"]]), "history[0][0]: holds a lone surrogate (U+DC00) at character 2"),
    (dict(history=[["问", "答"]] * (MAX_HISTORY_TURNS + 1)), "history: at most 50 earlier turns, not 51"),
    (dict(model="../x.gguf"), "model: unknown model '../x.gguf'; choose one of: qwen-1.5b, fast"),
    (dict(model=3), "model: unknown model 3"),
    (dict(model="x" * 10_000), "model: unknown model 'xxxx"),
    *[(dict(passages=bad), "passages: must be a whole number from 1 to 10 (0 for the default)")
      for bad in ([3], math.inf, -math.inf, math.nan, "abc", "4", 0.5, 11, -1, True)],
])
def test_each_bad_value_is_refused_naming_its_field(values, field):
    with pytest.raises(BadQuestion) as refused:
        check_request(Settings(), MODELS, **{"question": QINGQUAN, **values})
    message = str(refused.value)
    assert message.startswith(field), message
    assert len(message) < 300 and "\n" not in message  # one line, a long value quoted short
    message.encode("utf-8")  # the caller's lone surrogate is named, never echoed


def test_good_values_come_out_checked_and_typed():
    assert check_request(Settings(), MODELS, f"  {QINGQUAN}\u200b ") == Request(QINGQUAN)
    request = check_request(Settings(), MODELS, QINGQUAN, [("问", "答"), ["再问", ""]], "fast", 4.0)
    assert request == Request(QINGQUAN, (("问", "答"), ("再问", "")), "fast", 4)
    assert type(request.passages) is int
    assert check_request(Settings(), MODELS, QINGQUAN, [], "", 0) == Request(QINGQUAN)


def test_a_call_missing_values_is_told_which_and_in_what_order():
    message = str(missing_arguments("/ask", ["question", "history", "model", "passages"], 1))
    assert message == ("history, model, passages: missing; /ask takes 4 values in this order: "
                       "question, history, model, passages (this call sent 1)")


def test_callers_are_told_what_happened_without_the_operators_advice():
    overflow = RagError("the question does not fit the model's context; ask a shorter question",
                        advice="on the server, lower RAG_TOP_K or raise RAG_LLM_CONTEXT (now 4096).")
    assert for_caller(overflow) == "the question does not fit the model's context; ask a shorter question"
    assert str(overflow).endswith("; on the server, lower RAG_TOP_K or raise RAG_LLM_CONTEXT (now 4096).")
    unsplit = ModelUnavailable("no GGUF model 'x': use a preset, e.g. RAG_LLM_MODEL=fast")
    assert "RAG_" not in for_caller(unsplit) and "ModelUnavailable" in for_caller(unsplit)
    damaged = IndexMismatch("the index is damaged; run `rag index`")
    assert for_caller(damaged) == str(damaged)
    assert for_caller(BadQuestion("question: the question is empty")) == "question: the question is empty"


# --------------------------------------------------------------------------- the running app


def call(url: str, api: str, data: str) -> tuple[str, object]:
    """A raw HTTP call of an endpoint with the JSON text ``data`` as its values: (event, payload)."""
    request = urllib.request.Request(f"{url}gradio_api/call/{api}", data=f'{{"data": {data}}}'.encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    event_id = json.loads(urllib.request.urlopen(request, timeout=30).read())["event_id"]
    stream = urllib.request.urlopen(f"{url}gradio_api/call/{api}/{event_id}", timeout=60).read().decode()
    events = [line.removeprefix("event: ") for line in stream.splitlines() if line.startswith("event: ")]
    payloads = [line.removeprefix("data: ") for line in stream.splitlines() if line.startswith("data: ")]
    return events[-1], json.loads(payloads[-1])


def refused(url: str, api: str, data: str) -> str:
    """The message of a call the app must refuse."""
    event, payload = call(url, api, data)
    assert event == "error" and isinstance(payload, dict) and payload["error"], (event, payload)
    return payload["error"]


def answers(url: str) -> None:
    """The app still answers a normal question, by raw HTTP and by gradio_client."""
    from gradio_client import Client

    event, payload = call(url, "ask", json.dumps([QINGQUAN, [], "", 0]))
    assert event == "complete" and payload[0]["text"] == REPLY, payload
    assert Client(url, verbose=False).predict(question=QINGQUAN, api_name="/ask")["text"] == REPLY


@pytest.fixture(scope="module")
def app_url(seed_settings, seed_searcher):
    """One served app for these tests. Its chat model takes prompts of up to 5,000 characters and
    fails beyond, as llama.cpp does; the model "fast" stands for a real fault (a bug)."""
    chat = OverflowingChat(messages=iter([AIMessage(content=REPLY)] * 1000), seen=[], limit=5_000)

    def pipeline_for(settings):
        if settings.llm_model == "fast":
            raise RuntimeError("a bug in the pipeline")
        return Pipeline(settings, seed_searcher, chat)

    demo = build_app(seed_settings, pipeline_for=pipeline_for)
    url = launch(demo, port=free_port(), prevent_thread_lock=True)
    yield url
    demo.close()


Q = json.dumps(QINGQUAN, ensure_ascii=False)
# The bad-input table: endpoint, the values as JSON text, the field its message must begin with.
BAD_INPUT = [
    ("ask", f'["清泉村去年电商交易额是多少？\\ud800", [], "", 0]', "question: the question holds a lone surrogate"),
    ("ask", f'[{Q}, [], "", [3]]', "passages: must be a whole number"),
    ("ask", f'[{Q}, [], "", Infinity]', "passages: must be a whole number"),
    ("ask", f'[{Q}, [], "", -Infinity]', "passages: must be a whole number"),
    ("ask", f'[{Q}, 5, "", 0]', "history: must be a list"),
    ("ask", f'[{Q}, [null], "", 0]', "history[0]: must be a [question, answer] pair"),
    ("ask", f'[{Q}, [["问\\udc00", "答"]], "", 0]', "history[0][0]: holds a lone surrogate"),
    ("ask", f'[{Q}]', "history, model, passages: missing; /ask takes 4 values"),
    ("ask", f'[{Q}, [], "", "abc"]', "passages: must be a whole number"),
    ("ask", f'[{Q}, [], "", NaN]', "passages: must be a whole number"),
    ("ask", f'[{Q}, [], "../x.gguf", 0]', "model: unknown model"),
    ("ask", json.dumps([QINGQUAN, [[LONG, "答"]], "", 0]), "history[0][0]: 200,000 characters"),
    ("chat", json.dumps([LONG, "qwen-1.5b", 4]), "question: the question is 200,000 characters long"),
    ("chat", f'[{Q}, "../x.gguf", 4]', "model: unknown model"),
    ("chat", f'[{Q}, "qwen-1.5b", NaN]', "passages: must be a whole number"),
    ("chat", f'[{Q}]', "model, passages: missing; /chat takes 3 values"),
]


@pytest.mark.slow  # slow tier: a served app (seconds)
def test_malformed_values_get_a_message_naming_their_field(app_url):
    from gradio_client import Client

    for api, data, field in BAD_INPUT[:8]:  # the values of the issue, item 2
        message = refused(app_url, api, data)
        assert message.startswith(field), (data[:80], message)
    client = Client(app_url, verbose=False)
    for values, field in ((dict(passages=[3]), "passages:"), (dict(history=5), "history:"),
                          (dict(history=[None]), "history[0]:"), (dict(question=5), "question:")):
        with pytest.raises(Exception, match=f"^'?{field.replace('[', '.').replace(']', '.')}"):
            client.predict(**{"question": QINGQUAN, **values}, api_name="/ask")
    answers(app_url)


@pytest.mark.slow  # slow tier: a served app (seconds)
def test_the_field_that_is_wrong_is_the_one_named(app_url):
    for bad in ('"abc"', "NaN"):
        message = refused(app_url, "ask", f'[{Q}, [["清泉村在哪里？", "在浙江。"]], "", {bad}]')
        assert message.startswith("passages: must be a whole number") and "history" not in message, message
    answers(app_url)


@pytest.mark.slow  # slow tier: a served app (seconds)
def test_history_is_checked_and_callers_get_no_operator_advice(app_url, caplog):
    assert refused(app_url, "ask", json.dumps([QINGQUAN, [[LONG, "答"]], "", 0])).startswith(
        "history[0][0]: 200,000 characters; the limit is 2,000")
    assert refused(app_url, "ask", json.dumps([QINGQUAN, [["问", "答"]] * 51, "", 0])).startswith(
        "history: at most 50 earlier turns")
    # Turns within the limits whose prompt the model cannot take: what happened, not how to fix the server.
    history = [["清泉村" + "问" * 1_900, "交易额超两亿元。"]] * 3
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rag.app"):
        message = refused(app_url, "ask", json.dumps([QINGQUAN + "那去年呢？", history, "", 0], ensure_ascii=False))
    assert "do not fit the model's context" in message and "shorter conversation" in message
    assert "RAG_" not in message
    terminal = [r.getMessage() for r in caplog.records if r.name.startswith("rag.app")]
    assert len(terminal) == 1 and "raise RAG_LLM_CONTEXT" in terminal[0]  # the operator's advice, in one line
    answers(app_url)


@pytest.mark.slow  # slow tier: a served app (seconds)
def test_the_chat_api_is_checked_like_ask(app_url):
    from gradio_client import Client

    for api, data, field in BAD_INPUT:
        if api == "chat":
            message = refused(app_url, api, data)
            assert message.startswith(field), message
    client = Client(app_url, verbose=False)
    with pytest.raises(Exception, match="question: the question is 200,000 characters long"):
        client.predict(LONG, "qwen-1.5b", 4, api_name="/chat")
    messages, _, _ = client.predict(QINGQUAN, "qwen-1.5b", 4, api_name="/chat")
    assert len(messages) == 2 and "rag-cite" in str(messages[1]["content"])
    answers(app_url)


@pytest.mark.slow  # slow tier: a served app (seconds)
def test_a_hundred_bad_requests_log_one_line_each_and_no_traceback(app_url, caplog, capfd):
    capfd.readouterr()
    with caplog.at_level(logging.INFO):
        for n in range(100):
            api, data, field = BAD_INPUT[n % len(BAD_INPUT)]
            assert refused(app_url, api, data).startswith(field)
    logged = [r for r in caplog.records if r.name.startswith("rag.app")]
    assert len(logged) == 100 and all(r.getMessage().count("\n") == 0 and not r.exc_info for r in logged)
    assert all(" refused: " in r.getMessage() for r in logged)
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err + caplog.text
    # A real fault still gets its traceback in the terminal, and the caller one line.
    caplog.clear()
    with caplog.at_level(logging.INFO):
        message = refused(app_url, "ask", f'[{Q}, [], "fast", 0]')
    assert message.startswith("something went wrong on the server (RuntimeError)") and "a bug" not in message
    assert [bool(r.exc_info) for r in caplog.records if r.name.startswith("rag.app")] == [True]
    answers(app_url)


def test_callers_are_not_told_the_servers_paths():
    from rag.errors import CorpusError

    full_disk = RagError("could not write the index under /srv/rag/vectorstore (No space left on device)")
    assert "/srv" not in for_caller(full_disk) and "RagError" in for_caller(full_disk)
    assert "~/" not in for_caller(CorpusError("no pages in ~/papers; add pages"))
    assert for_caller(BadQuestion("question: 2/3 of it is punctuation")) == "question: 2/3 of it is punctuation"
