"""Benchmarks that need the LLM: decode speed of our adapter against llama-cpp-python's own."""

from __future__ import annotations

import statistics
import time

from langchain_core.messages import HumanMessage, SystemMessage

from rag.config import Settings
from rag.prompts import load_prompt


def _raw_decode(llama, messages: list[dict], max_tokens: int) -> tuple[int, float]:
    """(tokens, tokens/s after the first) for llama-cpp-python's own streaming chat completion."""
    times = []
    for chunk in llama.create_chat_completion(messages=messages, stream=True, max_tokens=max_tokens,
                                              temperature=0.0, seed=0):
        if (chunk["choices"][0].get("delta") or {}).get("content"):
            times.append(time.perf_counter())
    return len(times), (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


def _adapter_decode(chat, messages, max_tokens: int) -> tuple[int, float]:
    """The same through `LlamaCppChat.stream` (LangChain chunks, callbacks, our lock)."""
    times = []
    for chunk in chat.stream(messages, max_tokens=max_tokens):
        if chunk.content:
            times.append(time.perf_counter())
    return len(times), (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


def decode_speed(settings: Settings, repeats: int = 3, max_tokens: int = 160) -> dict:
    """Decode tokens/s of the llama.cpp adapter and of raw llama-cpp-python, same model and prompt.

    Runs alternate (raw, adapter) so that a change in machine load hits both; greedy, so both
    produce the same tokens. The prompt is evaluated once beforehand and then reused from the
    cache, so only decoding is timed.
    """
    from rag.generate import LlamaCppChat, make_chat_model

    chat = make_chat_model(settings)
    if not isinstance(chat, LlamaCppChat):
        raise ValueError("decode_speed compares against llama-cpp-python: use the llama.cpp backend")
    llama = chat.runtime().llama
    system, user = load_prompt("system"), load_prompt("bench_decode")
    raw_messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    messages = [SystemMessage(system), HumanMessage(user)]
    _raw_decode(llama, raw_messages, 8)  # load and cache the prompt
    raw, adapter = [], []
    for _ in range(repeats):
        raw.append(_raw_decode(llama, raw_messages, max_tokens))
        adapter.append(_adapter_decode(chat, messages, max_tokens))
    raw_speed = statistics.median(s for _, s in raw)
    adapter_speed = statistics.median(s for _, s in adapter)
    return {"model": settings.llm_model, "threads": chat.n_threads, "max_tokens": max_tokens,
            "repeats": repeats, "raw_tokens": [n for n, _ in raw], "adapter_tokens": [n for n, _ in adapter],
            "raw_tokens_per_s": round(raw_speed, 2), "adapter_tokens_per_s": round(adapter_speed, 2),
            "adapter_vs_raw": round(adapter_speed / raw_speed, 4) if raw_speed else None}
