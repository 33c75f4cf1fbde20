"""Fakes for the unit tier: a hash embedder and scripted chat models (instant, model-free)."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

import numpy as np
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage


@dataclass(frozen=True)
class FakeSpec:
    name: str
    checksum: str


class HashEmbedder:
    """Embeds text as hashed character uni- and bigrams: deterministic, instant, model-free."""

    dim = 256

    def __init__(self, name: str = "hash-256"):
        self.spec = FakeSpec(name, "sha256:" + hashlib.sha256(name.encode()).hexdigest())
        self.calls = 0

    def _embed(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            grams = list(text) + [text[i:i + 2] for i in range(len(text) - 1)]
            for gram in grams:
                h = int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=4).digest(), "little")
                out[row, h % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)

    def embed_queries(self, texts):
        return self._embed(list(texts))

    def embed_passages(self, texts, batch_size=32, show_progress=False):
        return self._embed(list(texts))


class CountingEmbedder(HashEmbedder):
    """A hash embedder that records the texts it embeds and can be told to fail after n calls."""

    def __init__(self, fail_after: int | None = None):
        super().__init__()
        self.texts: list[str] = []
        self.fail_after = fail_after

    def embed_passages(self, texts, batch_size=32, show_progress=False):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt  # as Ctrl+C would
        self.texts += list(texts)
        return super().embed_passages(texts, batch_size, show_progress)


class ScriptedChat(GenericFakeChatModel):
    """Replies with the given texts in order and records the prompts it saw."""

    seen: list = []

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.seen.append(messages)
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def scripted(*replies):
    return ScriptedChat(messages=iter([AIMessage(content=r) for r in replies]), seen=[])


class GatedChat(ScriptedChat):
    """A scripted chat model that starts writing only when `gate` is set."""

    gate: threading.Event

    def _stream(self, *args, **kwargs):
        assert self.gate.wait(10)
        yield from super()._stream(*args, **kwargs)


class FailingOnceChat(ScriptedChat):
    """A scripted chat model whose first answer breaks off after a few words, as a lost server would."""

    failed: list

    def _stream(self, *args, **kwargs):
        for n, chunk in enumerate(super()._stream(*args, **kwargs)):
            if n == 1 and not self.failed:
                self.failed.append(True)
                raise ConnectionError("the LLM server went away")
            yield chunk


class ClosingChat(ScriptedChat):
    """A scripted chat model that records whether the stream it was reading was closed early."""

    closed: list

    def _stream(self, *args, **kwargs):
        try:
            yield from super()._stream(*args, **kwargs)
        except GeneratorExit:
            self.closed.append(True)
            raise


class PrefixKeepingChat(ScriptedChat):
    """A scripted chat model that records the kinds of prompt it is told to expect."""

    announced: list

    def expect(self, *samples):
        self.announced.append(samples)
        return True


class OverflowingChat(ScriptedChat):
    """A scripted chat model with a context of ``limit`` characters, failing as the llama.cpp adapter
    does when a prompt is longer: a RagError whose advice is for the operator."""

    limit: int

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        from rag.errors import RagError

        size = sum(len(m.content) for m in messages)
        if size > self.limit:
            raise RagError(f"the question, its passages and the conversation do not fit the model's context "
                           f"(Requested tokens ({size}) exceed context window of {self.limit}); ask a shorter "
                           f"question or send a shorter conversation",
                           advice=f"on the server, lower RAG_TOP_K or raise RAG_LLM_CONTEXT (now {self.limit}).")
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
