"""Checks on the evaluation sets in eval/sets/*.jsonl (data only: fast, no models).

Every item must be well-formed, and every answerable item must be grounded: its evidence span is
copied verbatim from one line of a seed page, and it lies inside the article the parser makes of
that page under the headline (or, for a section of a story, the sub-heading) the item names —
matched by `rag.evaluation.retrieval.article_matches`, the rule the metrics use. Multi-article items give aligned lists:
source_file[i], article[i] and evidence[i] belong together.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest

from rag.evaluation.retrieval import article_matches
from rag.ingest.corpus import load_corpus
from rag.textnorm import match_key

from helpers import ROOT, SEEDS

SETS = ROOT / "eval" / "sets"

FIELDS = {"id", "question", "lang", "type", "answer", "must_contain", "source_file", "article", "evidence"}
LANGS = {"zh", "en"}
TYPES = {"fact", "number", "entity", "multi", "crosslingual", "unanswerable"}
ANSWERABLE = TYPES - {"unanswerable"}
EVIDENCE_MIN, EVIDENCE_MAX = 8, 60

MIN_ITEMS = 80
MIN_ENGLISH = 15
MIN_UNANSWERABLE = 8


def _set_files() -> list[Path]:
    return sorted(SETS.glob("*.jsonl"))


def _load() -> list[tuple[str, int, dict]]:
    """(file name, line number, item) for every non-blank line of every set."""
    rows = []
    for path in _set_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                pytest.fail(f"{path.name}:{number} is not valid JSON: {exc}")
            assert isinstance(item, dict), f"{path.name}:{number} is not a JSON object"
            rows.append((path.name, number, item))
    return rows


ROWS = _load()
ITEMS = [item for _, _, item in ROWS]


def _ident(item: dict) -> str:
    return str(item.get("id", "<no id>"))


@lru_cache(maxsize=1)
def _corpus():
    return load_corpus(SEEDS)


@lru_cache(maxsize=None)
def _raw(source: str) -> str:
    return (SEEDS / source).read_text(encoding="utf-8")


def _names(source: str) -> list[str]:
    """The headlines and sub-headings of one page, as the parser makes them."""
    return sorted({n for c in _corpus().chunks if c.source == source for n in (c.article, c.subhead) if n})


def _text_named(source: str, name: str) -> str:
    """The match key of the text of one page's article (or section) that `name` names."""
    return "".join(match_key(c.text) for c in _corpus().chunks if c.source == source and article_matches(c, name))


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# --------------------------------------------------------------------------- the set as a whole


def test_sets_exist():
    assert _set_files(), f"no *.jsonl under {SETS}"
    assert (SETS / "public.jsonl").is_file(), "eval/sets/public.jsonl is missing"


def test_field_set_is_exact():
    for name, number, item in ROWS:
        keys = set(item)
        assert keys == FIELDS, (
            f"{_ident(item)} ({name}:{number}): missing {sorted(FIELDS - keys)}, unexpected {sorted(keys - FIELDS)}")


def test_ids_unique():
    counts = Counter(_ident(item) for item in ITEMS)
    dupes = sorted(i for i, n in counts.items() if n > 1)
    assert not dupes, f"duplicate ids: {dupes}"


def test_questions_unique():
    counts = Counter(match_key(item["question"]) for item in ITEMS)
    dupes = sorted(_ident(item) for item in ITEMS if counts[match_key(item["question"])] > 1)
    assert not dupes, f"the same question appears more than once: {dupes}"


def test_enums_and_strings():
    for item in ITEMS:
        ident = _ident(item)
        assert item["lang"] in LANGS, f"{ident}: lang {item['lang']!r} not in {sorted(LANGS)}"
        assert item["type"] in TYPES, f"{ident}: type {item['type']!r} not in {sorted(TYPES)}"
        for key in ("id", "question", "answer"):
            assert isinstance(item[key], str) and item[key].strip(), f"{ident}: {key} must be a non-empty string"
        if item["type"] == "crosslingual":
            assert item["lang"] == "en", f"{ident}: a crosslingual item is an English question"


