"""The served embedder (rag.models.served) against a real OpenAI-compatible /v1/embeddings on loopback,
an http.server thread whose vectors are the hash embedder's: what it receives, what the index finds."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import shutil
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from rag.config import Settings
from rag.errors import IndexMismatch, ModelUnavailable, RagError
from rag.models.embedder import load_embedder, resolve_embedder
from rag.models.served import _connect  # its cache, cleared between tests
from rag.search.build import build_index
from rag.search.index import check_fresh, read_manifest
from rag.search.retrieve import open_searcher

from fakes import CountingEmbedder, HashEmbedder
from helpers import QINGQUAN, SEEDS, free_port

pytest.importorskip("langchain_openai")

E5 = "intfloat/multilingual-e5-small"
# Two of the seed pages (清泉村 and 白洪潘 are in them): half the build time of all five.
SEED_PAGES = ("002_11b752b66f07f274.txt", "004_a4961472c067a0e4.txt")
QUESTIONS = [QINGQUAN, "清泉村猕猴桃直播卖了多少单？", "白洪潘是谁？", "How much did Qingquan village sell online last year?"]


class _Embeddings(BaseHTTPRequestHandler):
    """OpenAI's POST /v1/embeddings, answered with the server's HashEmbedder vectors. Its model gives
    e5's prefixes no weight, so that its vectors are the directly built HashEmbedder's: what it was
    sent shows the prefixes, what the index finds shows the vectors."""

    def do_POST(self):
        server = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        if self.path != "/v1/embeddings":
            return self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
        texts = [re.sub(r"^(query|passage): ", "", t) for t in body["input"]]
        vectors = server.embedder.embed_passages(texts)[:, : server.width] * server.scale
        data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]
        tokens = sum(len(t) for t in body["input"])
        self._send(200, {"object": "list", "data": data, "model": body["model"],
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    def _send(self, status, payload):
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def embedding_server():
    """A loopback server on a free port; ``.url`` is its /v1 URL, ``.requests`` what it was sent."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Embeddings)
    httpd.requests, httpd.embedder, httpd.width, httpd.scale = [], HashEmbedder(), HashEmbedder.dim, 1.0
    httpd.url = f"http://127.0.0.1:{httpd.server_port}/v1"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(autouse=True)
def _fresh_connections():
    """Each test connects anew: a port of an earlier test's server may come round again."""
    _connect.cache_clear()
    yield
    _connect.cache_clear()


@pytest.fixture
def server():
    with embedding_server() as httpd:
        yield httpd


def _served(settings: Settings, url: str, model: str = E5, folder: str = "served") -> Settings:
    return dataclasses.replace(settings, embed_backend="openai", embed_base_url=url, embed_model=model,
                               index_dir=settings.index_dir.parent / folder)


