"""A served embedder: any OpenAI-compatible ``/v1/embeddings`` (vLLM, Text Embeddings Inference,
Ollama, llama.cpp's server, OpenAI) behind the interface of the in-process one.

Chosen with ``RAG_EMBED_BACKEND=openai``: ``RAG_EMBED_MODEL`` is then the served model's name and
``RAG_EMBED_BASE_URL`` the server's ``…/v1`` URL (``rag.models.embedder`` dispatches here). Decisions:

- Identity. A served model's weights cannot be checksummed from here, so the spec names what the
  client sees: ``openai:<model>@<host:port>``, checksum ``openai:`` + SHA-256 of (base URL, model,
  dimension). An index built at another URL, for another model name or width is stale
  (``rag.search.index.check_fresh``). The same model moved to another URL costs a rebuild: the safe
  side, since two servers may serve one name with different weights or quantisations. The API key
  is left out: it grants access, it does not shape vectors.
- Prefixes. Servers embed exactly what they are sent; e5 models want "query: " / "passage: ", which
  the local backend adds as sentence-transformers prompts. The same name rule
  (``rag.models.embedder.E5_NAME``) makes this client add them, so a served e5 gets the texts a
  local one would.
- Plain strings, floats. langchain-openai's ``OpenAIEmbeddings`` with
  ``check_embedding_ctx_length=False`` sends the texts, not tiktoken ids (which most servers refuse,
  and whose encodings tiktoken would download); ``encoding_format="float"`` because the OpenAI SDK
  otherwise asks for base64, which not every server speaks.
- Vectors are L2-normalised here: servers differ on it (TEI does by default) and the index is inner
  product.
- Failures. The first request, which learns the dimension, is made without retries, so that a
  server that is down is reported at once; later ones retry ``RETRIES`` times (the SDK's backoff, on
  dropped connections, 429 and 5xx) within ``TIMEOUT_S`` each. Every failure is a ModelUnavailable
  naming the URL and what to do; so is a vector of another width than the first.
"""

from __future__ import annotations

import functools
import hashlib
import json
from urllib.parse import urlsplit

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.config import Settings
from rag.errors import ModelUnavailable, RagError
from rag.models.embedder import E5_NAME, E5_PREFIXES, EmbedderSpec

OPENAI_URL = "https://api.openai.com/v1"  # the SDK's default, named so that the spec says it
TIMEOUT_S = 120.0  # per request: a batch on a busy CPU-only server can take tens of seconds
RETRIES = 2
PROBE_TEXT = "dimension probe"
START_HINT = ("start it (e.g. `vllm serve intfloat/multilingual-e5-small --port 8000`, or Text Embeddings "
              "Inference / `ollama serve` / `llama-server --embedding`) or fix RAG_EMBED_BASE_URL; unset "
              "RAG_EMBED_BACKEND to embed in-process instead")


def served_base_url(settings: Settings) -> str:
    """The URL the served embedder is reached at, as it goes into the spec.

    Args:
        settings: ``embed_base_url`` (empty with ``embed_api_key`` set: api.openai.com).

    Returns:
        The URL without a trailing slash.

    Raises:
        RagError: neither a URL nor a key is set, or the URL is not http(s).
    """
    url = settings.embed_base_url.strip().rstrip("/")
    if not url:
        if not settings.embed_api_key:
            raise RagError("the openai embed backend needs a server: set RAG_EMBED_BASE_URL (e.g. "
                           "http://127.0.0.1:8000/v1 for `vllm serve intfloat/multilingual-e5-small`) or "
                           "RAG_EMBED_API_KEY for api.openai.com; or unset RAG_EMBED_BACKEND to embed in-process.")
        return OPENAI_URL
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RagError(f"RAG_EMBED_BASE_URL={settings.embed_base_url!r} is not an http(s) URL; set it to the "
                       "server's /v1 URL, e.g. http://127.0.0.1:8000/v1.")
    return url


def served_spec(base_url: str, model: str, dim: int) -> EmbedderSpec:
    """What identifies a served embedder in an index's manifest (see the module docstring).

    Args:
        base_url: as ``served_base_url`` returns it.
        model: the served model's name.
        dim: the width of its vectors.

    Returns:
        The spec: name ``openai:<model>@<host[:port]>``, path the URL, source "served".
    """
    host = urlsplit(base_url).netloc.rpartition("@")[2]  # never a user:password in the name
    digest = hashlib.sha256(json.dumps([base_url, model, int(dim)]).encode()).hexdigest()
    return EmbedderSpec(f"openai:{model}@{host}", base_url, f"openai:{digest}", "served")


