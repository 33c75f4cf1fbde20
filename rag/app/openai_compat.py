"""OpenAI's Chat Completions, as `rag serve` speaks it: the request's messages → a question and its
history, the checked answer → a completion or a stream of chunks (SSE exactly as OpenAI sends it).

- The last message is the question (it must be the user's); earlier user/assistant pairs are the
  history, for follow-ups. System and developer messages are read by no one: the pipeline's own
  prompt decides how it answers. An assistant turn sent back is cut before the sources list its
  reply ended with (`rag.app.service.strip_sources`).
- The reply's content is the *checked* answer with its [n] markers and the sources at its end —
  also when streamed. The stream therefore opens at once (the role, as OpenAI's first chunk) but
  carries the text only once the answer is checked: a stream that had already shown the model's
  words could not take back a sentence the check marks [?], an amount it corrects or a whole answer
  it replaces with a refusal. (The chat window and `rag.stream` show the draft as it is written.)
- Structured citations ride along in an extra field `citations` (n, article, article_id, outlet,
  date, file, paragraph, quote, supported, …) on the message — `choices[0].message` in a completion,
  `choices[0].delta` in the last chunk — and at the top level of both; `abstained` says whether the
  reply is a refusal, which is otherwise an ordinary reply. OpenAI's clients keep unknown fields
  (`completion.model_extra`) or ignore them.
- Search filters are extra body fields: `date_from`, `date_to` ("2023", "2023-07", "2023-07-28") and
  `outlet` (a name or a list), e.g. the SDK's `extra_body={"outlet": "人民日报"}`. OpenAI's sampling
  fields (temperature, max_tokens, …) are accepted and ignored: answers are decoded greedily.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import Any, AsyncIterator

from pydantic import BaseModel, ConfigDict, Field

from rag.answer.types import Answer, Answered, Event
from rag.app.service import answer_dict, reply_text, strip_sources
from rag.errors import BadQuestion

# Roles whose messages are instructions to the model, not turns of the conversation.
INSTRUCTION_ROLES = ("system", "developer")
KEEP_ALIVE_S = 15.0  # the longest silence in a stream while its answer is awaited


class ChatMessage(BaseModel):
    """One message of the conversation; content as text or as OpenAI's list of parts."""

    model_config = ConfigDict(extra="allow")

    role: str = Field(description='"user", "assistant", "system" (read by no one), "developer", "tool"')
    content: str | list[dict[str, Any]] | None = Field(default=None, description="text, or [{type: text, text}]")


class ChatCompletionRequest(BaseModel):
    """The body of POST /v1/chat/completions: OpenAI's, plus the search filter."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "model": "qwen-1.5b", "messages": [{"role": "user", "content": "清泉村去年电商交易额是多少？"}]}]})

    messages: list[ChatMessage] = Field(min_length=1, description="the conversation; the last one is the question")
    model: str = Field(default="", description="a preset from GET /v1/models; empty for the server's default")
    stream: bool = Field(default=False, description="server-sent events, as OpenAI sends them")
    date_from: Any = Field(default=None, description='only articles dated from: "2023", "2023-07", "2023-07-28"')
    date_to: Any = Field(default=None, description="only articles dated up to (inclusive)")
    outlet: Any = Field(default=None, description="only these outlets: a name or a list of names")


def message_text(message: ChatMessage, n: int) -> str:
    """A message's text: its content, or the text parts of a list of parts joined.

    Raises:
        BadQuestion: a part that is not text (an image, audio), naming the message.
    """
    content = message.content
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for part in content:
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise BadQuestion(f"messages[{n}].content: only text parts are read, not {part.get('type')!r}; "
                              f"the archive answers questions in words")
        texts.append(part["text"])
    return "\n".join(texts)


def question_and_history(messages: list[ChatMessage]) -> tuple[Any, list[list[str]]]:
    """The question (the last message) and the earlier turns as [question, answer] pairs.

    Raises:
        BadQuestion: the last turn is not the user's, or a message is not text.
    """
    turns = [(n, m) for n, m in enumerate(messages) if m.role not in INSTRUCTION_ROLES and m.role != "tool"]
    if not turns or turns[-1][1].role != "user":
        last = turns[-1][1].role if turns else messages[-1].role
        raise BadQuestion(f"messages: the last message must be the question, with role \"user\", not {last!r}")
    history: list[list[str]] = []
    asked: str | None = None
    for n, message in turns[:-1]:
        text = message_text(message, n)
        if message.role == "user":
            if asked is not None:  # a question left without an answer
                history.append([asked, ""])
            asked = text
        elif message.role == "assistant":
            history.append([asked or "", strip_sources(text)])
            asked = None
        else:
            raise BadQuestion(f"messages[{n}].role: {message.role!r} is not a role; use user, assistant or system")
    if asked is not None:
        history.append([asked, ""])
    n, last = turns[-1]
    return message_text(last, n), history


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def extras(answer: Answer) -> dict:
    """The fields our clients read and OpenAI's ignore: the structured citations and the refusal flag."""
    shown = answer_dict(answer)
    return {"citations": shown["citations"], "abstained": shown["abstained"]}


def completion(answer: Answer, model: str) -> dict:
    """A `chat.completion` object for a checked answer."""
    message = {"role": "assistant", "content": reply_text(answer), "refusal": None, **extras(answer)}
    return {"id": completion_id(), "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
            **extras(answer)}


def chunk(ident: str, created: int, model: str, delta: dict, finish: str | None = None, **fields) -> dict:
    """One `chat.completion.chunk`."""
    return {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **fields}


def sse(data: dict | str) -> bytes:
    """One server-sent event as OpenAI writes it: ``data: …`` and a blank line."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict:
    """An error as OpenAI's API words it (its SDK raises it with this message)."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


async def chunks(first: Event, events: AsyncIterator[Event], model: str, failure) -> AsyncIterator[bytes]:
    """The SSE of one answer: the role at once, then the checked text with its sources, then the
    citations with finish_reason "stop", then ``[DONE]``.

    While the answer is waited for (behind other questions, or being written) a comment line goes
    out every `KEEP_ALIVE_S`, which SSE readers skip (OpenAI's SDK among them), so that a client or
    proxy with a read timeout does not give up on a long wait.

    Args:
        first: the pipeline's first event, taken before the response started (so that an error
            before it is an HTTP status); events: the rest (`ArchiveService.stream`).
        failure: exception → (status, message) for an error after the stream opened, which is sent
            as OpenAI does, an event holding `error` (the SDK raises it).
    """
    ident, created = completion_id(), int(time.time())
    yield sse(chunk(ident, created, model, {"role": "assistant", "content": ""}))
    pending = None
    try:
        event = first
        while not isinstance(event, Answered):
            # Waited on without being cancelled: cancelling would end the events' generator.
            pending = pending or asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({pending}, timeout=KEEP_ALIVE_S)
            if not done:
                yield b": keep-alive\n\n"
                continue
            event, pending = pending.result(), None
        answer = event.answer
        yield sse(chunk(ident, created, model, {"content": reply_text(answer)}))
        yield sse(chunk(ident, created, model, extras(answer), "stop", **extras(answer)))
    except Exception as exc:  # noqa: BLE001 — the status line is sent: the error goes in the stream
        _, message = failure(exc)
        yield sse(error_body(message, "server_error"))
    finally:
        if pending is not None:  # the client left while the answer was awaited
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        await events.aclose()
    yield sse("[DONE]")


def model_list(models: list[str]) -> dict:
    """GET /v1/models: the presets a request's `model` may name."""
    return {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "rag"} for m in models]}
