"""Settings: frozen dataclasses with defaults in code, overridden by RAG_* variables; the CPU counts
that thread defaults come from."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import RagError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, which containers and taskset narrow;
    os.cpu_count() counts the whole machine)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def physical_cores() -> int:
    """Physical cores among the usable CPUs: the default LLM thread count (`Settings.llm_threads`),
    since llama.cpp gains nothing from SMT siblings."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    cores = set()
    for cpu in cpus:
        try:
            siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
            cores.add(siblings.read_text().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag"


@dataclass(frozen=True)
class Settings:
    """Everything a run can be configured with; pass one object down, never read globals."""

    corpus_dir: Path = PROJECT_ROOT / "seeds"
    index_dir: Path = PROJECT_ROOT / "vectorstore"
    cache_dir: Path = field(default_factory=_default_cache)
    # A preset name ("e5-small"), a Hugging Face id or a local sentence-transformers directory.
    embed_model: str = "e5-small"
    # Where embeddings are computed: "local" (in-process, sentence-transformers) or "openai" (any
    # OpenAI-compatible /v1/embeddings at embed_base_url, embed_model being the served model's name;
    # rag.models.served). The key is a secret: kept out of the repr (and of the index's manifest).
    embed_backend: str = "local"
    embed_base_url: str = ""
    embed_api_key: str = field(default="", repr=False)
    embed_batch_size: int = 32  # OpenVINO's best on 2 cores (eval/bench/embed-engines.md)
    # What runs a local embedder: "auto" (OpenVINO when installed and able, else torch), "openvino"
    # or "torch" (rag.models.openvino_engine says why OpenVINO is the default).
    embed_engine: str = "auto"
    chunk_max_chars: int = 350
    # How corpus files are read: "auto" (each detected from the file) or one reader for all
    # ("page", "article", "jsonl", "csv", "dump"; rag.ingest.formats).
    corpus_format: str = "auto"
    # Record field names mapped to ours, "body=内容,title=标题" (JSON Lines / CSV; rag.ingest.records).
    field_map: str = ""
    top_k: int = 5
    max_question_chars: int = 2000
    # Vectors from which a FAISS index is HNSW instead of exact (rag.search.index.vector_index).
    hnsw_from: int = 100_000
    # Candidates each retriever contributes before fusion.
    fusion_depth: int = 30
    # Where the vectors live: "faiss" (files in the build folder, in memory) or "milvus"
    # (rag.search.milvus): milvus_uri "" is Milvus Lite inside the build folder, "http://host:19530"
    # a server or cluster, milvus_token its "user:password" or API key.
    store: str = "faiss"
    milvus_uri: str = ""
    milvus_token: str = ""
    # The LLM: backend "llama.cpp" | "transformers" | "openai"; model is a preset name
    # ("qwen-1.5b", "fast"), a local file/folder or a hub id, or the served model's name.
    llm_backend: str = "llama.cpp"
    llm_model: str = "qwen-1.5b"
    llm_base_url: str = ""
    llm_api_key: str = ""
    llm_context: int = 4096
    llm_threads: int = 0  # 0: one per physical core
    llm_max_tokens: int = 256
    llm_temperature: float = 0.0
    llm_seed: int = 0
    # llama.cpp: keep the state of the prompt's fixed opening (system prompt) aside, so that a
    # condense or translation turn does not make the next question re-read it (rag.models.llamacpp).
    llm_keep_prefix: bool = True
    # llama.cpp: map the GGUF file instead of reading it into memory (see LlamaCppChat.use_mmap).
    llm_mmap: bool = False
    # Passages shown to the LLM (of the top_k retrieved) and their characters in the prompt.
    llm_passages: int = 3
    llm_context_chars: int = 360
    # The least share of a question's words the retrieved passages must contain for the LLM to
    # be asked (rag/answer/evidence.py). On eval/sets/public.jsonl the answerable questions' lowest
    # share is 0.29; four of eight off-topic questions are below 0.25, where the gate sits.
    min_coverage: float = 0.25
    # The largest file `rag add` and the chat's upload take into the corpus (rag.ingest.intake).
    max_upload_mb: int = 50
    # Bearer tokens `rag serve` accepts, comma-separated (RAG_API_KEYS; rag.app.keys): required
    # whenever it listens beyond loopback. Secrets: kept out of the repr.
    api_keys: str = field(default="", repr=False)

    def index_key(self) -> tuple:
        """The fields a searcher depends on (index, embedder, fusion): its cache key, so that
        changing a question's passages or model reloads no index."""
        return tuple((name, getattr(self, name)) for name in INDEX_FIELDS)

    def llm_key(self) -> tuple:
        """The fields a chat model depends on: its cache key."""
        return tuple((name, getattr(self, name)) for name in LLM_FIELDS)

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        """Defaults, then RAG_* environment variables, then explicit keyword overrides."""
        values: dict = {}
        for f in dataclasses.fields(cls):
            raw = os.environ.get("RAG_" + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for f in dataclasses.fields(cls):
            if f.name in values and f.type in ("Path", Path):
                values[f.name] = Path(values[f.name]).expanduser()
        return cls(**values)


# What a loaded searcher and a loaded chat model are made of; every other field is read per
# question (top_k, passages, context budget, gate threshold, question length).
INDEX_FIELDS = ("corpus_dir", "index_dir", "cache_dir", "embed_model", "embed_backend", "embed_base_url",
                "embed_api_key", "embed_batch_size", "embed_engine", "chunk_max_chars", "corpus_format", "field_map",
                "hnsw_from", "fusion_depth", "store", "milvus_uri", "milvus_token")
LLM_FIELDS = ("cache_dir", "llm_backend", "llm_model", "llm_base_url", "llm_api_key", "llm_context", "llm_threads",
              "llm_max_tokens", "llm_temperature", "llm_seed", "llm_keep_prefix", "llm_mmap")
# Read per question (or per added file: max_upload_mb; per request: api_keys), so that pipelines
# differing only in them share one searcher and one model.
QUESTION_FIELDS = ("top_k", "max_question_chars", "llm_passages", "llm_context_chars", "min_coverage",
                   "max_upload_mb", "api_keys")


def _coerce(f: dataclasses.Field, raw: str):
    """A RAG_* variable's text as the field's type; RagError names the variable when it is not one."""
    text = raw.strip()
    try:
        if f.type in ("bool", bool):
            return {"1": True, "true": True, "yes": True, "on": True,
                    "0": False, "false": False, "no": False, "off": False}[text.lower()]
        if f.type in ("int", int):
            return int(text)
        if f.type in ("float", float):
            return float(text)
    except (KeyError, ValueError):
        kind = "1 or 0" if f.type in ("bool", bool) else f"a number ({f.type})"
        raise RagError(f"RAG_{f.name.upper()}={raw!r} is not {kind}; fix or unset it.") from None
    if f.type in ("Path", Path):
        return Path(raw).expanduser()
    return raw
