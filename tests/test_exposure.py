"""Exposure: loopback by default, logins, no network at run time, nothing unpickled."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap

import pytest

from rag.cli import build_parser, main
from rag.answer.pipeline import Pipeline
from rag.app.ui import build_app, launch

from fakes import scripted
from helpers import QINGQUAN, ROOT, free_port


def _outside_address() -> str | None:
    """This machine's address on its way out (no packet is sent), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.mark.slow  # slow tier: a served app or a second Python process (seconds)
def test_the_app_listens_on_loopback_only_unless_told(settings, seed_searcher):
    assert build_parser().parse_args(["chat"]).host == "127.0.0.1"
    demo = build_app(settings, pipeline_for=lambda s: Pipeline(s, seed_searcher, scripted("x")))
    port = free_port()
    url = launch(demo, port=port, prevent_thread_lock=True)
    try:
        assert url.startswith("http://127.0.0.1:")
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        with pytest.raises(OSError):  # another loopback address: refused unless bound to all
            socket.create_connection(("127.0.0.2", port), timeout=5).close()
        outside = _outside_address()
        if outside:  # the same port on the machine's other address is closed
            with pytest.raises(OSError):
                socket.create_connection((outside, port), timeout=5).close()
    finally:
        demo.close()


@pytest.mark.slow  # slow tier: a served app or a second Python process (seconds)
def test_auth_keeps_out_who_has_no_login(settings, seed_searcher):
    from gradio_client import Client

    reply = "清泉村去年交易额超两亿元[1]。"
    demo = build_app(settings, pipeline_for=lambda s: Pipeline(s, seed_searcher, scripted(reply, reply)))
    url = launch(demo, port=free_port(), auth=("reader", "s3cret"), prevent_thread_lock=True)
    try:
        for login in (None, ("reader", "wrong")):
            with pytest.raises(Exception):
                Client(url, auth=login, verbose=False).predict(question=QINGQUAN, api_name="/ask")
        answer = Client(url, auth=("reader", "s3cret"), verbose=False).predict(question=QINGQUAN, api_name="/ask")
        assert answer["text"] == reply
    finally:
        demo.close()


@pytest.mark.parametrize("value", ["reader", "reader:", ":s3cret"])
def test_a_malformed_login_is_refused_before_anything_starts(capsys, value):
    assert main(["chat", "--auth", value]) == 2
    assert "--auth takes user:password" in capsys.readouterr().err