def test_counts():
    types = Counter(item["type"] for item in ITEMS)
    langs = Counter(item["lang"] for item in ITEMS)
    assert len(ITEMS) >= MIN_ITEMS, f"only {len(ITEMS)} items, want at least {MIN_ITEMS}"
    assert langs["en"] >= MIN_ENGLISH, f"only {langs['en']} English items, want at least {MIN_ENGLISH}"
    assert types["unanswerable"] >= MIN_UNANSWERABLE, (
        f"only {types['unanswerable']} unanswerable items, want at least {MIN_UNANSWERABLE}")
    missing = sorted(TYPES - set(types))
    assert not missing, f"no item of type {missing}"


def test_every_seed_file_is_covered():
    used = Counter()
    for item in ITEMS:
        if item["type"] in ANSWERABLE:
            for source in set(_as_list(item["source_file"])):
                used[source] += 1
    for path in sorted(SEEDS.glob("*.txt")):
        assert used[path.name] > 0, f"no item is about {path.name}"


# --------------------------------------------------------------------------- per item


def test_must_contain_shape():
    for item in ITEMS:
        ident, groups = _ident(item), item["must_contain"]
        assert isinstance(groups, list), f"{ident}: must_contain must be a list of groups"
        if item["type"] == "unanswerable":
            assert groups == [], f"{ident}: an unanswerable item has must_contain []"
            continue
        assert groups, f"{ident}: an answerable item needs at least one must_contain group"
        for group in groups:
            assert isinstance(group, list) and group, f"{ident}: every must_contain group is a non-empty list"
            for s in group:
                assert isinstance(s, str) and s.strip(), f"{ident}: must_contain strings must be non-empty"


def test_answer_satisfies_its_own_must_contain():
    for item in ITEMS:
        answer = item["answer"].casefold()
        for group in item["must_contain"]:
            assert any(s.casefold() in answer for s in group), (
                f"{_ident(item)}: answer {item['answer']!r} contains none of {group}")


def test_unanswerable_items_have_no_grounding():
    for item in ITEMS:
        if item["type"] != "unanswerable":
            continue
        ident = _ident(item)
        for key in ("source_file", "article", "evidence"):
            assert item[key] is None, f"{ident}: an unanswerable item has {key} null"


def test_grounding_shape():
    for item in ITEMS:
        if item["type"] not in ANSWERABLE:
            continue
        ident = _ident(item)
        sources, articles, evidence = item["source_file"], item["article"], item["evidence"]
        if item["type"] == "multi":
            for key, value in (("source_file", sources), ("article", articles), ("evidence", evidence)):
                assert isinstance(value, list) and len(value) >= 2, f"{ident}: multi needs a list of >= 2 for {key}"
                assert all(isinstance(v, str) and v for v in value), f"{ident}: {key} entries must be strings"
            assert len(sources) == len(articles) == len(evidence), (
                f"{ident}: source_file, article and evidence lists must be aligned (same length)")
            assert len(set(zip(sources, articles))) >= 2, f"{ident}: multi must draw on two different articles"
        else:
            for key, value in (("source_file", sources), ("article", articles), ("evidence", evidence)):
                assert isinstance(value, str) and value, f"{ident}: {key} must be a non-empty string"


def _grounded_triples(item: dict) -> list[tuple[str, str, str]]:
    return list(zip(_as_list(item["source_file"]), _as_list(item["article"]), _as_list(item["evidence"])))


ANSWERABLE_ITEMS = [item for item in ITEMS if item.get("type") in ANSWERABLE]


@pytest.mark.parametrize("item", ANSWERABLE_ITEMS, ids=_ident)
def test_evidence_is_grounded(item):
    ident = _ident(item)
    for source, headline, span in _grounded_triples(item):
        assert (SEEDS / source).is_file(), f"{ident}: source_file {source!r} is not in seeds/"
        raw = _raw(source)
        assert "\n" not in span and "\r" not in span, f"{ident}: evidence must stay within one line: {span!r}"
        n = len(span)
        assert EVIDENCE_MIN <= n <= EVIDENCE_MAX, (
            f"{ident}: evidence is {n} characters, want {EVIDENCE_MIN}-{EVIDENCE_MAX}: {span!r}")
        assert span in raw, f"{ident}: evidence is not a verbatim span of {source}: {span!r}"
        assert match_key(span) in match_key(raw), f"{ident}: evidence not found in {source}: {span!r}"
        names = _names(source)
        assert headline in names, (
            f"{ident}: {headline!r} is not a headline or sub-heading the parser gives {source}; it has {names}")
        assert match_key(span) in _text_named(source, headline), (
            f"{ident}: evidence {span!r} is in {source} but not inside the article {headline!r}")
