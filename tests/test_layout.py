"""The house layout: data flows one way, ingest → search → answer → (app | cli | evaluation).

`models` serves search and answer and imports neither; app and evaluation are leaves that only
the CLI (and the package's face, `rag/__init__`) may import. Checked on the source with `ast`,
lazy imports inside functions included, so a shortcut cannot hide in a function body.
"""

import ast
from pathlib import Path

from helpers import imported_modules

RAG = Path(__file__).resolve().parent.parent / "rag"
BASICS = {"config", "errors", "prompts", "textnorm", "files", "script", "memory"}
# What each room may import, besides the basics and itself.
ALLOWED = {
    "basics": set(),
    "ingest": set(),
    "models": set(),
    "search": {"ingest", "models"},
    "answer": {"ingest", "models", "search"},
    "app": {"ingest", "models", "search", "answer"},
    "evaluation": {"ingest", "models", "search", "answer"},
    "faces": {"ingest", "models", "search", "answer", "app", "evaluation"},  # cli, __init__, __main__
}


def room(parts: list[str]) -> str:
    """The room of a module given as path parts under rag/ (["search", "index"]) or dotted name parts."""
    if parts[0] in ALLOWED and parts[0] not in ("basics", "faces"):
        return parts[0]
    return "basics" if parts[0] in BASICS else "faces"


def imported_rooms(path: Path) -> set[tuple[str, int]]:
    """(room, line) for every `rag.*` module the file imports."""
    found = set()
    for name, line in imported_modules(path):
        parts = name.split(".")
        if parts[0] == "rag" and len(parts) > 1:
            found.add((room(parts[1:]), line))
    return found


def test_no_module_imports_a_later_stage():
    wrong = []
    for path in sorted(RAG.rglob("*.py")):
        parts = list(path.relative_to(RAG).with_suffix("").parts)
        own = room(parts)
        for other, line in imported_rooms(path):
            if other not in ("basics", own) and other not in ALLOWED[own]:
                wrong.append(f"rag/{path.relative_to(RAG)}:{line} ({own}) imports {other}")
    assert not wrong, "imports against the flow:\n" + "\n".join(wrong)


def test_the_checker_sees_a_wrong_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from rag.app.ui import serve\n    import rag.evaluation.bench\n")
    assert {r for r, _ in imported_rooms(bad)} == {"app", "evaluation"}
    assert room(["answer", "pipeline"]) == "answer" and room(["answer"]) == "answer"  # `from rag.answer import x`
    assert room(["config"]) == "basics" and room(["cli"]) == "faces"


def test_every_room_says_what_it_owns():
    for name in ALLOWED:
        if name in ("basics", "faces"):
            continue
        doc = ast.get_docstring(ast.parse((RAG / name / "__init__.py").read_text(encoding="utf-8")))
        assert doc and "import" in doc, f"rag/{name}/__init__.py needs a docstring saying what it owns and imports"


def test_no_module_grows_past_one_role():
    long = [f"{p.relative_to(RAG)} ({n} lines)" for p in RAG.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400]
    assert not long, f"modules over 400 lines hold two roles; split them: {long}"


def test_tests_share_fakes_and_helpers_not_each_other():
    """Fakes live in tests/fakes.py and plain helpers in tests/helpers.py; fixtures in conftest.py.
    A test that imports conftest or another test module is coupled to it (and pytest may collect it twice)."""
    tests = RAG.parent / "tests"
    wrong = [f"tests/{path.name}:{line} imports {name}" for path in sorted(tests.glob("*.py"))
             for name, line in imported_modules(path) if name.split(".")[0] == "conftest" or name.startswith("test_")]
    assert not wrong, "\n".join(wrong)
