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
    from rag.generate import make_chat_model
    from rag.llamacpp import LlamaCppChat

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


def follow_up_ttft(settings: Settings, questions: list[str], pairs: int = 6) -> dict:
    """Time to first token of follow-up questions, with the kept prompt prefix and without.

    A follow-up is condensed first (a turn with another prompt, which evicts llama.cpp's context),
    so without the kept prefix the answer prompt is read in full. Each follow-up is asked both
    ways, alternating which goes first, so a change in machine load hits both; greedy decoding
    gives the same answer both ways, which the result checks.

    Args:
        settings: the configuration to measure (llama.cpp backend).
        questions: consecutive pairs (earlier question, follow-up); ``pairs`` of them are used.
    """
    from rag.pipeline import Pipeline

    pipeline = Pipeline(settings)
    _, chat = pipeline._ensure_loaded()
    if not hasattr(chat, "keep_prefix"):
        raise ValueError("the kept prefix is a llama.cpp feature: use the llama.cpp backend")
    samples = pipeline._prefix_samples()
    timings: dict[str, list[float]] = {"kept": [], "not kept": []}
    same = True
    for i in range(min(pairs, len(questions) // 2)):
        earlier, question = questions[2 * i], questions[2 * i + 1]
        texts = set()
        for mode in ("kept", "not kept") if i % 2 == 0 else ("not kept", "kept"):
            chat.keep_prefix(*(samples if mode == "kept" else ()))
            answer = pipeline.ask(question, history=[(earlier, "")])
            timings[mode].append(answer.timings["ttft_s"] - answer.timings["condense_s"])
            texts.add(answer.text)
        same = same and len(texts) == 1
    chat.keep_prefix(*samples)
    medians = {mode: round(statistics.median(values), 3) for mode, values in timings.items()}
    return {"model": settings.llm_model, "follow_ups": len(timings["kept"]),
            "answer_ttft_s_p50": medians, "saved_s_p50": round(medians["not kept"] - medians["kept"], 3),
            "answer_ttft_s": {mode: [round(v, 3) for v in values] for mode, values in timings.items()},
            "same_answers": same,
            "method": "TTFT of the answer after the condense turn (ttft_s - condense_s); "
                      "each follow-up asked with and without the kept prefix, order alternating"}
