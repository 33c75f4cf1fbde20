"""Does an answer check earn its place? Capture a set's dev answers once, replay them with one check off.

    .venv/bin/python eval/ablate.py capture eval/sets/seeds-blind.jsonl /tmp/sb.pkl [ID ...]
    .venv/bin/python eval/ablate.py replay /tmp/sb.pkl,/tmp/nb.pkl --off role
    .venv/bin/python eval/ablate.py capture eval/sets/seeds-blind.jsonl /tmp/sb-np.pkl --off parts --multi
    .venv/bin/python eval/ablate.py compare /tmp/sb.pkl /tmp/sb-np.pkl

`capture` runs the real pipeline (index, embedder and LLM as `Settings.from_env`, so set the RAG_*
variables of the set's corpus first) on the dev half only, and keeps for each item the passages the
LLM read and every raw answer it wrote. `replay` sends those raw answers through
`Pipeline._check` again with the named checks switched off (or `--off ""` for none, to see what a
code change alone does) and lists the items whose verdict changes: FIXED (right now, wrong as
captured) or BROKE. A check that breaks right answers on fresh dev halves, or fixes nothing, goes.
The gate before the LLM, the two-part search and the retry prompts cannot be replayed: they
change what is captured. Those are ablated live: `capture --off NAME` runs the pipeline with the
switch off (`--multi`: only the questions `split_parts` splits, the only ones `parts` changes),
and `compare` lists the items whose verdict differs between two captures.
Test halves are never read.
"""

from __future__ import annotations

import argparse
import json
import pickle
import time

import rag.answer.asked as asked
import rag.answer.cite as cite
import rag.answer.parts as parts
import rag.answer.pipeline as pipeline
from rag.answer.parts import split_parts
from rag.config import Settings
from rag.evaluation.answers import is_correct
from rag.evaluation.retrieval import EvalItem
from rag.textnorm import detect_language


def _without_kind(kind: str):
    checked = asked.check_figures
    return lambda *a: (lambda verdict: "" if verdict.startswith(kind) else verdict)(checked(*a))


# Each switch turns one check of rag.answer.cite / rag.answer.asked off.
SWITCHES = {
    "restated": lambda: setattr(cite, "RESTATED_SUPPORT", 0.0),  # the restated subject must be the passage's
    "role": lambda: setattr(cite, "role_unbound", lambda *a: False),  # the asked office bound to the name
    "titles": lambda: setattr(cite, "titles_missing", lambda *a: []),  # head titles must be in the passage
    "unitless": lambda: setattr(asked, "_UNITLESS_ZH", frozenset(asked.KINDS)),
    "quantity": lambda: setattr(pipeline, "check_figures", lambda *a: ""),  # the whole asked-quantity check
    "wrong-quantity": lambda: setattr(pipeline, "check_figures", _without_kind("wrong quantity")),
    "no-figure": lambda: setattr(pipeline, "check_figures", _without_kind("no figure")),
    "unverified-figure": lambda: setattr(pipeline, "check_figures", lambda a, s, q, u=(): asked.check_figures(a, s, q)),
    "caption": lambda: setattr(cite, "CAPTION_WORDS", ""),  # a caption is about its photo
    "glossary": lambda: setattr(cite, "gloss", lambda *a: set()),  # English words found through the glossary
    "part-figure": lambda: setattr(parts, "NO_ASKED_FIGURE", "\0"),  # a part's figure refusal lifted by its answer
    # A two-part question verified as one: no part called unanswered, no quantity check.
    "part-checks": lambda: setattr(pipeline, "unanswered", lambda *a: []),
    # Live only: a two-part question searched, gated and checked as one question.
    "parts": lambda: setattr(pipeline, "split_parts", lambda q: [parts.Part(q)]),
}


def _item(record: dict) -> EvalItem:
    return EvalItem(**{k: v for k, v in record.items() if k in EvalItem.__dataclass_fields__})


def _right(item: EvalItem, abstained: bool, text: str) -> bool:
    return (not abstained and is_correct(item, text)) if item.answerable else abstained


def _changed(item_id: str, right_now: bool, was: str, now: str) -> None:
    print(f"  {'FIXED' if right_now else 'BROKE'} {item_id}: was {was or 'answered'}, now {now or 'answered'}")


