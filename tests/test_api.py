"""`rag serve` through real clients on a loopback server in this process: the `openai` SDK (stream
and not), LangChain's ChatOpenAI, a Dify-shaped /retrieval, whole articles, keys, bad input, and the
MCP tools over streamable HTTP. A scripted chat model answers, quoting the passage it was given."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time

import httpx
import pytest
import uvicorn
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from rag.answer.pipeline import Pipeline
from rag.app.api import build_api, listening_socket
from rag.app.dify import KNOWLEDGE_ID
from rag.app.keys import check_listening, key_matches, key_warnings, read_keys
from rag.app.service import SOURCES_HEADING
from rag.cli import main
from rag.errors import RagError

from fakes import ClosingChat
from helpers import QINGQUAN, free_port

openai = pytest.importorskip("openai")

QINGQUAN_HEADLINE = "山货触网 农户生活更红火"
KEY = "test-key-0123456789abcdef"
# Questions about different seed articles.
QUESTIONS = ["水头镇的“和食堂”面向哪些老人开放？", QINGQUAN, "苍南县建立了多少个党建联盟？",
             "怀宁县试点区流转土地多少亩？", "哪家医院把班车开进了德清县灯塔村？"]


class QuotingChat(BaseChatModel):
    """Answers with the first sentence of the passage [1] it was given, cited; a condense prompt with
    the last question as it is. Its answer belongs to the question asked, whoever else is asking."""

    seen: list = []

    @property
    def _llm_type(self) -> str:
        return "quoting"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        prompt = messages[-1].content
        self.seen.append(prompt)
        if "Rewritten question:" in prompt:
            reply = prompt.rsplit("Last question:", 1)[1].split("\n")[0].strip()
        else:
            text = re.search(r"\[1\] 《[^》]*》\n(.+)", prompt).group(1)
            question = set(prompt.rsplit("Question:", 1)[1].split("\n")[0])
            sentences = [s for s in re.split(r"(?<=[。！？])", text.strip()) if s]
            best = max(sentences, key=lambda s: len(question & set(s)))  # the one most about the question
            reply = best.rstrip("。") + "[1]。"
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=reply))])


@contextlib.contextmanager
def running(app):
    """Serve an ASGI app with uvicorn on a free loopback port in a thread; yields its URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def chat():
    return QuotingChat(seen=[])


@pytest.fixture(scope="module")
def url(seed_settings, seed_searcher, chat):
    app = build_api(seed_settings, pipeline_for=lambda s: Pipeline(s, seed_searcher, chat))
    with running(app) as base:
        yield base


@pytest.fixture(scope="module")
def keyed_url(seed_settings, seed_searcher, chat):
    app = build_api(seed_settings, keys=(KEY, "another-key-0123456789"),
                    pipeline_for=lambda s: Pipeline(s, seed_searcher, chat))
    with running(app) as base:
        yield base


@pytest.fixture
def client(url):
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def ask(client, question=QINGQUAN, **options):
    return client.chat.completions.create(model="qwen-1.5b", messages=[{"role": "user", "content": question}],
                                          **options)


def test_the_openai_sdk_gets_a_checked_answer_with_its_sources_and_citations(client):
    completion = ask(client)
    message = completion.choices[0].message
    assert message.role == "assistant" and completion.choices[0].finish_reason == "stop"
    answer, _, sources = message.content.partition(f"\n\n{SOURCES_HEADING}\n")
    assert "[1]" in answer and f"[1] {QINGQUAN_HEADLINE}" in sources
    citations = completion.model_extra["citations"]
    assert citations == message.model_extra["citations"] and completion.model_extra["abstained"] is False
    first = citations[0]
    assert {"n", "article", "outlet", "date", "file", "paragraph", "quote", "supported", "article_id"} <= set(first)
    assert first["n"] == 1 and first["article"] == QINGQUAN_HEADLINE and first["supported"] is True
    assert first["quote"] in sources and first["article_id"] == f"{first['file']}:{first['article_id'].rsplit(':')[1]}"


