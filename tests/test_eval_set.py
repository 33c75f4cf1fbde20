"""Checks on the evaluation sets in eval/sets/*.jsonl (data only: fast, no models).

Every item must be well-formed, and every answerable item must be grounded: its evidence span is
copied verbatim from one line of a seed page, and it lies inside the article the parser makes of
that page under the headline (or, for a section of a story, the sub-heading) the item names —
matched by `rag.evaluation.retrieval.article_matches`, the rule the metrics use. Multi-article items give aligned lists:
source_file[i], article[i] and evidence[i] belong together. Items over the news-cn archive also
give each article's line (`record`): the evidence lies in the article the dump reader makes of that
line, under the headline the item names (checked where the corpus is on the machine). Every item
is in the dev or the test half, each stratum (type × lang) of a set halved (rag.evaluation.splits).
"""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest

from rag.evaluation.retrieval import article_matches
from rag.evaluation.splits import SPLITS, stratum
from rag.ingest.corpus import load_corpus, read_page
from rag.ingest.formats import read_file
from rag.textnorm import match_key

from helpers import ROOT, SEEDS

SETS = ROOT / "eval" / "sets"
NEWS_CN = ROOT.parent / "shared" / "corpora" / "news-cn"  # where the team keeps it

FIELDS = {"id", "question", "lang", "type", "answer", "must_contain", "source_file", "article", "evidence", "split"}
OPTIONAL = {"record"}  # the line of each gold article in its dump file (sets over news-cn)
LANGS = {"zh", "en"}
TYPES = {"fact", "number", "entity", "multi", "two-part", "crosslingual", "unanswerable"}
ANSWERABLE = TYPES - {"unanswerable"}
LISTED = {"multi", "two-part"}  # types whose grounding is a list, one entry per part or article
EVIDENCE_MIN, EVIDENCE_MAX = 8, 60

MIN_ITEMS = 80
MIN_ENGLISH = 15
MIN_UNANSWERABLE = 8
# The held-out sets written before the pipeline changes of issue 17 (all sets but public.jsonl).
MIN_NEW, MIN_NEW_NEWS, MIN_NEW_KIND = 150, 60, 30


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
    """The match key of the text of one page's article (or section) that `name` names, and of its
    byline: a photo's credit ("李士明/摄") is the parser's byline of the caption, and who took a
    photo is a fair question of the page."""
    text = "".join(match_key(c.text) for c in _corpus().chunks if c.source == source and article_matches(c, name))
    bylines = [a.byline for a in _corpus().articles if a.source == source and a.headline == name and a.byline]
    return text + "".join(match_key(b) for b in bylines)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# --------------------------------------------------------------------------- the set as a whole


def test_sets_exist():
    assert _set_files(), f"no *.jsonl under {SETS}"
    assert (SETS / "public.jsonl").is_file(), "eval/sets/public.jsonl is missing"


def test_field_set_is_exact():
    for name, number, item in ROWS:
        keys = set(item)
        assert FIELDS <= keys <= FIELDS | OPTIONAL, (
            f"{_ident(item)} ({name}:{number}): missing {sorted(FIELDS - keys)}, "
            f"unexpected {sorted(keys - FIELDS - OPTIONAL)}")


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


def test_held_out_sets_are_large_enough():
    new = [(name, item) for name, _, item in ROWS if name != "public.jsonl"]
    news = [item for _, item in new if "record" in item or item["id"].startswith("news-")]
    kinds = Counter(item["type"] for _, item in new)
    assert len(new) >= MIN_NEW and len(news) >= MIN_NEW_NEWS, (len(new), len(news))
    assert kinds["unanswerable"] >= MIN_NEW_KIND, kinds
    assert kinds["two-part"] + kinds["multi"] >= MIN_NEW_KIND, kinds
    assert sum(1 for _, item in new if item["lang"] == "en") >= MIN_NEW_KIND


def test_every_item_is_in_one_half_and_each_stratum_is_halved():
    for path in _set_files():
        halves: dict[tuple, Counter] = {}
        for name, _, item in ROWS:
            if name == path.name:
                assert item["split"] in SPLITS, f"{_ident(item)}: split {item['split']!r} not in {SPLITS}"
                halves.setdefault(stratum(item), Counter())[item["split"]] += 1
        for key, counts in halves.items():
            assert abs(counts["dev"] - counts["test"]) <= 1, f"{path.name} {key}: {dict(counts)} is not halved"


def test_every_seed_file_is_covered():
    used = Counter()
    for item in ITEMS:
        if item["type"] in ANSWERABLE and "record" not in item:
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
        assert item.get("record") is None, f"{ident}: an unanswerable item names no record"


def test_grounding_shape():
    for item in ITEMS:
        if item["type"] not in ANSWERABLE:
            continue
        ident = _ident(item)
        sources, articles, evidence = item["source_file"], item["article"], item["evidence"]
        if item["type"] in LISTED:
            for key, value in (("source_file", sources), ("article", articles), ("evidence", evidence)):
                assert isinstance(value, list) and len(value) >= 2, (
                    f"{ident}: {item['type']} needs a list of >= 2 for {key}")
                assert all(isinstance(v, str) and v for v in value), f"{ident}: {key} entries must be strings"
            assert len(sources) == len(articles) == len(evidence), (
                f"{ident}: source_file, article and evidence lists must be aligned (same length)")
            if item["type"] == "multi":
                assert len(set(zip(sources, articles))) >= 2, f"{ident}: multi must draw on two different articles"
            else:  # one evidence span and one must_contain group per part
                assert len(item["must_contain"]) >= 2, f"{ident}: a two-part item has a must_contain group per part"
            if "record" in item:
                assert isinstance(item["record"], list) and len(item["record"]) == len(sources), (
                    f"{ident}: record must be a list aligned with source_file")
        else:
            for key, value in (("source_file", sources), ("article", articles), ("evidence", evidence)):
                assert isinstance(value, str) and value, f"{ident}: {key} must be a non-empty string"
            if "record" in item:
                assert isinstance(item["record"], int) and item["record"] > 0, f"{ident}: record is a line number"