def capture(set_path: str, out: str, ids: set[str], off: list[str], multi: bool) -> None:
    items = [json.loads(line) for line in open(set_path, encoding="utf-8") if line.strip()]
    items = [i for i in items if i.get("split") == "dev" and (not ids or i["id"] in ids)
             and (not multi or len(split_parts(i["question"])) > 1)]
    for name in off:
        SWITCHES[name]()
    pipe = pipeline.Pipeline(Settings.from_env()).load()
    pipe.warm()
    check, records = pipe._check, []

    def recording(state, raw):
        answer = check(state, raw)
        records[-1]["turns"].append({"raw": raw})
        records[-1].update(context=state.context, asked=state.asked, gates=list(state.part_gates or []))
        return answer

    pipe._check = recording
    for n, item in enumerate(items, 1):
        records.append({"item": item, "turns": [], "context": [], "asked": item["question"]})
        started = time.perf_counter()
        answer = pipe.ask(item["question"])
        records[-1]["final"] = {"text": answer.text, "abstained": answer.abstained, "reason": answer.reason}
        records[-1]["passages"] = answer.passages
        print(f"{n}/{len(items)} {item['id']} {time.perf_counter() - started:.1f}s {answer.reason or 'answered'}",
              flush=True)
    with open(out, "wb") as handle:
        pickle.dump(records, handle)


def replay(paths: list[str], off: list[str]) -> None:
    for name in off:
        SWITCHES[name]()
    from rag.search.retrieve import open_searcher

    # The checks need the embedder and the index's glossary; nothing is searched.
    pipe = pipeline.Pipeline(Settings.from_env(), searcher=open_searcher(Settings.from_env()), chat=object())
    for path in paths:
        fixed = broke = 0
        for record in pickle.load(open(path, "rb")):
            item = _item(record["item"])
            if not record["turns"]:  # refused before the LLM: nothing to replay
                continue
            state = pipeline.Asking(item.question, detect_language(item.question), time.perf_counter())
            state.asked, state.context, state.passages = record["asked"], record["context"], record["passages"]
            pieces = split_parts(state.asked)
            if len(pieces) > 1:
                state.parts, state.part_gates = pieces, record.get("gates") or [""] * len(pieces)
            answer = None
            for turn in record["turns"]:  # the next turn was the pipeline's retry of this one
                again = pipe._check(state, turn["raw"])
                if answer is not None and again.abstained and not answer.abstained:
                    break
                answer = again
                if not pipe._correction(again, state.language, [], turn["raw"])[0]:
                    break
            now = _right(item, answer.abstained, answer.text)
            then = _right(item, record["final"]["abstained"], record["final"]["text"])
            if now != then:
                fixed, broke = fixed + now, broke + then
                _changed(item.id, now, record["final"]["reason"], answer.reason)
        print(f"{path}: fixed {fixed}, broke {broke}")


def compare(before: str, after: str) -> None:
    """Items whose verdict differs between two captures of the same set (the second, say, with a
    switch off): FIXED where the second is right, BROKE where the first was."""
    then = {r["item"]["id"]: r for r in pickle.load(open(before, "rb"))}
    fixed = broke = same = 0
    for record in pickle.load(open(after, "rb")):
        old = then.get(record["item"]["id"])
        if old is None:
            continue
        item = _item(record["item"])
        now, was = (_right(item, r["final"]["abstained"], r["final"]["text"]) for r in (record, old))
        if now == was:
            same += 1
            continue
        fixed, broke = fixed + now, broke + was
        _changed(item.id, now, old["final"]["reason"], record["final"]["reason"])
    print(f"{after} against {before}: fixed {fixed}, broke {broke}, same {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    cap = commands.add_parser("capture", help="run the dev half, keep passages and raw answers")
    cap.add_argument("set")
    cap.add_argument("out")
    cap.add_argument("ids", nargs="*")
    cap.add_argument("--off", default="", help="comma-separated switches, as for replay")
    cap.add_argument("--multi", action="store_true", help="only the questions split into parts")
    cmp = commands.add_parser("compare", help="items whose verdict differs between two captures")
    cmp.add_argument("before")
    cmp.add_argument("after")
    rep = commands.add_parser("replay", help="replay captured answers with checks off")
    rep.add_argument("captures", help="comma-separated capture files")
    rep.add_argument("--off", default="", help=f"comma-separated, of: {', '.join(SWITCHES)}")
    args = parser.parse_args()
    if args.command == "capture":
        capture(args.set, args.out, set(args.ids), [n for n in args.off.split(",") if n], args.multi)
    elif args.command == "compare":
        compare(args.before, args.after)
    else:
        replay(args.captures.split(","), [n for n in args.off.split(",") if n])


if __name__ == "__main__":
    main()
