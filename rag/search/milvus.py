"""Milvus as the vector store (`RAG_STORE=milvus`): chunk and sentence vectors in two collections.

Where: `RAG_MILVUS_URI` empty is Milvus Lite (the `milvus-lite` package: embedded, in this process,
its data a folder `milvus.db` inside the build folder); `http://host:19530` is a Milvus server or
cluster, with `RAG_MILVUS_TOKEN` ("user:password" or an API key) when it asks for one.

What runs where: Milvus holds the vectors and runs the dense top-k, the date and outlet filter
inside that search (each row carries `day_from`, `day_to` and `outlet` scalar fields; a sentence
row its chunk's, and `owner`, its chunk's row). BM25 (scipy, `rag.search.keywords`), fusion and the
chunk store (chunks.jsonl) stay in-process, as with FAISS: Milvus's own BM25 is a later step.

Collections: `rag_<tag>_chunks` and `rag_<tag>_sentences`, ``tag`` the unique suffix a build folder
keeps from `.tmp-<pid>-<tag>` to `build-<time>-<tag>`, so that builds never share collections.
`milvus.json` in the build folder names them and the URI, so that a crashed build's collections are
found and dropped with its folder.

Atomic swap: `current` still decides which build is read. With Milvus Lite the collections live in
the build folder, so swapping `current` swaps them and removing the old folder removes them. On a
server, a build writes, flushes and loads its collections before `current` moves, so a process
opening the index sees the old build or the new one, complete, never half. The old build's
collections are dropped when its folder is removed, right after the swap: unlike a FAISS reader,
which keeps serving the old index from memory, a process still searching the old build then gets
IndexMismatch and must reopen the index (`open_searcher`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from rag.config import Settings
from rag.errors import IndexMismatch, RagError
from rag.search.filters import SearchFilter

LITE_FOLDER = "milvus.db"
MARKER = "milvus.json"
OUTLET_CHARS = 512  # VARCHAR length of the outlet field (outlet keys are short names)
INSERT_BATCH = 2000
_log = logging.getLogger(__name__)


def _pymilvus():
    try:
        import pymilvus
    except ImportError as exc:
        raise RagError("RAG_STORE=milvus needs the pymilvus package",
                       "install it with `pip install 'rag[milvus]'` or set RAG_STORE=faiss") from exc
    return pymilvus


def milvus_uri(settings: Settings, folder: Path) -> str:
    """Where a build's collections live: the configured server, or Milvus Lite inside ``folder``."""
    return settings.milvus_uri or str(Path(folder).resolve() / LITE_FOLDER)


def collection_names(folder: Path) -> tuple[str, str]:
    """The chunk and sentence collections of the build in ``folder`` (named by its unique tag)."""
    tag = "".join(ch if ch.isascii() and (ch.isalnum() or ch == "_") else "_" for ch in folder.name.rsplit("-", 1)[-1])
    return f"rag_{tag}_chunks", f"rag_{tag}_sentences"


def _connect(uri: str, token: str):
    """A MilvusClient for ``uri``; RagError saying what to fix when it cannot be reached."""
    pymilvus = _pymilvus()
    try:
        return pymilvus.MilvusClient(uri=uri, token=token) if token else pymilvus.MilvusClient(uri=uri)
    except Exception as exc:  # pymilvus raises its own exceptions and grpc's
        raise RagError(f"cannot reach Milvus at {uri} ({exc})",
                       "start it, or fix RAG_MILVUS_URI / RAG_MILVUS_TOKEN") from exc


def _release(uri: str) -> None:
    """Stop this process's Milvus Lite server of a folder (before it is renamed or removed)."""
    if "://" in uri:
        return
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:
        return
    server_manager_instance.release_server(uri)