def _grounded_triples(item: dict) -> list[tuple[str, str, str]]:
    return list(zip(_as_list(item["source_file"]), _as_list(item["article"]), _as_list(item["evidence"])))


ANSWERABLE_ITEMS = [item for item in ITEMS if item.get("type") in ANSWERABLE and "record" not in item]
NEWS_ITEMS = [item for item in ITEMS if item.get("type") in ANSWERABLE and "record" in item]


@lru_cache(maxsize=None)
def _dump_articles(source: str) -> dict:
    """The articles the dump reader makes of one news-cn file, by line number."""
    return {a.record: a for a in read_file(read_page(NEWS_CN / source, NEWS_CN), source).articles}


@lru_cache(maxsize=None)
def _dump_lines(source: str) -> list[str]:
    """The raw lines of one news-cn file (each file is tens of MB; many items cite the same one)."""
    return (NEWS_CN / source).read_text(encoding="utf-8").split("\n")


@pytest.mark.slow  # parses a 4 MB news-cn file per item
@pytest.mark.skipif(not NEWS_CN.is_dir(), reason="the news-cn corpus is not on this machine")
@pytest.mark.parametrize("item", NEWS_ITEMS, ids=_ident)
def test_news_evidence_is_grounded(item):
    ident = _ident(item)
    for source, headline, span, line in zip(_as_list(item["source_file"]), _as_list(item["article"]),
                                            _as_list(item["evidence"]), _as_list(item["record"])):
        assert (NEWS_CN / source).is_file(), f"{ident}: source_file {source!r} is not in news-cn"
        assert EVIDENCE_MIN <= len(span) <= EVIDENCE_MAX, f"{ident}: evidence is {len(span)} characters: {span!r}"
        raw = _dump_lines(source)[line - 1]
        assert span in raw, f"{ident}: evidence is not a verbatim span of {source} line {line}: {span!r}"
        article = _dump_articles(source).get(line)
        assert article is not None, f"{ident}: the reader makes no article of {source} line {line}"
        assert article.headline == headline, f"{ident}: {source} line {line} is headed {article.headline!r}"
        assert match_key(span) in match_key(article.text), f"{ident}: evidence not in the article's text: {span!r}"


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


# --------------------------------------------------------------------------- the gold rule of archive items


def _news_item(**changes):
    from dataclasses import replace

    from rag.evaluation.retrieval import EvalItem

    # news.jsonl's item about Randy Meisner (news-021.txt line 102), as load_set reads it.
    item = EvalItem("news-zh-number-029", "老鹰乐队创始成员兰迪·麦斯纳去世时享年多少岁？", "zh", "number", "77岁。",
                    [["77"]], "news-021.txt", MEISNER, "在洛杉矶去世，享年77岁", record=102, split="dev")
    return replace(item, **changes)


# The headline the dump reader makes of that line: its lead sentence, shared by no other story here.
MEISNER = "陈洋洋据美国广播公司、美联社等外媒报道，7月27日，老鹰乐队官方网站发表声明称…"


def _piece(source, number, group=None, record=None, article=MEISNER):
    from types import SimpleNamespace

    return SimpleNamespace(source=source, article_no=number, record=record, group=group, article=article,
                           subhead=None, label=article)


def test_archive_gold_is_the_article_or_a_reprint_of_it_never_a_namesake():
    from rag.evaluation.retrieval import resolve_gold

    chunks = [_piece("news-021.txt", 102, "g:eagles", record=102), _piece("news-030.txt", 7, "g:eagles", record=7),
              _piece("news-009.txt", 5, None, record=5)]
    [item] = resolve_gold([_news_item()], chunks)
    assert item.gold == (("news-021.txt", 102, "g:eagles"),)
    assert item.gold_hits(_piece("news-021.txt", 102)) == {0}  # the article itself
    assert item.gold_hits(_piece("news-030.txt", 7, "g:eagles")) == {0}  # a reprint, the copy search shows
    assert item.gold_hits(_piece("news-009.txt", 5)) == set()  # same lead-sentence headline, another story
    assert _news_item().gold_hits(_piece("news-009.txt", 5)) == {0}  # by name alone it would have counted


def test_an_index_without_the_gold_article_is_refused_with_what_to_index():
    from rag.errors import RagError
    from rag.evaluation.retrieval import resolve_gold

    with pytest.raises(RagError, match=r"news-zh-number-029 \(news-021.txt line 102\).*rag --corpus DIR index"):
        resolve_gold([_news_item()], [_piece("news-001.txt", 1, record=1)])
    seed_item = _news_item(record=None)  # items over pages keep matching by name
    assert resolve_gold([seed_item], []) == [seed_item]
