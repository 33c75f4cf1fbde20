"""Prompt files from prompts/: loaded by name, filled strictly (a missing value is an error)."""

from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path

from rag.config import PROJECT_ROOT
from rag.errors import RagError

PROMPTS_DIR = PROJECT_ROOT / "prompts"


@lru_cache(maxsize=64)
def load_prompt(name: str, folder: Path = PROMPTS_DIR) -> str:
    """The text of prompts/<name>.md, without its final newline.

    Raises:
        RagError: no such prompt file.
    """
    path = folder / f"{name}.md"
    try:
        return path.read_text(encoding="utf-8").rstrip("\n")
    except OSError as exc:
        raise RagError(f"prompt file {path} is missing; restore it from git (`git checkout prompts/`)") from exc


def fill(name: str, folder: Path = PROMPTS_DIR, **values: object) -> str:
    """Fill a prompt's {placeholders}; every placeholder must be given and every value used.

    Raises:
        RagError: a placeholder has no value, or a value has no placeholder.
    """
    template = load_prompt(name, folder)
    fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    missing, unused = fields - values.keys(), values.keys() - fields
    if missing or unused:
        raise RagError(f"prompt {name!r}: missing values {sorted(missing)}, unused values {sorted(unused)}")
    return template.format(**values)
