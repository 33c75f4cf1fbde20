"""Plain helpers for tests: project folders, a seed question, free ports, child processes, refused files."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

# One port finder and one way to stop a child, the product's (the load bench serves `rag chat` with them).
from rag.evaluation.loadtest import free_port, stop_process  # noqa: F401  (tests import them from here)

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
QINGQUAN = "清泉村去年电商交易额是多少？"  # answered by the seed page 山货触网 农户生活更红火


@contextlib.contextmanager
def llama_server(model: Path, log_path: Path, n_ctx: int = 4096):
    """llama-cpp-python's OpenAI-compatible server on a free loopback port; yields its /v1 URL."""
    pytest.importorskip("llama_cpp.server.app")
    from rag.config import physical_cores

    port = free_port()
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(physical_cores())],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while True:
                assert server.poll() is None, log_path.read_text(errors="replace")
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2).read()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "llama_cpp.server did not start in 120 s"
                    time.sleep(0.5)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            stop_process(server, timeout=20)


OUTSIDE_MARKER = "ZXQ7781"  # in pages outside the corpus only: found in an index, it leaked
OUTSIDE_PAGE = f"# 机密档案\n\n这是语料库之外的秘密文件，编号{OUTSIDE_MARKER}，不应被索引。\n\n第二段也是秘密内容。\n"


def plant_refused_files(corpus: Path, outside: Path) -> dict[str, str]:
    """Put into ``corpus`` what discovery must refuse; the outside pages would parse if followed.

    Returns:
        file name in the corpus → the kind of refusal expected.
    """
    (outside / "pages").mkdir(parents=True)
    (outside / "secret.txt").write_text(OUTSIDE_PAGE, encoding="utf-8")
    (outside / "pages" / "905_page.txt").write_text(OUTSIDE_PAGE, encoding="utf-8")
    (corpus / "902_passwd.txt").symlink_to(outside / "secret.txt")
    (corpus / "903_outside").symlink_to(outside / "pages", target_is_directory=True)
    inside = sorted(p.name for p in corpus.glob("*.txt"))[0]
    (corpus / "904_again.txt").symlink_to(inside)  # relative: a second name for a page inside
    os.mkfifo(corpus / "906_pipe.txt")
    return {"902_passwd.txt": "link leaving the corpus", "903_outside": "link to a folder leaving the corpus",
            "904_again.txt": "link inside the corpus", "906_pipe.txt": "FIFO (named pipe)"}


def imported_modules(path: Path) -> list[tuple[str, int]]:
    """(module, line) for every absolute import in a Python file, those inside functions included;
    `from pkg import name` also yields "pkg.name", which may be a module."""
    import ast

    found = []
    for node in ast.walk(ast.parse(Path(path).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.module, node.lineno)] + [(f"{node.module}.{a.name}", node.lineno) for a in node.names]
    return found



# Three dated news-dump lines: two about typhoon Doksuri, a week apart, and one that is not.
TYPHOON_LINES = [
    "2023-07-21 10:00，正文：新华社北京7月21日电 今年第5号台风“杜苏芮”今天上午在菲律宾以东洋面生成，中央气象台预计它将向西偏北方向移动。",
    "2023-07-25 08:30，正文：京东集团发布第二季度财报，营收同比增长7.6%，净利润超过市场预期。",
    "2023-07-28 11:00，正文：中新网福州7月28日电 台风“杜苏芮”28日9时55分在福建晋江沿海登陆，登陆时中心附近最大风力15级。",
]


def dump_searcher(tmp_path: Path, monkeypatch, lines: list[str]):
    """Settings and a searcher over a one-file news dump of ``lines``, with the hash embedder in
    place of the real one (tests of the timeline and its tab)."""
    import rag.models.embedder
    from rag.config import Settings
    from rag.search.retrieve import open_searcher

    from fakes import HashEmbedder

    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "news-001.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = Settings(corpus_dir=folder, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache")
    embedder = HashEmbedder()
    monkeypatch.setattr(rag.models.embedder, "load_embedder", lambda _settings: embedder)
    return settings, open_searcher(settings, embedder=embedder, progress=False)
