"""The embedder's transformer run by OpenVINO: the same model, about 3× the texts per second.

Why: an archive is new text, and embedding it is nearly all of a build. On this product's 2-core
reference machine (a Xeon with AMX), the bundled e5-small embedded 112 news sentences a second
through torch fp32, 260 through torch bf16 autocast and **345 through OpenVINO**, which runs the
matrix products in bf16 on AMX; every vector keeps a cosine ≥ 0.99998 to torch fp32 (measured:
eval/bench/embed-engines.md). Dynamic int8 (torch or ONNX Runtime) was slower here and lost more
(cosine 0.96 min). A CPU without bf16 units runs the same graph in fp32, about torch's speed.

What runs where: only the model's transformer (token ids → token vectors) is converted; the
sentence-transformers modules after it (pooling, dense, normalisation) are the model's own and run
as before, so any model sentence-transformers loads keeps its pooling. A model whose first module
is not a plain Transformer, or whose pooling leaves the prompt out, stays on torch
(``EngineUnavailable``; ``auto`` falls back, ``openvino`` says why).

The vectors are the model's to within that cosine, so they share the model's embedding cache and
an index built through one engine is searched through the other; the index manifest records the
engine. The converted graph is kept under ``cache_dir/models/openvino/`` (one folder per model
checksum and OpenVINO version), written under a temporary name and renamed, so it is converted once.
Its weights are stored in fp16: the compiled model computes in bf16 (or fp32) either way, the vectors
keep their cosine ≥ 0.99998 to torch fp32 (1,500 news-cn sentences), and a served archive's process
holds ~400 MB less than with the fp32 file mapped (999 against 1,393 MB with the embedder loaded).

OpenVINO sends a usage event to Google Analytics when it is imported, and more when it converts,
unless the user opted out; this product promises to run offline and archives can be private, so
OpenVINO is imported and run with its telemetry declined (``_openvino``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import threading
from pathlib import Path

import numpy as np

from rag.errors import ModelUnavailable
from rag.files import make_staging_folder, publish_folder

ENGINES = ("auto", "openvino", "torch")  # Settings.embed_engine
IR_VERSION = "2"  # bump when the conversion below changes what it writes
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class EngineUnavailable(ModelUnavailable):
    """OpenVINO is not installed, or cannot run this model; the message says which and why."""


def check_engine(name: str) -> str:
    """``Settings.embed_engine`` checked and lower-cased.

    Raises:
        ModelUnavailable: it is not one of ENGINES.
    """
    engine = (name or "auto").strip().lower()
    if engine not in ENGINES:
        raise ModelUnavailable(f"RAG_EMBED_ENGINE={name!r} is not one of {', '.join(ENGINES)}; fix or unset it.")
    return engine


def _supported(model) -> None:
    """Raise EngineUnavailable unless the model is a Transformer followed by modules that read only
    token vectors and the attention mask."""
    from sentence_transformers.base.modules.transformer import Transformer

    modules = list(model)
    if not modules or type(modules[0]) is not Transformer:
        raise EngineUnavailable(f"its first module is {type(modules[0]).__name__ if modules else 'missing'}, "
                                "not a plain Transformer")
    for module in modules[1:]:
        if getattr(module, "include_prompt", True) is False:
            raise EngineUnavailable("its pooling leaves the prompt out, which needs sentence-transformers' own encode")


def _openvino():
    """The openvino module, imported with its telemetry declined (its import sends an event)."""
    with _telemetry_declined():
        import openvino

    return openvino


@contextlib.contextmanager
def _telemetry_declined():
    """openvino-telemetry declines by itself in CI (its only switch that needs no consent file in
    the user's home), so OpenVINO's import and converter run as in CI; its choice is made then."""
    before = os.environ.get("CI")
    os.environ["CI"] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CI", None)
        else:
            os.environ["CI"] = before


def _convert(model, target: Path) -> Path:
    """Convert the model's transformer into an OpenVINO IR folder ``target`` (model.xml/.bin)."""
    import torch

    ov = _openvino()
    transformer = model[0].auto_model.eval()

    class TokenVectors(torch.nn.Module):  # keyword arguments: positional ones vary by architecture
        def __init__(self, inner, names):
            super().__init__()
            self.inner, self.names = inner, names

        def forward(self, *tensors):
            return self.inner(**dict(zip(self.names, tensors)), return_dict=True).last_hidden_state

    sample = model.preprocess(["示例 text", "一"], prompt="passage: ")
    names = [n for n in _INPUTS if n in sample]
    tmp = make_staging_folder(target.parent, prefix=f".{target.name}.")
    try:
        with torch.no_grad(), _telemetry_declined():
            graph = ov.convert_model(TokenVectors(transformer, names),
                                     example_input=tuple(sample[n] for n in names))
        for port, name in zip(graph.inputs, names):
            port.get_tensor().set_names({name})
        ov.save_model(graph, str(tmp / "model.xml"), compress_to_fp16=True)
        publish_folder(tmp, target, finished=lambda folder: (folder / "model.xml").is_file())
    except Exception as exc:  # the converter reports unsupported graphs with many error types
        raise EngineUnavailable(f"OpenVINO could not convert it ({type(exc).__name__}: {exc})") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


class OpenVinoEncoder:
    """Token ids → sentence vectors: OpenVINO for the transformer, the model's own modules after it.

    One compiled model serves every thread; inference requests are serialised by a lock, since a
    request is not re-entrant and a search embeds one question at a time anyway.
    """

    def __init__(self, model, compiled):
        self.model = model
        self.compiled = compiled
        self.names = [port.get_any_name() for port in compiled.inputs]
        self.precision = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()  # "bf16", "f32"
        self._lock = threading.Lock()

    def encode(self, texts: list[str], prompt: str, batch_size: int, progress: bool = False) -> np.ndarray:
        """L2-normalised float32 vectors of ``prompt + text`` for each text, in order.

        Texts are batched longest first, as sentence-transformers does, so a batch pads little.
        """
        import torch
        from tqdm import tqdm

        order = np.argsort([-len(t) for t in texts], kind="stable")
        rows: list[np.ndarray | None] = [None] * len(texts)
        for start in tqdm(range(0, len(texts), batch_size), desc="embedding", unit="batch", disable=not progress):
            picked = order[start: start + batch_size]
            features = self.model.preprocess([texts[i] for i in picked], prompt=prompt or None)
            feed = {n: features[n].numpy() for n in self.names}
            with self._lock:
                tokens = self.compiled(feed)[0]
            out = {**features, "token_embeddings": torch.from_numpy(np.array(tokens, dtype=np.float32))}
            with torch.no_grad():
                for module in list(self.model)[1:]:
                    out = module(out)
            vectors = out["sentence_embedding"].float().numpy()
            for i, vector in zip(picked, vectors):
                rows[i] = vector
        matrix = np.stack(rows).astype(np.float32)
        matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        return matrix


def load_encoder(model, checksum: str, cache_dir: Path) -> OpenVinoEncoder:
    """Compile the model's transformer with OpenVINO, converting it on first use.

    Args:
        model: the loaded SentenceTransformer.
        checksum: what identifies its weights (EmbedderSpec.checksum): the converted folder's key.
        cache_dir: Settings.cache_dir.

    Raises:
        EngineUnavailable: OpenVINO is not installed or cannot convert or compile this model.
    """
    try:
        ov = _openvino()
    except ImportError:
        raise EngineUnavailable("OpenVINO is not installed (`pip install openvino`)") from None
    _supported(model)
    key = hashlib.sha256(f"{checksum}\0{ov.__version__}\0{IR_VERSION}".encode()).hexdigest()[:16]
    folder = Path(cache_dir) / "models" / "openvino" / key
    if not (folder / "model.xml").is_file():
        _convert(model, folder)
    import torch

    # As many threads as torch was given (embedder._configure_threads: the usable CPUs, or the
    # user's OMP_NUM_THREADS), which OpenVINO's own thread pool would not read.
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": torch.get_num_threads()}
    try:
        core = ov.Core()
        compiled = core.compile_model(core.read_model(str(folder / "model.xml")), "CPU", config)
    except Exception as exc:  # a damaged folder or an unsupported CPU: convert again next time
        shutil.rmtree(folder, ignore_errors=True)
        raise EngineUnavailable(f"OpenVINO could not compile it ({type(exc).__name__}: {exc})") from exc
    return OpenVinoEncoder(model, compiled)


def encoder_for(model, spec, engine: str, cache_dir: Path) -> OpenVinoEncoder | None:
    """The OpenVINO encoder for ``engine`` "openvino" or "auto" (None: torch). "auto" falls back
    to torch, saying why; "openvino" that cannot run raises.

    Args:
        model: the loaded SentenceTransformer.
        spec: its EmbedderSpec (name and checksum).
        engine: checked by ``check_engine``.
        cache_dir: Settings.cache_dir.
    """
    if engine == "torch":
        return None
    try:
        return load_encoder(model, spec.checksum, cache_dir)
    except EngineUnavailable as exc:
        if engine == "openvino":
            raise EngineUnavailable(f"RAG_EMBED_ENGINE=openvino cannot run {spec.name!r}: {exc}; "
                                    "set RAG_EMBED_ENGINE=torch (or auto).") from None
        print(f"note: embedding {spec.name!r} through torch, not OpenVINO: {exc}.", file=sys.stderr)
        return None