@pytest.mark.slow  # slow tier: a served app or a second Python process (seconds)
def test_the_product_switches_model_hubs_offline_unless_told():
    probe = "import os, rag; print(os.environ['HF_HUB_OFFLINE'], os.environ['TRANSFORMERS_OFFLINE'])"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    out = subprocess.run([sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.split() == ["1", "1"], out.stderr
    env.update(HF_HUB_OFFLINE="0", TRANSFORMERS_OFFLINE="0")  # a user who wants downloads says so
    out = subprocess.run([sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.split() == ["0", "0"], out.stderr


def test_nothing_is_unpickled():
    risky = re.compile(r"^\s*(import pickle|from pickle|import dill|import joblib)|pickle\.loads?\(|torch\.load\(|"
                       r"allow_pickle\s*=\s*True|allow_dangerous_deserialization|load_local\(", re.M)
    found = [f"{path.relative_to(ROOT)}: {m.group(0).strip()}" for path in sorted((ROOT / "rag").rglob("*.py"))
             for m in risky.finditer(path.read_text(encoding="utf-8"))]
    assert found == []
    assert risky.search("data = pickle.load(f)") and risky.search("FAISS.load_local(p, e, allow_dangerous_deserialization=True)")


NO_NETWORK = textwrap.dedent("""
    # Loaded at start-up (sitecustomize): any connection off this machine fails and is written down.
    import os, socket
    _log = os.environ["RAG_TEST_NETWORK_LOG"]
    _connect = socket.socket.connect

    def _local(address):
        host = address[0] if isinstance(address, tuple) else address
        return not isinstance(address, tuple) or host in ("127.0.0.1", "::1", "localhost")

    def connect(self, address):
        if not _local(address):
            with open(_log, "a") as log:
                log.write(repr(address) + "\\n")
            raise OSError("network disabled for this process")
        return _connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in ("127.0.0.1", "::1", "localhost", None):
            with open(_log, "a") as log:
                log.write(f"getaddrinfo {host}\\n")
            raise socket.gaierror("network disabled for this process")
        return _getaddrinfo(host, *args, **kwargs)

    _getaddrinfo = socket.getaddrinfo
    socket.socket.connect = connect
    socket.getaddrinfo = getaddrinfo
""")


@pytest.mark.slow  # the bundled embedder and LLM, in a second process
def test_a_question_is_answered_with_the_network_cut_off(tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(NO_NETWORK, encoding="utf-8")
    shutil.copytree(ROOT / "seeds", tmp_path / "seeds")
    log = tmp_path / "network.log"
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "GRADIO_ANALYTICS_ENABLED")}
    env.update(PYTHONPATH=f"{tmp_path / 'site'}{os.pathsep}{ROOT}", RAG_TEST_NETWORK_LOG=str(log),
               RAG_CORPUS_DIR=str(tmp_path / "seeds"), RAG_INDEX_DIR=str(tmp_path / "vectorstore"))
    result = subprocess.run([sys.executable, "-m", "rag", "ask", "水头镇建设安居小区“和食堂”投入了多少资金？"],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "70万" in result.stdout and "强化党建“驱动力”，打开群众幸福门" in result.stdout
    assert not log.exists(), log.read_text()


def _upload(url: str, size: int, cookie: str = "") -> tuple[int, str]:
    """POST a file of ``size`` bytes to Gradio's upload route: (status, body)."""
    import urllib.error
    import urllib.request

    body = (b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.bin"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n" + b"x" * size + b"\r\n--b--\r\n")
    request = urllib.request.Request(f"{url}gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": "multipart/form-data; boundary=b", "Cookie": cookie})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


@pytest.mark.slow  # slow tier: a served app (seconds)
def test_the_upload_route_takes_no_file_and_nothing_without_a_login(settings, seed_searcher):
    import json
    import urllib.request

    from gradio_client import Client

    reply = "清泉村去年交易额超两亿元[1]。"
    demo = build_app(settings, pipeline_for=lambda s: Pipeline(s, seed_searcher, scripted(reply, reply)))
    url = launch(demo, port=free_port(), prevent_thread_lock=True)
    try:
        assert json.loads(urllib.request.urlopen(f"{url}config", timeout=30).read())["max_file_size"] == 0
        status, message = _upload(url, 1_000)
        assert status == 413 and "maximum allowed size of 0 bytes" in message
        assert Client(url, verbose=False).predict(question=QINGQUAN, api_name="/ask")["text"] == reply
    finally:
        demo.close()
    demo = build_app(settings, pipeline_for=lambda s: Pipeline(s, seed_searcher, scripted(reply)))
    url = launch(demo, port=free_port(), auth=[("reader", "s3cret")], prevent_thread_lock=True)
    try:
        status, message = _upload(url, 10)
        assert status == 401 and "Not authenticated" in message
        answer = Client(url, auth=("reader", "s3cret"), verbose=False).predict(question=QINGQUAN, api_name="/ask")
        assert answer["text"] == reply
    finally:
        demo.close()


def test_logins_come_from_a_file_or_the_environment_off_the_command_line(tmp_path, monkeypatch, capsys):
    import rag.app.ui

    served = []
    monkeypatch.setattr(rag.app.ui, "serve", lambda settings, host, port, auth, **tls: served.append((auth, tls)))
    monkeypatch.delenv("RAG_AUTH", raising=False)
    logins = tmp_path / "logins"
    logins.write_text("# who may read\nreader:s3cret\n\neditor:pa:ss\n", encoding="utf-8")
    logins.chmod(0o600)
    assert main(["chat", "--auth-file", str(logins)]) == 0
    assert served[-1] == ([("reader", "s3cret"), ("editor", "pa:ss")], {}) and "warning" not in capsys.readouterr().err
    logins.chmod(0o644)
    assert main(["chat", "--auth-file", str(logins), "--host", "0.0.0.0"]) == 0
    err = capsys.readouterr().err
    assert "is readable by other users; chmod 600 it" in err and "travel in clear over plain HTTP" in err
    monkeypatch.setenv("RAG_AUTH", "reader:from-env")
    assert main(["chat"]) == 0 and served[-1][0] == [("reader", "from-env")]
    assert main(["chat", "--auth", "reader:s3cret"]) == 0 and served[-1][0] == [("reader", "s3cret")]
    assert "--auth puts the password in the process list" in capsys.readouterr().err
    logins.write_text("reader:s3cret\nnobody\n", encoding="utf-8")
    for argv, message in ((["--auth-file", str(logins)], "line 2, takes user:password"),
                          (["--auth-file", str(tmp_path / "missing")], "cannot read the logins"),
                          (["--auth", "a:b", "--auth-file", str(logins)], "give --auth or --auth-file, not both"),
                          (["--ssl-keyfile", str(logins)], "--ssl-keyfile and --ssl-certfile go together")):
        assert main(["chat", *argv]) == 2
        assert message in capsys.readouterr().err
    assert len(served) == 4  # nothing served after a refusal


@pytest.mark.slow  # slow tier: `rag chat` in a process of its own with the bundled models (~30 s)
def test_a_logins_file_keeps_the_password_out_of_the_process_list(tmp_path):
    from pathlib import Path

    from gradio_client import Client

    from rag.evaluation.loadtest import served_app

    password = "s3cret-from-a-file"
    logins = tmp_path / "logins"
    logins.write_text(f"reader:{password}\n", encoding="utf-8")
    logins.chmod(0o600)
    options = ["--index", str(tmp_path / "index"), "chat", "--model", "fast", "--auth-file", str(logins)]
    with served_app(options, free_port()) as (url, pid):
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert b"--auth-file" in command_line and password.encode() not in command_line
        with pytest.raises(Exception):  # a wrong password gets no client
            Client(url, auth=("reader", "wrong"), verbose=False)
        answer = Client(url, auth=("reader", password), verbose=False).predict(question=QINGQUAN, api_name="/ask")
        assert answer["text"] and answer["model"] == "fast"


@pytest.mark.slow  # slow tier: a served app and openssl (seconds)
def test_https_with_the_given_key_and_certificate(settings, seed_searcher, tmp_path):
    import ssl
    import urllib.request

    from gradio_client import Client

    from rag.app.access import tls_files
    from rag.errors import RagError

    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command to make a certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    with pytest.raises(RagError, match="cannot serve HTTPS"):
        tls_files(cert, cert)  # a certificate where the key should be
    reply = "清泉村去年交易额超两亿元[1]。"
    demo = build_app(settings, pipeline_for=lambda s: Pipeline(s, seed_searcher, scripted(reply)))
    url = launch(demo, port=free_port(), prevent_thread_lock=True, **tls_files(key, cert))
    try:
        assert url.startswith("https://127.0.0.1:")
        trusted = ssl.create_default_context(cafile=str(cert))  # verified: the certificate is the server's
        assert urllib.request.urlopen(f"{url}config", context=trusted, timeout=30).status == 200
        with pytest.raises(OSError):  # plain HTTP gets nothing
            urllib.request.urlopen(url.replace("https://", "http://") + "config", timeout=10)
        answer = Client(url, ssl_verify=False, verbose=False).predict(question=QINGQUAN, api_name="/ask")
        assert answer["text"] == reply
    finally:
        demo.close()
