"""Settings: defaults in code, RAG_* variables typed by the field they set."""

import pytest

from rag.config import Settings
from rag.errors import RagError


def test_environment_variables_are_read_as_the_fields_types(monkeypatch):
    monkeypatch.setenv("RAG_TOP_K", " 7 ")
    monkeypatch.setenv("RAG_MIN_COVERAGE", "0.3")
    monkeypatch.setenv("RAG_LLM_KEEP_PREFIX", "off")
    monkeypatch.setenv("RAG_LLM_MODEL", "fast")
    settings = Settings.from_env(top_k=None)  # None: no override
    assert (settings.top_k, settings.min_coverage, settings.llm_keep_prefix, settings.llm_model) == \
        (7, 0.3, False, "fast")
    assert Settings.from_env(top_k=3).top_k == 3  # explicit overrides win


@pytest.mark.parametrize("name, value", [("RAG_LLM_KEEP_PREFIX", "maybe"), ("RAG_TOP_K", "five"),
                                         ("RAG_MIN_COVERAGE", "a quarter")])
def test_a_malformed_variable_is_named(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(RagError, match=f"{name}={value!r} is not"):
        Settings.from_env()


def test_every_setting_is_a_cache_key_part_or_read_per_question():
    import dataclasses

    from rag.config import INDEX_FIELDS, LLM_FIELDS, QUESTION_FIELDS

    # A field in none of them would let a cached searcher or model serve settings it was not built for.
    names = {f.name for f in dataclasses.fields(Settings)}
    assert names == set(INDEX_FIELDS) | set(LLM_FIELDS) | set(QUESTION_FIELDS)
    assert not set(QUESTION_FIELDS) & (set(INDEX_FIELDS) | set(LLM_FIELDS))
