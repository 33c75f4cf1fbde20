"""The in-process llama.cpp chat model: ``LlamaCppChat``, our adapter over llama-cpp-python.

Why our own adapter: PyPI's ``langchain-llama-cpp`` (0.1.0, alpha) is an HTTP client for
llama.cpp's C++ ``llama-server``, not a binding for in-process llama-cpp-python, and LangChain's
``ChatLlamaCpp`` lives in the sunset ``langchain-community``; the adapter needed is small.

A GGUF is loaded once per process per (path, n_ctx, threads, mmap) and shared. llama-cpp-python reuses
the key/value cache only for the prefix a prompt shares with the *previous* call, so a turn with
another prefix (condensing a follow-up, translating an answer) makes the next question re-read the
system prompt; ``PrefixCache`` keeps that prefix's state aside and puts it back.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel, generate_from_stream
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ChatMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import Field, PrivateAttr

from rag.config import physical_cores
from rag.errors import ModelUnavailable, RagError

LLAMA_CPP_INSTALL = "pip install llama-cpp-python==0.3.36"
LLAMA_CPP_EXTRA = "pip install 'rag[llamacpp]'"  # llama-cpp-python and the bundled presets


# --------------------------------------------------------------------------- llama.cpp


@dataclass
class _LlamaRuntime:
    """One loaded model, shared by every adapter that names the same (path, n_ctx, threads, mmap)."""

    llama: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    stats: dict = field(default_factory=dict)  # filled by the instrumented generate()
    prefix: PrefixCache | None = None
    capture: list | None = None  # when a list: generate() only records the prompt tokens here
    expected: set = field(default_factory=set)  # the prompt kinds announced to `expect`, kept once
    # Guards `expected` alone: `lock` is held for a whole generation, and a check that a kind is
    # kept already must not wait for another user's answer.
    expected_lock: threading.Lock = field(default_factory=threading.Lock)


class _PromptCaptured(Exception):
    """Stops a completion once its prompt tokens are recorded (``_LlamaRuntime.capture``)."""


def _shared_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class PrefixCache:
    """Key/value states of fixed prompt openings, kept aside so that no other turn can evict them.

    The openings are the answer prompt's (system prompt and template, ~170 tokens, ~2.5 s of
    prompt processing on two cores) and the condense prompt's (instructions and examples). Each
    state is a few MB.
    """

    def __init__(self, llama):
        self.llama = llama
        self.entries: list[tuple[list[int], bytes]] = []  # (tokens, state of sequence 0)

    def store(self, tokens: Sequence[int]) -> None:
        """Evaluate ``tokens`` in an empty context and keep the resulting state."""
        import llama_cpp

        llama, tokens = self.llama, list(tokens)
        llama.reset()
        llama.eval(tokens)
        ctx = llama._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
        self.entries = [e for e in self.entries if e[0] != tokens] + [(tokens, ctypes.string_at(buffer, written))]

    def restore(self, tokens: Sequence[int]) -> int:
        """Put back the kept state that covers most of ``tokens``, if it covers more than the
        context now holds.

        Returns:
            How many of ``tokens`` the restored state covers; 0 when nothing was done.
        """
        import llama_cpp

        llama = self.llama
        kept, state = max(self.entries, key=lambda e: _shared_prefix(e[0], tokens), default=([], b""))
        useful = _shared_prefix(kept, tokens)
        if not useful or useful <= _shared_prefix(llama.input_ids[: llama.n_tokens], tokens):
            return 0
        ctx = llama._ctx.ctx
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
        buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        if llama_cpp.llama_state_seq_set_data(ctx, buffer, len(state), 0) != len(state):
            llama.reset()  # the state did not fit: the prompt is evaluated in full
            return 0
        llama.input_ids[: len(kept)] = kept
        llama.n_tokens = len(kept)
        llama._requires_eval = True  # the logits are not those of the restored state
        return useful


_RUNTIMES: dict[tuple[str, int, int, bool], _LlamaRuntime] = {}
_RUNTIMES_LOCK = threading.Lock()


def _instrument(runtime: _LlamaRuntime) -> None:
    """Count prompt, cached-prefix and sampled tokens: llama-cpp-python's streams omit usage.

    ``create_chat_completion`` ends in ``Llama.generate(prompt_tokens, ...)``; wrapping it on the
    instance sees the exact tokens without re-rendering the chat template.
    """
    llama, stats = runtime.llama, runtime.stats
    original = getattr(llama, "generate", None)
    if original is None:
        return
    eos = llama.token_eos() if hasattr(llama, "token_eos") else None

    def generate(tokens, *args, **kwargs):
        tokens = list(tokens)
        if runtime.capture is not None:
            runtime.capture.append(tokens)
            raise _PromptCaptured
        restored = runtime.prefix.restore(tokens) if runtime.prefix else 0
        cached = 0
        previous = getattr(llama, "input_ids", None)
        if previous is not None:
            cached = _shared_prefix(previous[: getattr(llama, "n_tokens", 0)], tokens)
        stats.update(prompt_tokens=len(tokens), cached_tokens=min(cached, len(tokens) - 1),
                     restored_tokens=restored, sampled=0, ended=0)
        for token in original(tokens, *args, **kwargs):
            stats["sampled"] += 1
            stats["ended"] = int(token == eos)
            yield token

    llama.generate = generate


def _load_llama(model_path: str, n_ctx: int, n_threads: int, use_mmap: bool = False) -> _LlamaRuntime:
    """Load a GGUF once per process per (path, n_ctx, threads, mmap); later callers share it."""
    key = (model_path, n_ctx, n_threads, use_mmap)
    with _RUNTIMES_LOCK:
        if key in _RUNTIMES:
            return _RUNTIMES[key]
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ModelUnavailable(
                f"the llama.cpp backend needs llama-cpp-python: run `{LLAMA_CPP_EXTRA}` (or "
                f"`{LLAMA_CPP_INSTALL}`; it compiles, ~8 min on 2 cores), or set RAG_LLM_BACKEND to "
                f"transformers or openai."
            ) from exc
        try:
            llama = Llama(model_path=model_path, n_ctx=n_ctx, n_threads=n_threads,
                          n_threads_batch=n_threads, use_mmap=use_mmap, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise ModelUnavailable(
                f"llama.cpp could not load {Path(model_path).name} ({exc})",
                advice=f"check {model_path} with `rag models --verify`, or lower RAG_LLM_CONTEXT if memory "
                       f"is short."
            ) from exc
        runtime = _RUNTIMES[key] = _LlamaRuntime(llama)
        _instrument(runtime)
        return runtime


def unload_models() -> None:
    """Forget every loaded llama.cpp model (memory is freed once no adapter uses it; the adapters
    that `rag.models.chat.shared_chat_model` keeps still hold theirs)."""
    with _RUNTIMES_LOCK:
        _RUNTIMES.clear()


def _to_chat_dict(message: BaseMessage) -> dict:
    if isinstance(message, SystemMessage):
        role = "system"
    elif isinstance(message, HumanMessage):
        role = "user"
    elif isinstance(message, AIMessage):
        role = "assistant"
    elif isinstance(message, ChatMessage):
        role = message.role
    else:
        raise ValueError(f"LlamaCppChat cannot send a {type(message).__name__}; use system, human "
                         f"or AI messages.")
    return {"role": role, "content": message.text}


class LlamaCppChat(BaseChatModel):
    """In-process llama.cpp chat model: a GGUF file driven by llama-cpp-python.

    The ``Llama`` object is shared per (path, n_ctx, threads, mmap) and used by one caller at a time;
    llama.cpp reuses the key/value cache for the prompt prefix shared with the previous call.
    """

    model_path: str
    n_ctx: int = 4096
    n_threads: int = Field(default_factory=physical_cores)
    max_tokens: int = 256
    temperature: float = 0.0  # 0: greedy (llama.cpp's greedy sampler), deterministic
    top_p: float = 0.95
    top_k: int = 40
    repeat_penalty: float = 1.0
    seed: int = 0
    stop: list[str] | None = None
    use_mmap: bool = False
    """Map the file instead of reading it. llama.cpp repacks most weights into a faster layout at
    load; with a mapped file the original pages it read stay resident too (measured on the
    bundled 1.5B: 1.90 GB resident mapped vs 1.31 GB read, same decode speed). Mapping pays off
    for a model larger than memory, or one shared by several processes."""
    client: Any = Field(default=None, exclude=True)
    """An already built ``Llama``-like object; None loads ``model_path`` on first use."""
    keep_prefixes: bool = True
    """Keep the fixed opening of each kind of prompt announced with `expect` evaluated aside, so
    that a turn of another kind (condensing a follow-up, translating an answer) does not make the
    next prompt re-read it (~2.5 s for the answer prompt's on two cores)."""

    _runtime: _LlamaRuntime | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "llama.cpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": Path(self.model_path).name, "n_ctx": self.n_ctx, "n_threads": self.n_threads,
                "max_tokens": self.max_tokens, "temperature": self.temperature, "top_p": self.top_p,
                "top_k": self.top_k, "repeat_penalty": self.repeat_penalty, "seed": self.seed}

    def runtime(self) -> _LlamaRuntime:
        """The loaded model (loading it on first use)."""
        if self._runtime is None:
            if self.client is not None:
                self._runtime = _LlamaRuntime(self.client)
                _instrument(self._runtime)
            else:
                self._runtime = _load_llama(self.model_path, self.n_ctx, self.n_threads, self.use_mmap)
        return self._runtime

    def keep_prefix(self, *samples: list[BaseMessage]) -> int:
        """Keep the prompt prefix that ``samples`` share cached for good (besides those kept
        before), and evaluate it now.

        Args:
            samples: two or more prompts that differ where questions differ (say, two answer
                prompts with different passages); what they share up to there is kept. With
                no samples, the kept prefixes are forgotten.
        Returns:
            The kept prefix's length in tokens (0 when none was kept).
        """
        runtime = self.runtime()
        with runtime.lock:
            if not samples:
                runtime.prefix = None
                return 0
            runtime.capture = []
            try:
                for messages in samples:
                    try:
                        for _ in runtime.llama.create_chat_completion(
                                messages=[_to_chat_dict(m) for m in messages], max_tokens=1, stream=True):
                            pass
                    except _PromptCaptured:
                        pass
                captured = runtime.capture
            finally:
                runtime.capture = None
            shared = min((_shared_prefix(captured[0], other) for other in captured[1:]), default=0)
            if not shared or not hasattr(runtime.llama, "_ctx"):  # nothing shared, or not llama.cpp's
                return 0
            runtime.prefix = runtime.prefix or PrefixCache(runtime.llama)
            runtime.prefix.store(captured[0][:shared])
        return shared

    def expect(self, *samples: list[BaseMessage]) -> bool:
        """Announce a kind of prompt the caller will send: with `keep_prefixes`, the opening that
        ``samples`` share is kept cached from the first announcement on (once per kind and
        loaded model; later announcements cost nothing).

        Args:
            samples: two or more prompts of the kind that differ where requests differ.
        Returns:
            Whether openings are kept (now or before): then the model is primed with this kind.
        """
        if not self.keep_prefixes or len(samples) < 2:
            return False
        kind = tuple(tuple((m.type, m.text) for m in messages) for messages in samples)
        runtime = self.runtime()
        with runtime.expected_lock:  # the check and the mark together: one caller keeps it
            if kind in runtime.expected:
                return True
            runtime.expected.add(kind)
        try:
            self.keep_prefix(*samples)
        except BaseException:
            with runtime.expected_lock:  # not kept after all: the next announcement tries again
                runtime.expected.discard(kind)
            raise
        return True

    def forget_prefixes(self) -> None:
        """Drop every kept opening (benchmarks compare answering with and without them)."""
        runtime = self.runtime()
        with runtime.expected_lock:
            runtime.expected.clear()
        self.keep_prefix()

    def _request(self, stop: list[str] | None, kwargs: dict) -> dict:
        params = {"temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k,
                  "repeat_penalty": self.repeat_penalty, "max_tokens": self.max_tokens,
                  "seed": self.seed, "stop": list(stop if stop is not None else self.stop or [])}
        params.update(kwargs)
        # llama.cpp samples randomly for negative temperatures; anything <= 0 means greedy here.
        params["temperature"] = max(0.0, float(params["temperature"]))
        return params

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        request = self._request(stop, kwargs)
        chat = [_to_chat_dict(m) for m in messages]
        runtime = self.runtime()
        finish, first = None, None
        with runtime.lock:  # one generation at a time per loaded model
            runtime.stats.clear()
            start = time.perf_counter()
            try:
                for chunk in runtime.llama.create_chat_completion(messages=chat, stream=True, **request):
                    for choice in chunk.get("choices") or ():
                        finish = choice.get("finish_reason") or finish
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            first = first if first is not None else time.perf_counter() - start
                            piece = ChatGenerationChunk(message=AIMessageChunk(content=text))
                            if run_manager:
                                run_manager.on_llm_new_token(text, chunk=piece)
                            yield piece
            except ValueError as exc:
                if "context window" not in str(exc):
                    raise
                raise RagError(f"the question, its passages and the conversation do not fit the model's "
                               f"context ({exc}); ask a shorter question or send a shorter conversation",
                               advice=f"on the server, lower RAG_TOP_K or raise RAG_LLM_CONTEXT (now {self.n_ctx}).") from exc
            elapsed = time.perf_counter() - start
            stats = dict(runtime.stats)
        yield self._final_chunk(finish, stats, first, elapsed)

    def _final_chunk(self, finish, stats, first, elapsed) -> ChatGenerationChunk:
        """An empty chunk carrying finish reason, timings and token usage."""
        metadata: dict[str, Any] = {"finish_reason": finish, "model_name": Path(self.model_path).name,
                                    "total_time_s": round(elapsed, 4)}
        usage = None
        if first is not None:
            metadata["time_to_first_token_s"] = round(first, 4)
        if "prompt_tokens" in stats:
            prompt, cached = stats["prompt_tokens"], stats["cached_tokens"]
            # The end-of-turn token is sampled but is not part of the answer.
            completion = stats["sampled"] - stats["ended"]
            usage = {"input_tokens": prompt, "output_tokens": completion,
                     "total_tokens": prompt + completion, "input_token_details": {"cache_read": cached}}
            metadata["restored_prefix_tokens"] = stats.get("restored_tokens", 0)
            if first:
                metadata["prompt_tokens_per_s"] = round((prompt - cached) / first, 1)
                if completion > 1 and elapsed > first:
                    metadata["decode_tokens_per_s"] = round((completion - 1) / (elapsed - first), 1)
        return ChatGenerationChunk(
            message=AIMessageChunk(content="", response_metadata=metadata, usage_metadata=usage),
            generation_info={"finish_reason": finish},
        )

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        # One code path: llama-cpp-python does the same per-token work streaming or not.
        return generate_from_stream(self._stream(messages, stop=stop, run_manager=run_manager, **kwargs))