class OpenAIEmbedder(Embeddings):
    """An embedding model behind an OpenAI-compatible server, with the in-process embedder's
    interface (``embed_queries``, ``embed_passages``, ``dim``, ``spec``) and LangChain's."""

    engine = "served"  # what the index manifest records as having computed the vectors

    def __init__(self, base_url: str, model: str, api_key: str = "", *, timeout: float = TIMEOUT_S,
                 retries: int = RETRIES):
        """Connect and learn the model's dimension with one request.

        Args:
            base_url: the server's ``…/v1`` URL.
            model: the served model's name.
            api_key: sent as a bearer token; most local servers want none.
            timeout: seconds per request.
            retries: attempts after a failed request (the first one is never retried).

        Raises:
            ModelUnavailable: langchain-openai is not installed, or the server does not answer well.
        """
        try:
            from langchain_openai import OpenAIEmbeddings
        except ImportError as exc:
            raise ModelUnavailable("the openai embed backend needs langchain-openai: run "
                                   "`pip install 'rag[openai]'`.") from exc
        self.base_url, self.model = base_url, model
        options = dict(model=model, base_url=base_url, api_key=api_key or "not-needed", request_timeout=timeout,
                       check_embedding_ctx_length=False, model_kwargs={"encoding_format": "float"})
        self._client = OpenAIEmbeddings(max_retries=retries, **options)
        self._query_prefix, self._passage_prefix = E5_PREFIXES if E5_NAME.search(model) else ("", "")
        self.dim = 0  # not known until the server says
        self.dim = self._request(OpenAIEmbeddings(max_retries=0, **options), [PROBE_TEXT]).shape[1]
        self.spec = served_spec(base_url, model, self.dim)

    def _request(self, client, texts: list[str]) -> np.ndarray:
        """One request: float32 rows, L2-normalised, checked for count and width."""
        try:
            rows = client.embed_documents(texts, chunk_size=len(texts))
        except Exception as exc:  # the SDK's connection, timeout and status errors, among others
            raise self._unavailable(exc) from exc
        widths = {len(row) for row in rows}
        if len(rows) != len(texts) or len(widths) != 1:
            raise ModelUnavailable(f"the embedding server at {self.base_url} returned {len(rows)} vectors of "
                                   f"widths {sorted(widths)} for {len(texts)} texts; check the server's logs.")
        (width,) = widths
        if self.dim and width != self.dim:
            raise ModelUnavailable(
                f"the embedding server at {self.base_url} returned {width}-dimensional vectors for "
                f"{self.model!r}, not {self.dim} as before: the model behind it changed. Serve the model "
                "the index was built with again, or restart rag and run `rag index` to rebuild it.")
        vectors = np.asarray(rows, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1, norms)

    def _unavailable(self, exc: Exception) -> ModelUnavailable:
        """The error to raise for a failed request, with the URL and the likely fix."""
        status = getattr(exc, "status_code", None)
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        if status is None:
            return ModelUnavailable(f"no embedding server answers at {self.base_url} ({reason}); {START_HINT}.")
        fix = {401: "set RAG_EMBED_API_KEY to a key the server accepts",
               403: "set RAG_EMBED_API_KEY to a key the server accepts",
               404: f"check that RAG_EMBED_BASE_URL ends in /v1 and that the server serves {self.model!r} "
                    f"(`curl {self.base_url}/models`); RAG_EMBED_MODEL names the served model"}.get(
            status, "see the server's logs")
        return ModelUnavailable(f"the embedding server at {self.base_url} refused {self.model!r} "
                                f"(HTTP {status}: {reason}); {fix}.")

    def _embed(self, texts: list[str], prefix: str, batch_size: int, progress: bool) -> np.ndarray:
        texts = [prefix + t for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        from tqdm import tqdm

        size = max(1, batch_size)
        batches = [self._request(self._client, texts[i: i + size])
                   for i in tqdm(range(0, len(texts), size), desc="embedding", unit="batch", disable=not progress)]
        return np.ascontiguousarray(np.concatenate(batches), dtype=np.float32)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Embed questions (with "query: " for an e5 model).

        Args:
            texts: the questions.

        Returns:
            float32 array (n, dim), rows L2-normalised.

        Raises:
            ModelUnavailable: the server failed or changed its vectors' width.
        """
        return self._embed(list(texts), self._query_prefix, 32, False)

    def embed_passages(self, texts: list[str], batch_size: int = 32, show_progress: bool = False) -> np.ndarray:
        """Embed passages to index (with "passage: " for an e5 model).

        Args:
            texts: the passages.
            batch_size: texts per request.
            show_progress: show a progress bar over the requests.

        Returns:
            float32 array (n, dim), rows L2-normalised.

        Raises:
            ModelUnavailable: the server failed or changed its vectors' width.
        """
        return self._embed(list(texts), self._passage_prefix, batch_size, show_progress)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """LangChain interface: passages as lists of floats."""
        return self.embed_passages(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """LangChain interface: one question as a list of floats."""
        return self.embed_queries([text])[0].tolist()


@functools.cache
def _connect(base_url: str, model: str, api_key: str) -> OpenAIEmbedder:
    return OpenAIEmbedder(base_url, model, api_key)


def load_served(settings: Settings) -> OpenAIEmbedder:
    """The served embedder the settings name, connected once per process per URL, model and key.

    Args:
        settings: ``embed_base_url``, ``embed_model`` (the served name), ``embed_api_key``.

    Returns:
        The embedder; its ``spec`` identifies the served model (see the module docstring).

    Raises:
        RagError: the settings name no server.
        ModelUnavailable: langchain-openai is missing, or the server is down or refuses the model.
    """
    return _connect(served_base_url(settings), settings.embed_model.strip(), settings.embed_api_key)
