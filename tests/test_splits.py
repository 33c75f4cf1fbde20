"""Dev and test halves (rag.evaluation.splits) and `rag eval`'s reports of them side by side."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import replace

import pytest

from rag.answer.types import Answer
from rag.errors import RagError
from rag.evaluation.answers import run_answer_eval, write_answer_report
from rag.evaluation.retrieval import load_set, run_retrieval_eval, write_report
from rag.evaluation.splits import SPLITS, assign_splits, select, stratum, write_splits

from helpers import ROOT

HELD_OUT = ROOT / "eval" / "sets" / "seeds-heldout.jsonl"


def _rows(n_per_stratum: dict) -> list[dict]:
    return [{"id": f"{t}-{lang}-{i:03d}", "type": t, "lang": lang}
            for (t, lang), n in n_per_stratum.items() for i in range(n)]


def test_each_stratum_is_halved_whatever_the_order_of_the_lines():
    rows = _rows({("number", "zh"): 7, ("unanswerable", "en"): 4, ("two-part", "zh"): 1})
    splits = dict(zip((r["id"] for r in rows), assign_splits(rows)))
    shuffled = rows[:]
    random.Random(3).shuffle(shuffled)
    assert dict(zip((r["id"] for r in shuffled), assign_splits(shuffled))) == splits
    for key in {stratum(r) for r in rows}:
        counts = Counter(splits[r["id"]] for r in rows if stratum(r) == key)
        assert abs(counts["dev"] - counts["test"]) <= 1, (key, counts)
    assert set(splits.values()) == set(SPLITS)


def test_splits_are_sticky_and_new_items_fill_the_smaller_half():
    rows = [{"id": f"q{i}", "type": "fact", "lang": "zh", "split": "test"} for i in range(3)]
    rows += [{"id": "q3", "type": "fact", "lang": "zh", "split": "dev"}]
    new = [{"id": f"new{i}", "type": "fact", "lang": "zh"} for i in range(4)]
    out = assign_splits(rows + new)
    assert out[:4] == ["test", "test", "test", "dev"]  # kept: a test item never becomes dev
    assert Counter(out) == {"dev": 4, "test": 4}  # the two missing dev items came first


def test_a_bad_split_or_a_repeated_id_is_refused():
    with pytest.raises(RagError, match="'train'"):
        assign_splits([{"id": "a", "type": "fact", "lang": "zh", "split": "train"}])
    with pytest.raises(RagError, match="duplicate ids"):
        assign_splits([{"id": "a", "type": "fact", "lang": "zh"}] * 2)


def test_write_splits_appends_the_field_and_keeps_every_other_byte(tmp_path):
    # public.jsonl's own lines: the text before the field must stay exactly as written.
    lines = (ROOT / "eval" / "sets" / "public.jsonl").read_text(encoding="utf-8").splitlines()[:6]
    originals = [line.replace(', "split": "dev"}', "}").replace(', "split": "test"}', "}") for line in lines]
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(originals) + "\n", encoding="utf-8")
    counts = write_splits(path)
    written = path.read_text(encoding="utf-8").splitlines()
    assert sum(counts.values()) == 6 and set(counts) <= set(SPLITS)
    for before, after in zip(originals, written):
        assert after.startswith(before[:-1]) and json.loads(after)["split"] in SPLITS
    assert write_splits(path) == counts and path.read_text(encoding="utf-8").splitlines() == written  # idempotent


def test_select_picks_a_half_and_asks_for_splits_it_cannot_see():
    items = load_set(HELD_OUT)
    dev, test = select(items, "dev"), select(items, "test")
    assert len(dev) + len(test) == len(items) and {i.split for i in dev} == {"dev"}
    assert not {i.id for i in dev} & {i.id for i in test} and select(items, "both") == items
    with pytest.raises(RagError, match="rag.evaluation.splits"):
        select([replace(items[0], split=None)], "dev")
    with pytest.raises(RagError, match="--split"):
        select(items, "train")


def test_load_set_reads_the_split_and_refuses_an_unknown_one(tmp_path):
    line = HELD_OUT.read_text(encoding="utf-8").splitlines()[0]
    assert load_set(HELD_OUT)[0].split == json.loads(line)["split"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(line.replace('"split": "dev"', '"split": "val"').replace('"split": "test"', '"split": "val"') + "\n",
                   encoding="utf-8")
    with pytest.raises(RagError, match="bad.jsonl:1 has split 'val'"):
        load_set(bad)


def test_the_retrieval_report_shows_both_halves_and_lists_no_test_item(seed_searcher, tmp_path):
    items = load_set(HELD_OUT)
    items = [i for i in items if i.split == "dev"][:6] + [i for i in items if i.split == "test"][:6]
    report = run_retrieval_eval(items, lambda q, k: seed_searcher.search(q, k), progress=False)
    assert set(report["splits"]) == {"dev", "test"}
    dev_rows = [r for r in report["rows"] if r["split"] == "dev"]
    assert report["splits"]["dev"]["overall"]["n"] == len(dev_rows)
    assert report["splits"]["dev"]["overall"]["recall@5"] == pytest.approx(
        sum(r["recall@5"] for r in dev_rows) / len(dev_rows), abs=1e-4)
    _, md = write_report({**report, "split": "both", "tuned_on": "dev"}, tmp_path, "held-retrieval")
    text = md.read_text(encoding="utf-8")
    assert "## Dev and test side by side" in text and "Tuned on: **dev**" in text
    listed = text.split("## Items with evidence missing")[1]
    assert not any(f"- {r['id']} " in listed for r in report["rows"] if r["split"] == "test")


def test_the_answer_report_puts_dev_test_and_all_side_by_side(tmp_path):
    unanswerable = [i for i in load_set(HELD_OUT) if i.type == "unanswerable" and i.lang == "zh"]
    items = [i for i in unanswerable if i.split == "dev"][:2]
    items += [i for i in unanswerable if i.split == "test"][:2]
    refusal = Answer("问题", "报道中没有提供这一信息。", [], [], True, "问题", "zh", {"ttft_s": 1.0, "total_s": 2.0})
    answered = Answer("问题", "答", [], [], False, "问题", "zh", {"ttft_s": 1.0, "total_s": 2.0})
    # The fake system refuses the dev items and answers the test ones: the halves must differ.
    report = run_answer_eval(items, lambda q: refusal if next(i for i in items if i.question == q).split == "dev"
                             else answered, progress=False)
    assert report["splits"]["dev"]["overall"]["refusal_accuracy"] == 1.0
    assert report["splits"]["test"]["overall"]["refusal_accuracy"] == 0.0
    assert report["metrics"]["overall"]["refusal_accuracy"] == 0.5  # the old table: all items
    paths = write_answer_report({**report, "split": "both", "tuned_on": None}, tmp_path, "held-answers")
    text = paths[1].read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| overall |") and "·" in line)
    assert "1.000 · 0.000 · 0.500" in row
    assert "Tuned on: not stated" in text and "in the test half, not listed" in text
    assert json.loads(paths[0].read_text(encoding="utf-8"))["splits"]["test"]["overall"]["n"] == 2


def test_rag_eval_takes_a_half_and_the_tuned_on_half(monkeypatch, tmp_path):
    import rag.evaluation.commands as commands
    from rag.cli import main

    seen = {}

    def fake_answer_eval(args, settings, items):
        seen.update(items=items, half=commands._halves(args), name=commands._set_name(args))
        return 0

    monkeypatch.setattr(commands, "_answer_eval", fake_answer_eval)
    assert main(["eval", str(HELD_OUT), "--split", "test", "--tuned-on", "dev", "--out", str(tmp_path)]) == 0
    assert {i.split for i in seen["items"]} == {"test"} and seen["half"] == {"split": "test", "tuned_on": "dev"}
    assert seen["name"] == "seeds-heldout-test"
    assert main(["eval", str(HELD_OUT), "--out", str(tmp_path)]) == 0
    assert {i.split for i in seen["items"]} == set(SPLITS) and seen["name"] == "seeds-heldout"
