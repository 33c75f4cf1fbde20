"""Chat-model backends, all LangChain ``BaseChatModel``s, chosen by name in one place.

``make_chat_model(settings)`` picks ``settings.llm_backend``:

- ``"llama.cpp"`` (default): ``LlamaCppChat`` (``rag.models.llamacpp``), our small adapter over
  in-process llama-cpp-python, running a bundled GGUF preset (see ``rag.models.gguf``) or any local
  ``.gguf`` file.
- ``"transformers"``: a Hugging Face id or local folder (or a GGUF preset, dequantised) through
  langchain-huggingface's ``ChatHuggingFace`` over ``HuggingFacePipeline``; GPU when available.
- ``"openai"``: any OpenAI-compatible server at ``settings.llm_base_url`` through langchain-openai.

Backends are imported lazily inside their branch, so only the chosen one has to be installed.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGenerationChunk

from rag.config import Settings, physical_cores
from rag.errors import ModelUnavailable, RagError

BACKENDS = ("llama.cpp", "transformers", "openai")


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
            from rag.models.gguf import resolve_gguf
            from rag.models.llamacpp import LlamaCppChat

            return LlamaCppChat(
                model_path=str(resolve_gguf(name, settings)),
                n_ctx=settings.llm_context,
                n_threads=settings.llm_threads or physical_cores(),
                max_tokens=settings.llm_max_tokens,
                temperature=settings.llm_temperature,
                seed=settings.llm_seed,
                use_mmap=settings.llm_mmap,
                keep_prefixes=settings.llm_keep_prefix,
            )
        case "transformers":
            return _transformers_chat(name, settings)
        case "openai":
            return _openai_chat(name, settings)
        case other:
            raise RagError(f"unknown LLM backend {other!r}; set RAG_LLM_BACKEND to one of: "
                           f"{', '.join(BACKENDS)}.")


_CHATS: dict[tuple, BaseChatModel] = {}
_CHATS_LOCK = threading.Lock()


def shared_chat_model(settings: Settings) -> BaseChatModel:
    """The process's chat model for these LLM settings (`Settings.llm_key`), built once: settings
    that differ only per question (passages, top_k) share it."""
    key = settings.llm_key()
    with _CHATS_LOCK:
        if key not in _CHATS:
            _CHATS[key] = make_chat_model(settings)
        return _CHATS[key]


def expect_prompt(model: BaseChatModel, samples: Sequence[Sequence[BaseMessage]]) -> bool:
    """Tell the model that prompts of this kind will come, as two or more samples that differ
    where requests differ. llama.cpp keeps their shared opening cached (`LlamaCppChat.expect`);
    other backends have nothing to prepare.

    Returns:
        Whether the model keeps the opening (and so is primed with it).
    """
    expect = getattr(model, "expect", None)
    return bool(expect(*samples)) if expect is not None else False


def warm_up(model: BaseChatModel, messages: Sequence[BaseMessage] | None = None) -> None:
    """Generate one token so the first real question doesn't pay for loading the model.

    Args:
        model: a chat model from ``make_chat_model``.
        messages: optional prompt to prime with; passing the real system prompt also fills
            llama.cpp's prefix cache with it.
    """
    model.invoke(list(messages or [HumanMessage(content="你好")]), max_tokens=1)


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
            f"`pip install 'rag[transformers]'` ({exc})."
        ) from exc
    from rag.models.gguf import PRESETS, resolve_gguf

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
            f"Face id that is cached (to download one, with a network, set HF_HUB_OFFLINE=0 "
            f"TRANSFORMERS_OFFLINE=0), or use RAG_LLM_BACKEND=llama.cpp with a preset."
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
                               "`pip install 'rag[openai]'`.") from exc
    cls, extra = ChatOpenAI, {}
    if settings.llm_base_url:
        # llama-cpp-python's server penalises repeated tokens unless told not to (1.1), unlike the
        # in-process adapter and llama.cpp's own server; without a penalty, greedy answers are the
        # same in and out of process. Servers that do not know the field ignore it.
        extra = {"extra_body": {"repeat_penalty": 1.0}}
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
        **extra,
    )