def test_the_openai_sdk_streams_the_same_checked_answer(client):
    whole = ask(client).choices[0].message.content
    chunks = list(ask(client, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop" and last.model_extra["citations"][0]["article"] == QINGQUAN_HEADLINE
    assert len({c.id for c in chunks}) == 1 and all(c.object == "chat.completion.chunk" for c in chunks)


def test_the_stream_is_framed_as_openai_sends_it(url):
    body = {"model": "qwen-1.5b", "stream": True, "messages": [{"role": "user", "content": QINGQUAN}]}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=30) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    assert all(e.startswith("data: {") and "\n" not in e for e in events[:-2])
    assert json.loads(events[-3][6:])["choices"][0]["finish_reason"] == "stop"


def test_langchain_chat_openai_gets_a_cited_answer(url):
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=f"{url}/v1", api_key="unused", model="qwen-1.5b", max_retries=0)
    reply = llm.invoke(QINGQUAN)
    assert "[1]" in reply.content and QINGQUAN_HEADLINE in reply.content
    streamed = "".join(chunk.content for chunk in llm.stream(QINGQUAN))
    assert streamed == reply.content


def test_models_lists_the_presets_and_an_unknown_one_is_refused(client):
    assert [m.id for m in client.models.list()] == ["qwen-1.5b", "fast"]
    with pytest.raises(openai.BadRequestError, match="model: unknown model 'gpt-4o'.*qwen-1.5b, fast"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QINGQUAN}])


def test_earlier_turns_are_the_history_without_their_sources_list(client, chat):
    first = ask(client).choices[0].message.content
    chat.seen.clear()
    client.chat.completions.create(model="qwen-1.5b", messages=[
        {"role": "system", "content": "You are helpful."}, {"role": "user", "content": QINGQUAN},
        {"role": "assistant", "content": first}, {"role": "user", "content": [{"type": "text", "text": "那村里呢？"}]}])
    condense = chat.seen[0]
    assert "Rewritten question:" in condense and QINGQUAN in condense and first.split("\n\n")[0] in condense
    assert SOURCES_HEADING not in condense and "You are helpful" not in condense


def test_filters_ride_as_extra_fields_and_a_refusal_is_a_normal_reply(client):
    # The seed pages print no dates: a date filter leaves the search nothing, and the reply says so.
    refused = ask(client, extra_body={"date_from": "2021"})
    assert refused.model_extra["abstained"] is True and refused.model_extra["citations"] == []
    assert refused.choices[0].finish_reason == "stop" and refused.choices[0].message.content.startswith("抱歉")
    assert QINGQUAN_HEADLINE not in refused.choices[0].message.content  # no nearest article: none passed
    assert ask(client, extra_body={"outlet": []}).model_extra["abstained"] is False
    with pytest.raises(openai.BadRequestError, match="date_from: 'yesterday' is not a date"):
        ask(client, extra_body={"date_from": "yesterday"})
    with pytest.raises(openai.BadRequestError, match=r"outlet: must be an outlet name"):
        ask(client, extra_body={"outlet": 7})


