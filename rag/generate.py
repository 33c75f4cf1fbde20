"""Chat-model backends, all LangChain ``BaseChatModel``s, chosen by name in one place.

``make_chat_model(settings)`` picks ``settings.llm_backend``:

- ``"llama.cpp"`` (default): ``LlamaCppChat``, our small adapter over in-process llama-cpp-python,
  running a bundled GGUF preset (see ``rag.gguf``) or any local ``.gguf`` file.
- ``"transformers"``: a Hugging Face id or local folder (or a GGUF preset, dequantised) through
  langchain-huggingface's ``ChatHuggingFace`` over ``HuggingFacePipeline``; GPU when available.
- ``"openai"``: any OpenAI-compatible server at ``settings.llm_base_url`` through langchain-openai.

Why our own llama.cpp adapter: PyPI's ``langchain-llama-cpp`` (0.1.0, alpha) is an HTTP client for
llama.cpp's C++ ``llama-server``, not a binding for in-process llama-cpp-python, and LangChain's
``ChatLlamaCpp`` lives in the sunset ``langchain-community``; the adapter needed is ~150 lines.

Backends are imported lazily inside their branch, so only the chosen one has to be installed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel, generate_from_stream
from langchain_core.messages import (AIMessage, AIMessageChunk, BaseMessage, ChatMessage,
                                     HumanMessage, SystemMessage)
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import Field, PrivateAttr

from rag.config import Settings
from rag.errors import ModelUnavailable, RagError

BACKENDS = ("llama.cpp", "transformers", "openai")
LLAMA_CPP_INSTALL = "pip install llama-cpp-python==0.3.36"


def make_chat_model(settings: Settings, model: str | None = None) -> BaseChatModel:
    """Build the chat model that ``settings.llm_backend`` names.

    Args:
        settings: backend, model, sampling and runtime settings.
        model: overrides ``settings.llm_model`` (a preset name, a path, a hub id or a served name).

    Returns:
        A LangChain chat model. A bundled GGUF preset is assembled here if needed (once, seconds);
        llama.cpp weights are loaded on the first call (``warm_up`` does it ahead of time).

    Raises:
        RagError: unknown backend name.
        ModelUnavailable: the model or the backend's package is missing (the message says what to run).
    """
    name = model or settings.llm_model
    match settings.llm_backend:
        case "llama.cpp":
            from rag.gguf import resolve_gguf

            return LlamaCppChat(
                model_path=str(resolve_gguf(name, settings)),
                n_ctx=settings.llm_context,
                n_threads=settings.llm_threads or physical_cores(),
                max_tokens=settings.llm_max_tokens,
                temperature=settings.llm_temperature,
                seed=settings.llm_seed,
            )
        case "transformers":
            return _transformers_chat(name, settings)
        case "openai":
            return _openai_chat(name, settings)
        case other:
            raise RagError(f"unknown LLM backend {other!r}; set RAG_LLM_BACKEND to one of: "
                           f"{', '.join(BACKENDS)}.")


def warm_up(model: BaseChatModel, messages: Sequence[BaseMessage] | None = None) -> None:
    """Generate one token so the first real question doesn't pay for loading the model.

    Args:
        model: a chat model from ``make_chat_model``.
        messages: optional prompt to prime with; passing the real system prompt also fills
            llama.cpp's prefix cache with it.
    """
    model.invoke(list(messages or [HumanMessage(content="你好")]), max_tokens=1)


def physical_cores() -> int:
    """Physical cores this process may use (llama.cpp gains nothing from SMT siblings)."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    cores = set()
    for cpu in cpus:
        try:
            siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
            cores.add(siblings.read_text().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


# --------------------------------------------------------------------------- llama.cpp


@dataclass
class _LlamaRuntime:
    """One loaded model, shared by every adapter that names the same (path, n_ctx, threads)."""

    llama: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    stats: dict = field(default_factory=dict)  # filled by the instrumented generate()


_RUNTIMES: dict[tuple[str, int, int], _LlamaRuntime] = {}
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
        cached = 0
        previous = getattr(llama, "input_ids", None)
        if previous is not None:
            for a, b in zip(previous[: getattr(llama, "n_tokens", 0)], tokens):
                if a != b:
                    break
                cached += 1
        stats.update(prompt_tokens=len(tokens), cached_tokens=min(cached, len(tokens) - 1),
                     sampled=0, ended=0)
        for token in original(tokens, *args, **kwargs):
            stats["sampled"] += 1
            stats["ended"] = int(token == eos)
            yield token

    llama.generate = generate


def _load_llama(model_path: str, n_ctx: int, n_threads: int) -> _LlamaRuntime:
    """Load a GGUF once per process per (path, n_ctx, threads); later callers share it."""
    key = (model_path, n_ctx, n_threads)
    with _RUNTIMES_LOCK:
        if key in _RUNTIMES:
            return _RUNTIMES[key]
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ModelUnavailable(
                f"the llama.cpp backend needs llama-cpp-python: run `{LLAMA_CPP_INSTALL}` (it compiles, "
                f"~8 min on 2 cores), or set RAG_LLM_BACKEND to transformers or openai."
            ) from exc
        try:
            llama = Llama(model_path=model_path, n_ctx=n_ctx, n_threads=n_threads,
                          n_threads_batch=n_threads, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise ModelUnavailable(
                f"llama.cpp could not load {model_path} ({exc}); check the file with "
                f"`python -m rag.gguf --verify`, or lower RAG_LLM_CONTEXT if memory is short."
            ) from exc
        runtime = _RUNTIMES[key] = _LlamaRuntime(llama)
        _instrument(runtime)
        return runtime


def unload_models() -> None:
    """Forget every loaded llama.cpp model (memory is freed once no adapter uses it)."""
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

    The ``Llama`` object is shared per (path, n_ctx, threads) and used by one caller at a time;
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
    client: Any = Field(default=None, exclude=True)
    """An already built ``Llama``-like object; None loads ``model_path`` on first use."""

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
                self._runtime = _load_llama(self.model_path, self.n_ctx, self.n_threads)
        return self._runtime

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
                raise RagError(f"the prompt does not fit the model's context ({exc}); lower "
                               f"RAG_TOP_K or raise RAG_LLM_CONTEXT (now {self.n_ctx}).") from exc
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


# --------------------------------------------------------------------------- transformers


def _transformers_chat(name: str, settings: Settings) -> BaseChatModel:
    """ChatHuggingFace over a local text-generation pipeline (GPU when torch sees one)."""
    try:
        import torch
        from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline
        from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline
    except ImportError as exc:
        raise ModelUnavailable(
            f"the transformers backend needs langchain-huggingface, transformers and torch: run "
            f"`pip install langchain-huggingface transformers torch` ({exc})."
        ) from exc
    from rag.gguf import PRESETS, resolve_gguf

    source, extra = name, {}
    if name in PRESETS or name.endswith(".gguf"):
        # transformers dequantises GGUF (needs the `gguf` package): slow on CPU, but offline.
        gguf = resolve_gguf(name, settings)
        source, extra = str(gguf.parent), {"gguf_file": gguf.name}
    cuda = torch.cuda.is_available()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **extra)
        lm = AutoModelForCausalLM.from_pretrained(
            source, dtype=torch.bfloat16 if cuda else torch.float32, **extra)
    except (OSError, ValueError, ImportError) as exc:
        raise ModelUnavailable(
            f"transformers could not load {name!r} ({exc}); give a local model folder or a Hugging "
            f"Face id that is cached or reachable, or use RAG_LLM_BACKEND=llama.cpp with a preset."
        ) from exc
    greedy = settings.llm_temperature <= 0
    generation = {"max_new_tokens": settings.llm_max_tokens, "do_sample": not greedy,
                  "return_full_text": False}
    if greedy:  # the model's generation_config may ask for sampling; clear its knobs too
        lm.generation_config.temperature = lm.generation_config.top_p = None
        lm.generation_config.top_k = None
    else:
        generation["temperature"] = settings.llm_temperature
        torch.manual_seed(settings.llm_seed)
    pipe = pipeline("text-generation", model=lm, tokenizer=tokenizer,
                    device=0 if cuda else -1, **generation)
    llm = HuggingFacePipeline(pipeline=pipe, model_id=name, pipeline_kwargs=generation)
    return _stopping_chat_class(ChatHuggingFace)(llm=llm, tokenizer=tokenizer, model_id=name)


def _stopping_chat_class(base: type) -> type:
    """ChatHuggingFace + stop strings and ``max_tokens``, which it ignores for local pipelines."""

    class StoppingChatHuggingFace(base):
        def _pipeline_kwargs(self, stop, kwargs):
            extra = dict(kwargs.pop("pipeline_kwargs", None) or {})
            if "max_tokens" in kwargs:
                extra["max_new_tokens"] = kwargs.pop("max_tokens")
            if stop:
                extra["stop_sequence"] = list(stop)
            if extra:
                kwargs["pipeline_kwargs"] = extra
            return kwargs

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            kwargs = self._pipeline_kwargs(stop, kwargs)
            result = super()._generate(messages, stop=None, run_manager=run_manager,
                                       stream=False, **kwargs)
            for generation in result.generations:
                generation.message.content = _cut_at_stop(generation.message.text, stop)[0]
            return result

        def _stream(self, messages, stop=None, run_manager=None, **kwargs):
            kwargs = self._pipeline_kwargs(stop, kwargs)
            stop = [s for s in stop or [] if s]
            held = ""  # a tail that may be the start of a stop string
            for chunk in super()._stream(messages, stop=None, run_manager=None, **kwargs):
                text, hit = _cut_at_stop(held + chunk.text, stop)
                keep = 0 if hit else _stop_prefix_len(text, stop)
                text, held = text[: len(text) - keep], text[len(text) - keep:]
                if text:
                    if run_manager:
                        run_manager.on_llm_new_token(text)
                    yield ChatGenerationChunk(message=AIMessageChunk(content=text))
                if hit:
                    return
            if held:
                yield ChatGenerationChunk(message=AIMessageChunk(content=held))

    return StoppingChatHuggingFace


def _cut_at_stop(text: str, stop: Sequence[str] | None) -> tuple[str, bool]:
    """Text up to the first stop string, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop or () if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def _stop_prefix_len(text: str, stop: Sequence[str]) -> int:
    """Length of the longest tail of ``text`` that could begin a stop string."""
    return max((n for s in stop for n in range(min(len(s) - 1, len(text)), 0, -1)
                if s.startswith(text[len(text) - n:])), default=0)


# --------------------------------------------------------------------------- openai


def _openai_chat(name: str, settings: Settings) -> BaseChatModel:
    """ChatOpenAI against any OpenAI-compatible server (llama.cpp server, vLLM, Ollama, OpenAI)."""
    if not settings.llm_base_url and not settings.llm_api_key:
        raise RagError("the openai backend needs a server: set RAG_LLM_BASE_URL (e.g. "
                       "http://127.0.0.1:8000/v1 for `python -m llama_cpp.server --model FILE`) or "
                       "RAG_LLM_API_KEY for api.openai.com.")
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as exc:
        raise ModelUnavailable("the openai backend needs langchain-openai: run "
                               "`pip install langchain-openai`.") from exc
    cls = ChatOpenAI
    if settings.llm_base_url:
        class CompatibleChatOpenAI(ChatOpenAI):
            """Also sends ``max_tokens``: langchain-openai sends only ``max_completion_tokens``,
            which some OpenAI-compatible servers (llama-cpp-python's among them) ignore."""

            def _get_request_payload(self, input_, *, stop=None, **kwargs):
                payload = super()._get_request_payload(input_, stop=stop, **kwargs)
                if payload.get("max_completion_tokens") is not None:
                    payload.setdefault("max_tokens", payload["max_completion_tokens"])
                return payload

        cls = CompatibleChatOpenAI
    return cls(
        model=name,
        base_url=settings.llm_base_url or None,
        api_key=settings.llm_api_key or "not-needed",
        temperature=settings.llm_temperature,
        max_tokens=settings.llm_max_tokens,
        seed=settings.llm_seed,
        streaming=True,
        stream_usage=True,
    )