def _texts(requests) -> list[str]:
    return [t for r in requests for t in r["body"]["input"]]


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The seeds indexed with the hash embedder directly: its searcher and the texts it embedded."""
    root = tmp_path_factory.mktemp("served-local")
    (root / "seeds").mkdir()
    for name in SEED_PAGES:
        shutil.copy(SEEDS / name, root / "seeds" / name)
    settings = Settings(corpus_dir=root / "seeds", index_dir=root / "vectorstore", cache_dir=root / "cache")
    counting = CountingEmbedder()
    return open_searcher(settings, embedder=counting, progress=False), counting.texts


@pytest.fixture(scope="module")
def built(local):
    """The seeds indexed through the loopback server as a served e5: its settings, the server and
    what the build sent it (a module's worth of tests read them; none writes)."""
    settings = local[0].settings
    with embedding_server() as httpd:
        served = _served(settings, httpd.url)
        build_index(served, progress=False)  # the embedder comes from the settings: the dispatch is tested
        yield served, httpd, list(httpd.requests)


def test_an_index_built_through_the_server_finds_what_the_hash_embedder_finds(local, built):
    served, httpd, _ = built
    remote = open_searcher(served, auto_build=False, progress=False)  # fresh: its manifest names the server
    embedder = remote.embedder
    assert type(embedder).__name__ == "OpenAIEmbedder" and embedder.dim == HashEmbedder.dim
    assert embedder.spec.name == f"openai:{E5}@127.0.0.1:{httpd.server_port}"
    assert (embedder.spec.source, embedder.spec.path) == ("served", httpd.url)
    for question in QUESTIONS:
        got = [(p.chunk_id, round(p.dense_score, 5)) for p in remote.search(question, 5)]
        want = [(p.chunk_id, round(p.dense_score, 5)) for p in local[0].search(question, 5)]
        assert got == want, question
    texts = [p.text for p in local[0].search(QINGQUAN, 5)]
    np.testing.assert_allclose(embedder.embed_passages(texts, batch_size=2),
                               HashEmbedder().embed_passages(texts), atol=1e-6)


def test_a_served_e5_is_sent_the_prefixes_a_local_e5_gets(local, built):
    served, httpd, requests = built
    probe, *passages = _texts(requests)
    assert probe == "dimension probe"
    assert passages == ["passage: " + t for t in local[1]] and len(passages) > 100
    # Plain strings in float batches of embed_batch_size: no tiktoken ids, no base64.
    assert all(r["body"]["encoding_format"] == "float" and r["body"]["model"] == E5 for r in requests)
    assert all(isinstance(t, str) for t in passages)
    assert max(len(r["body"]["input"]) for r in requests) == served.embed_batch_size
    assert {r["auth"] for r in requests} == {"Bearer not-needed"}

    sent = len(httpd.requests)
    open_searcher(served, auto_build=False, progress=False).search("白洪潘是哪里人？", 3)
    asked = [t for t in _texts(httpd.requests[sent:]) if t != probe]  # a probe if the searcher is new
    assert asked == ["query: 白洪潘是哪里人？"]


def test_one_connection_per_process_and_settings(server, settings):
    served = _served(settings, server.url)
    assert load_embedder(served) is load_embedder(dataclasses.replace(served, top_k=9))
    assert _texts(server.requests) == ["dimension probe"]


def test_another_server_model_or_width_makes_the_index_stale(built):
    served, httpd, _ = built
    manifest = read_manifest(served)
    check_fresh(manifest, served, resolve_embedder(served), None)  # the same server and model: fresh
    built_with = re.escape(f"built with embedder 'openai:{E5}@127.0.0.1:{httpd.server_port}'")
    with embedding_server() as other:
        for changed in (dataclasses.replace(served, embed_base_url=other.url),
                        dataclasses.replace(served, embed_model="intfloat/multilingual-e5-base")):
            with pytest.raises(IndexMismatch, match=built_with):
                check_fresh(manifest, changed, resolve_embedder(changed), None)
    httpd.width = 128  # the same URL and name, another model behind them, as a new process finds it
    try:
        _connect.cache_clear()
        with pytest.raises(IndexMismatch, match=built_with):
            check_fresh(manifest, served, resolve_embedder(served), None)
    finally:
        httpd.width = HashEmbedder.dim
    with pytest.raises(IndexMismatch, match="stale"):
        check_fresh(manifest, served, HashEmbedder().spec, None)  # nor is a local embedder's index it


def test_a_server_that_is_down_is_named_with_its_url(settings):
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ModelUnavailable, match=re.escape(f"no embedding server answers at {url}")) as caught:
        load_embedder(_served(settings, url))
    assert "vllm serve" in str(caught.value) and "RAG_EMBED_BACKEND" in str(caught.value)


def test_a_url_without_v1_is_told_so(server, settings):
    with pytest.raises(ModelUnavailable, match=r"HTTP 404.*ends in /v1"):
        load_embedder(_served(settings, server.url.removesuffix("/v1")))


def test_another_width_between_calls_is_an_error(server, settings):
    embedder = load_embedder(_served(settings, server.url, model="narrowing"))
    server.scale = 3.0  # a server that does not normalise: the index is inner product, so rag does
    vectors = embedder.embed_queries(["清泉村", "村"])
    assert vectors.shape == (2, HashEmbedder.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    server.width = 128  # the operator swapped the model behind the same name
    with pytest.raises(ModelUnavailable, match="128-dimensional vectors for 'narrowing', not 256"):
        embedder.embed_queries(["村"])


def test_the_key_is_sent_but_kept_out_of_names_and_reprs(server, settings):
    served = dataclasses.replace(_served(settings, server.url, model="keyed"), embed_api_key="sk-secret-1")
    spec = load_embedder(served).spec
    assert server.requests[-1]["auth"] == "Bearer sk-secret-1"
    assert "sk-secret-1" not in f"{spec} {served!r}"


def test_settings_come_from_the_environment(monkeypatch, server):
    monkeypatch.setenv("RAG_EMBED_BACKEND", "openai")
    monkeypatch.setenv("RAG_EMBED_BASE_URL", server.url + "/")
    monkeypatch.setenv("RAG_EMBED_MODEL", E5)
    settings = Settings.from_env()
    assert (settings.embed_backend, settings.embed_base_url) == ("openai", server.url + "/")
    assert resolve_embedder(settings).name == f"openai:{E5}@127.0.0.1:{server.server_port}"


@pytest.mark.parametrize("changes, message", [
    ({"embed_backend": "remote"}, "RAG_EMBED_BACKEND='remote' is not one of local, openai"),
    ({"embed_backend": "openai"}, "set RAG_EMBED_BASE_URL"),
    ({"embed_backend": "openai", "embed_base_url": "127.0.0.1:8000/v1"}, "is not an http(s) URL"),
])
def test_a_misconfigured_backend_says_which_variable_to_fix(settings, changes, message):
    with pytest.raises(RagError, match=re.escape(message)):
        load_embedder(dataclasses.replace(settings, **changes))


def test_without_langchain_openai_the_extra_is_named(monkeypatch, settings):
    monkeypatch.setitem(sys.modules, "langchain_openai", None)  # makes `import langchain_openai` fail
    with pytest.raises(ModelUnavailable, match=re.escape("pip install 'rag[openai]'")):
        load_embedder(_served(settings, "http://127.0.0.1:9/v1", model="uninstalled"))