def test_bad_input_is_a_4xx_naming_what_is_wrong_and_the_server_goes_on(url, client):
    with pytest.raises(openai.BadRequestError, match="question: the question is 200,000 characters long; the limit is"):
        ask(client, "问" * 200_000)
    post = lambda body, **kw: httpx.post(f"{url}/v1/chat/completions", timeout=30, **kw)  # noqa: E731
    cases = [
        (dict(content=b'{"model": "qwen-1.5b", "messages": [', headers={"content-type": "application/json"}),
         "the body is not valid JSON"),
        (dict(content=b'{"messages": [{"role": "user", "content": "\xff"}]}', headers={"content-type": "application/json"}),
         "the body could not be read as JSON; send a JSON object in UTF-8"),
        (dict(content=b"", headers={"content-type": "application/json"}), "the body is empty"),
        (dict(json={"model": "qwen-1.5b", "messages": "hi"}), "messages: input should be a valid list"),
        (dict(json={"model": "qwen-1.5b", "messages": []}), "messages: list should have at least 1 item"),
        (dict(json={"messages": [{"content": "hi"}]}), "messages.0.role: field required"),
        (dict(json={"messages": [{"role": "user", "content": QINGQUAN}, {"role": "assistant", "content": "x"}]}),
         'the last message must be the question, with role "user"'),
        (dict(json={"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}),
         "messages[0].content: only text parts are read"),
        (dict(content=b'{"messages": [{"role": "user", "content": "\\ud800"}]}',
              headers={"content-type": "application/json"}), "question: the question holds a lone surrogate"),
    ]
    for kwargs, message in cases:
        response = post(None, **kwargs)
        assert response.status_code == 400, (message, response.text)
        assert message in response.json()["error"]["message"], response.text
    too_big = post(None, content=b"x" * (9 << 20), headers={"content-type": "application/json"})
    assert too_big.status_code == 413 and "over 8 MB" in too_big.json()["error"]["message"]
    assert httpx.get(f"{url}/v1/nothing").status_code == 404
    assert "[1]" in ask(client).choices[0].message.content  # still serving


def test_dify_gets_records_it_can_rank_and_filter(url):
    def retrieval(**body):
        body = {"knowledge_id": KNOWLEDGE_ID, "query": QINGQUAN,
                "retrieval_setting": {"top_k": 3, "score_threshold": 0.0}} | body
        return httpx.post(f"{url}/retrieval", json=body, headers={"Authorization": "Bearer any"}, timeout=30)

    records = retrieval().json()["records"]
    assert len(records) == 3 and records[0]["title"] == QINGQUAN_HEADLINE
    assert [r["score"] for r in records] == sorted((r["score"] for r in records), reverse=True)
    assert all(0 <= r["score"] <= 1 and r["content"] and isinstance(r["metadata"], dict) for r in records)
    assert {"article_id", "file", "paragraph", "chunk_id"} <= set(records[0]["metadata"])
    strict = retrieval(retrieval_setting={"top_k": 3, "score_threshold": records[1]["score"] + 1e-4}).json()["records"]
    assert [r["title"] for r in strict] == [records[0]["title"]]
    for condition in ({"name": ["date"], "comparison_operator": "after", "value": "2000"},
                      {"name": "outlet", "comparison_operator": "in", "value": ["浙江日报", "人民日报"]}):
        # The seed pages print no dates or outlets: a filter on either leaves nothing.
        assert retrieval(metadata_condition={"conditions": [condition]}).json()["records"] == []
    missing = retrieval(knowledge_id="other")
    assert missing.status_code == 404 and missing.json()["error_code"] == 2001
    wrong = retrieval(retrieval_setting={"top_k": "many"})
    assert wrong.status_code == 400 and "retrieval_setting.top_k" in wrong.json()["error_msg"]
    long = retrieval(query="问" * 200_000)
    assert long.status_code == 400 and long.json()["error_msg"].startswith("query: the question is 200,000")
    bad = retrieval(metadata_condition={"conditions": [{"name": "author", "comparison_operator": "is", "value": "x"}]})
    assert bad.status_code == 400 and "filters on date and outlet" in bad.json()["error_msg"]


def test_dify_conditions_become_the_search_filter():
    from datetime import date

    from rag.app.dify import MetadataCondition, search_filter
    from rag.errors import BadQuestion

    def made(*conditions, logical="and"):
        return search_filter(MetadataCondition(logical_operator=logical, conditions=[
            {"name": n, "comparison_operator": op, "value": v} for n, op, v in conditions]))

    day = lambda text: date.fromisoformat(text).toordinal()  # noqa: E731
    assert made(("date", "after", "2023-07")).day_from == day("2023-08-01")
    assert made(("date", "≥", "2023-07")).day_from == day("2023-07-01")
    assert made(("date", "before", "2023")).day_to == day("2022-12-31")
    late = made(("date", "<=", "2023-07-28"), ("date", "is", "2023-07"), ("outlet", "in", ["人民日报", "新华社"]),
                ("outlet", "is", "新华社 "))
    assert (late.day_from, late.day_to, late.papers) == (day("2023-07-01"), day("2023-07-28"), ("新华社",))
    assert made(("outlet", "is", "a"), ("outlet", "is", "b")).papers == ("\ue000",)  # none in common: none pass
    assert made(("date", "is", "2023"), logical="or").day_to == day("2023-12-31")
    for conditions, message in ([(("date", "contains", "2023"),), "a date is compared with"],
                                [(("date", "after", "soon"),), "'soon' is not a date"],
                                [(("outlet", "not in", ["a"]),), "an outlet is compared with"]):
        with pytest.raises(BadQuestion, match=message):
            made(*conditions)
    with pytest.raises(BadQuestion, match='"or" over several conditions'):
        made(("date", "is", "2023"), ("outlet", "is", "a"), logical="or")


def test_an_article_is_served_whole_by_the_id_citations_and_records_carry(url, client):
    citation = ask(client).model_extra["citations"][0]
    article = httpx.get(f"{url}/v1/articles/{citation['article_id']}").json()
    assert article["id"] == citation["article_id"] and article["headline"] == QINGQUAN_HEADLINE
    assert citation["quote"] in article["text"] and article["file"] == citation["file"] and article["paragraphs"]
    record = httpx.post(f"{url}/retrieval", json={"knowledge_id": KNOWLEDGE_ID, "query": QINGQUAN,
                                                   "retrieval_setting": {"top_k": 1, "score_threshold": 0}}).json()
    assert record["records"][0]["metadata"]["article_id"] == citation["article_id"]
    gone = httpx.get(f"{url}/v1/articles/{citation['file']}:999")
    assert gone.status_code == 404 and "no article" in gone.json()["error"]["message"]
    outside = httpx.get(f"{url}/v1/articles/..%2F..%2Fetc%2Fpasswd:1")
    assert outside.status_code == 404 and "root:" not in outside.text  # never opened: not a page of the corpus
    assert httpx.get(f"{url}/v1/articles/no-number").status_code == 400


def test_a_timeline_is_served_and_its_bad_input_is_a_400(url):
    # The seed pages carry no dates: the timeline says so rather than drawing an empty chart.
    undated = httpx.get(f"{url}/v1/timeline", params={"topic": "电商"})
    assert undated.status_code == 200 and undated.json()["covered"] is False
    assert "no date" in undated.json()["note"] and undated.json()["entries"] == []
    reversed_range = httpx.get(f"{url}/v1/timeline", params={"topic": "电商", "date_from": "2024", "date_to": "2023"})
    assert reversed_range.status_code == 400 and "2024" in reversed_range.json()["error"]["message"]
    assert httpx.get(f"{url}/v1/timeline", params={"topic": "电商", "granularity": "hour"}).status_code == 400
    assert httpx.get(f"{url}/v1/timeline").status_code == 400  # no topic


def test_keys_are_required_when_configured(keyed_url):
    def sdk(key):
        return openai.OpenAI(base_url=f"{keyed_url}/v1", api_key=key, max_retries=0)

    with pytest.raises(openai.AuthenticationError, match="not one this server accepts"):
        ask(sdk("wrong-key"))
    assert "[1]" in ask(sdk(KEY)).choices[0].message.content
    assert ask(sdk("another-key-0123456789")).model_extra["citations"]
    bare = httpx.post(f"{keyed_url}/v1/chat/completions", json={"messages": [{"role": "user", "content": QINGQUAN}]})
    assert bare.status_code == 401 and bare.headers["www-authenticate"] == "Bearer"
    body = {"knowledge_id": KNOWLEDGE_ID, "query": QINGQUAN, "retrieval_setting": {"top_k": 1, "score_threshold": 0}}
    assert httpx.post(f"{keyed_url}/retrieval", json=body).json()["error_code"] == 1001
    wrong = httpx.post(f"{keyed_url}/retrieval", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error_code"] == 1002
    assert httpx.post(f"{keyed_url}/retrieval", json=body, headers={"Authorization": f"Bearer {KEY}"}).json()["records"]
    assert httpx.get(f"{keyed_url}/v1/articles/x:1").status_code == 401
    assert httpx.post(f"{keyed_url}/mcp", json={}).status_code == 401
    assert httpx.get(f"{keyed_url}/openapi.json").status_code == 200  # the description holds no data


def test_keys_are_read_and_compared_strictly(seed_settings):
    import dataclasses

    assert read_keys(seed_settings, " a-key-0123456789abcdef , b-key-0123456789abcdef,") == (
        "a-key-0123456789abcdef", "b-key-0123456789abcdef")
    assert read_keys(dataclasses.replace(seed_settings, api_keys="env-key-0123456789")) == ("env-key-0123456789",)
    with pytest.raises(RagError, match="key 1 holds spaces"):
        read_keys(seed_settings, "two words")
    assert key_matches(KEY, ("x", KEY)) and not key_matches(KEY[:-1], (KEY,)) and not key_matches("", (KEY,))
    assert len(key_warnings(("short",), on_command_line=True)) == 2 and key_warnings((KEY,), False) == []
    check_listening("127.0.0.1", ())
    check_listening("0.0.0.0", (KEY,))
    with pytest.raises(RagError, match="beyond this machine.*RAG_API_KEYS"):
        check_listening("0.0.0.0", ())


def test_rag_serve_refuses_to_listen_beyond_loopback_without_a_key(capsys, monkeypatch):
    monkeypatch.delenv("RAG_API_KEYS", raising=False)
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "would listen on 0.0.0.0" in err and "RAG_API_KEYS" in err and len(err.splitlines()) == 1


class SlowClosingChat(ClosingChat):
    """A scripted model that writes a word every 50 ms and records whether its stream was closed."""

    def _stream(self, *args, **kwargs):
        for chunk in super()._stream(*args, **kwargs):
            time.sleep(0.05)
            yield chunk


@pytest.mark.slow  # waits out a keep-alive interval
def test_a_long_wait_keeps_the_stream_alive(seed_settings, seed_searcher, monkeypatch):
    from rag.app import openai_compat

    monkeypatch.setattr(openai_compat, "KEEP_ALIVE_S", 0.02)
    reply = "清泉村 去年 电商 交易额 超两亿元[1]。"
    chat = SlowClosingChat(messages=iter([AIMessage(content=reply)]), seen=[], closed=[])
    with running(build_api(seed_settings, pipeline_for=lambda s: Pipeline(s, seed_searcher, chat))) as base:
        body = {"stream": True, "messages": [{"role": "user", "content": QINGQUAN}]}
        raw = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=30).text
    events = raw.split("\n\n")
    assert ": keep-alive" in events and events[-2] == "data: [DONE]"
    content = [json.loads(e[6:])["choices"][0]["delta"].get("content") for e in events if e.startswith("data: {")]
    assert content[1].startswith(reply + f"\n\n{SOURCES_HEADING}\n[1] {QINGQUAN_HEADLINE}")


def test_a_client_leaving_mid_answer_frees_the_llm(seed_settings, seed_searcher):
    import asyncio

    from rag.app.service import ArchiveService

    chat = SlowClosingChat(messages=iter([AIMessage(content="清泉村 去年 电商 交易额 是 超两亿元[1]。")]), seen=[],
                           closed=[])
    service = ArchiveService(seed_settings, lambda s: Pipeline(s, seed_searcher, chat))

    async def leave():
        events = service.stream(service.check(QINGQUAN))
        kinds = [type(await anext(events)).__name__ for _ in range(2)]
        await events.aclose()
        return kinds

    assert asyncio.run(leave()) == ["Retrieved", "Delta"]
    deadline = time.monotonic() + 10
    while not chat.closed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert chat.closed == [True]  # the LLM stopped writing: its stream was closed mid-answer


def test_a_taken_port_is_one_line_naming_the_fix():
    with listening_socket("127.0.0.1", 0) as taken:
        taken.listen(1)
        with pytest.raises(RagError, match=r"cannot serve on 127.0.0.1:\d+ .*pass another --port"):
            listening_socket("127.0.0.1", taken.getsockname()[1])


@pytest.mark.slow  # many clients at once
def test_concurrent_clients_each_get_the_answer_to_their_own_question(url):
    expected = {}
    for question in QUESTIONS:  # the articles each question's answer may cite: its own passages
        found = httpx.post(f"{url}/retrieval", json={"knowledge_id": KNOWLEDGE_ID, "query": question,
                                                      "retrieval_setting": {"top_k": 5, "score_threshold": 0}})
        expected[question] = {r["metadata"]["article_id"] for r in found.json()["records"]}
    answers: dict[str, list] = {q: [] for q in QUESTIONS}

    def user(question):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        for n in range(3):
            completion = ask(client, question, stream=bool(n % 2))
            if not isinstance(completion, openai.types.chat.ChatCompletion):
                completion = list(completion)[-1]
            answers[question].append(completion.model_extra["citations"])

    threads = [threading.Thread(target=user, args=(q,)) for q in QUESTIONS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    cited = {q: {c["article_id"] for citations in replies for c in citations} for q, replies in answers.items()}
    assert all(len(replies) == 3 for replies in answers.values())
    assert sum(bool(c) for c in cited.values()) >= 4, cited  # most are answered, not refused
    assert all(cited[q] <= expected[q] for q in QUESTIONS), (cited, expected)
    assert len(set().union(*cited.values())) >= 4  # the questions' answers differ


def test_the_openapi_document_describes_every_endpoint(url):
    paths = httpx.get(f"{url}/openapi.json").json()["paths"]
    assert {"/v1/models", "/v1/chat/completions", "/retrieval", "/v1/articles/{article_id}", "/v1/search",
            "/v1/timeline"} <= set(paths)
    assert "outlet" in json.dumps(paths["/v1/chat/completions"]) or "ChatCompletionRequest" in json.dumps(paths)
    assert httpx.get(f"{url}/docs").status_code == 200


def test_the_mcp_tools_are_served_over_streamable_http(keyed_url):
    import anyio
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async def run():
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
        async with Client(streamable_http_client(f"{keyed_url}/mcp", http_client=http)) as mcp:
            names = {t.name for t in (await mcp.list_tools()).tools}
            found = await mcp.call_tool("search_articles", {"query": QINGQUAN, "k": 2})
            return names, found

    names, found = anyio.run(run)
    assert names == {"search_articles", "get_article", "ask", "timeline"}
    assert not found.is_error and found.structured_content["passages"][0]["title"] == QINGQUAN_HEADLINE


@pytest.mark.slow  # a short load bench
def test_the_load_bench_counts_replies_and_sees_a_mixed_one(url, monkeypatch):
    from rag.evaluation import serveload

    result = serveload.run_serve_load(url, QUESTIONS[:3], clients=3, seconds=0.3, progress=False)
    assert result["requests"] >= 3 and result["errors"] == 0 and result["mixed"] == 0 and result["changed"] == 0
    assert result["latency_s"]["p50"] is not None and all(q["replies"] >= 1 for q in result["per_question"])
    # Told that no article belongs to any question, it counts every cited reply as mixed.
    monkeypatch.setattr(serveload, "own_articles", lambda url, questions, key="": {q: set() for q in questions})
    result = serveload.run_serve_load(url, QUESTIONS[:2], clients=2, seconds=0.2, progress=False)
    assert result["mixed"] == sum(q["cited"] for q in result["per_question"]) >= 1

@pytest.mark.slow  # the bundled embedder and LLM, greedy
def test_the_bundled_models_answer_through_the_openai_sdk_with_a_checked_citation(tmp_path):
    import shutil

    from rag.answer.pipeline import get_pipeline
    from rag.config import Settings

    from helpers import ROOT

    shutil.copytree(ROOT / "seeds", tmp_path / "seeds")
    settings = Settings.from_env(corpus_dir=tmp_path / "seeds", index_dir=tmp_path / "vectorstore", api_keys="")
    get_pipeline(settings).warm()  # as `rag serve` does before it listens (builds the index, loads the LLM)
    with running(build_api(settings, keys=(KEY,))) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key=KEY, max_retries=0, timeout=600)
        completion = ask(client, "水头镇建设安居小区“和食堂”投入了多少资金？")
        streamed = list(ask(client, "水头镇建设安居小区“和食堂”投入了多少资金？", stream=True))
    content = completion.choices[0].message.content
    answer, _, sources = content.partition(f"\n\n{SOURCES_HEADING}\n")
    citation = completion.model_extra["citations"][0]
    assert "70万" in answer and re.search(r"\[\d\]", answer), content
    assert citation["article"].endswith("强化党建“驱动力”，打开群众幸福门") and citation["supported"], citation
    assert "70万" in citation["quote"] and citation["quote"] in sources
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == content  # greedy: the same answer