def milvus_filter(filters: SearchFilter | None) -> str:
    """The Milvus boolean expression of a filter: the rule of `SearchFilter.mask`, on the rows'
    scalar fields (a day of -1 is an undated chunk, which no date filter passes)."""
    if filters is None:
        return ""
    terms = []
    if filters.has_dates:
        terms.append("day_from >= 0")
        if filters.day_from is not None:
            terms.append(f"day_from >= {int(filters.day_from)}")
        if filters.day_to is not None:
            terms.append(f"day_to <= {int(filters.day_to)}")
    if filters.papers:
        # JSON string literals are Milvus's (backslash escapes); outlet keys are user input.
        terms.append(f"outlet in [{', '.join(json.dumps(p, ensure_ascii=False) for p in filters.papers)}]")
    return " and ".join(terms)


class MilvusStore:
    """One Milvus collection as a `rag.search.stores.VectorStore` (rows keyed by their number)."""

    def __init__(self, client, name: str, ntotal: int, dim: int, hnsw: bool):
        self.client, self.name, self.ntotal, self.dim, self.hnsw = client, name, ntotal, dim, hnsw

    def search(self, query: np.ndarray, depth: int, allowed: np.ndarray | None = None,
               filters: SearchFilter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """See `VectorStore.search`: the filter runs inside Milvus, as an expression (``allowed`` is
        not sent; it only bounds ``depth``)."""
        from rag.search.index import HNSW_EF_SEARCH

        if allowed is not None:
            if filters is None and not allowed.all():  # a mask alone cannot be sent to Milvus
                raise ValueError("MilvusStore.search filters by `filters`; pass it with `allowed`")
            depth = min(depth, int(allowed.sum()))
        if depth <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        params = {"metric_type": "IP"}
        if self.hnsw:
            params["params"] = {"ef": max(HNSW_EF_SEARCH, depth)}
        hits = self._call("search", collection_name=self.name, data=[query[0].tolist()], limit=depth,
                          filter=milvus_filter(filters), output_fields=[], search_params=params)[0]
        return (np.asarray([h["id"] for h in hits], dtype=np.int64),
                np.asarray([h["distance"] for h in hits], dtype=np.float32))

    def vectors(self, ids) -> np.ndarray:
        ids = [int(i) for i in ids]
        rows = self._call("get", collection_name=self.name, ids=ids, output_fields=["vector"])
        by_id = {int(r["id"]): r["vector"] for r in rows}
        if len(by_id) != len(set(ids)):
            raise IndexMismatch(f"Milvus collection {self.name} lacks rows the index names; run `rag index`")
        return np.asarray([by_id[i] for i in ids], dtype=np.float32).reshape(len(ids), self.dim)

    def _call(self, method: str, **kwargs):
        try:
            return getattr(self.client, method)(**kwargs)
        except Exception as exc:  # a collection dropped by a newer build, a server gone
            raise IndexMismatch(f"Milvus could not {method} {self.name} ({exc}); the index may have been "
                                f"rebuilt by another process: reopen it, or run `rag index`") from exc


def write_collections(settings: Settings, folder: Path, chunk_vectors: np.ndarray, sentence_vectors: np.ndarray,
                      owners, spans: np.ndarray, outlets: list[str]) -> dict:
    """Write a build's vectors into Milvus: created, filled, flushed and loaded before this returns.

    Args:
        settings: the store's URI and token, and `hnsw_from` (HNSW from that many rows, else FLAT).
        folder: the build folder (its tag names the collections; Milvus Lite lives inside it).
        chunk_vectors, sentence_vectors: L2-normalised float32 rows.
        owners: each sentence's chunk row.
        spans: (n, 2) first and last ordinal day of each chunk, -1 where unknown.
        outlets: each chunk's outlet key.
    Returns:
        The manifest's record of them: {"uri", "collections"} (no token).
    Raises:
        RagError: pymilvus is missing, or Milvus cannot be reached or refused the rows.
    """
    pymilvus = _pymilvus()
    names = collection_names(folder)
    record = {"uri": settings.milvus_uri, "collections": list(names)}
    (folder / MARKER).write_text(json.dumps(record), encoding="utf-8")  # first: a crash leaves it
    uri = milvus_uri(settings, folder)
    client = _connect(uri, settings.milvus_token)
    owners = np.asarray(owners, dtype=np.int64)
    try:
        for name, vectors, rows, owner in ((names[0], chunk_vectors, np.arange(len(chunk_vectors)), None),
                                           (names[1], sentence_vectors, owners, owners)):
            _create(client, pymilvus.DataType, name, int(chunk_vectors.shape[1]), owner is not None,
                    len(vectors) >= settings.hnsw_from)
            for start in range(0, len(vectors), INSERT_BATCH):
                stop = min(start + INSERT_BATCH, len(vectors))
                batch = [{"id": i, "vector": vectors[i].tolist(), "day_from": int(spans[rows[i], 0]),
                          "day_to": int(spans[rows[i], 1]), "outlet": outlets[rows[i]][:OUTLET_CHARS],
                          **({"owner": int(owner[i])} if owner is not None else {})} for i in range(start, stop)]
                client.insert(collection_name=name, data=batch)
            client.flush(collection_name=name)
            client.load_collection(collection_name=name)
    except RagError:
        raise
    except Exception as exc:
        raise RagError(f"Milvus at {uri} refused the index ({exc}); the previous index is unchanged",
                       "check the server, then run `rag index` again") from exc
    finally:
        client.close()
        _release(uri)  # the folder is renamed next: no Lite server may hold it
    return record


def _create(client, types, name: str, dim: int, with_owner: bool, hnsw: bool) -> None:
    """A new collection for vector rows, with the scalar fields filters read."""
    if client.has_collection(collection_name=name):
        client.drop_collection(collection_name=name)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", types.INT64, is_primary=True)
    schema.add_field("vector", types.FLOAT_VECTOR, dim=dim)
    schema.add_field("day_from", types.INT64)
    schema.add_field("day_to", types.INT64)
    schema.add_field("outlet", types.VARCHAR, max_length=OUTLET_CHARS)
    if with_owner:
        schema.add_field("owner", types.INT64)
    index = client.prepare_index_params()
    # The rule of rag.search.build.vector_index: exact below hnsw_from rows, HNSW (M 32) from there.
    if hnsw:
        index.add_index("vector", index_type="HNSW", metric_type="IP", params={"M": 32, "efConstruction": 80})
    else:
        index.add_index("vector", index_type="FLAT", metric_type="IP")
    # Strong: a build is searched right after it is written (open_searcher rebuilds, then asks).
    client.create_collection(collection_name=name, schema=schema, index_params=index, consistency_level="Strong")


def open_stores(settings: Settings, folder: Path) -> tuple[MilvusStore, MilvusStore]:
    """The chunk and sentence stores of the build in ``folder``.

    Raises:
        IndexMismatch: a collection is missing (dropped, or another server).
        RagError: pymilvus is missing or Milvus cannot be reached.
    """
    uri = milvus_uri(settings, folder)
    client = _connect(uri, settings.milvus_token)
    stores = []
    for name in collection_names(folder):
        if not client.has_collection(collection_name=name):
            raise IndexMismatch(f"the Milvus collection {name} is missing at {uri}; run `rag index` to rebuild it")
        fields = client.describe_collection(collection_name=name)["fields"]
        dim = next(int(f["params"]["dim"]) for f in fields if f["name"] == "vector")
        rows = int(client.get_collection_stats(collection_name=name)["row_count"])
        hnsw = client.describe_index(collection_name=name, index_name="vector").get("index_type") == "HNSW"
        client.load_collection(collection_name=name)
        stores.append(MilvusStore(client, name, rows, dim, hnsw))
    return stores[0], stores[1]


def drop_build(folder: Path, settings: Settings | None) -> None:
    """Drop the collections of a build folder about to be removed (a server's; Lite's go with it)."""
    marker = folder / MARKER
    if not marker.is_file():
        return
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    uri = record.get("uri") or str(folder.resolve() / LITE_FOLDER)
    if "://" not in uri:
        _release(uri)  # the files go with the folder
        return
    try:
        client = _connect(uri, settings.milvus_token if settings is not None else "")
        for name in record.get("collections", []):
            if client.has_collection(collection_name=name):
                client.drop_collection(collection_name=name)
        client.close()
    except Exception as exc:  # an unreachable server must not fail the build that replaced it
        _log.warning("could not drop the Milvus collections of %s at %s: %s", folder.name, uri, exc)
