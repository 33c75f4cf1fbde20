"""The evaluation and benchmark subcommands of `rag` (`rag eval`, `rag bench`): argument parsing
and report writing over `rag.evaluation`'s runners. `rag.cli` mounts them."""

from __future__ import annotations

import json
from pathlib import Path

from rag.config import PROJECT_ROOT, Settings
from rag.errors import RagError
from rag.evaluation.splits import CHOICES, SPLITS


def cmd_eval(args, settings: Settings) -> int:
    """`rag eval SET`: retrieval metrics (--retrieval-only) or answer metrics, with a report; dev and
    test halves side by side (--split both, the default) or one half (--split dev)."""
    from rag.evaluation.retrieval import load_set, resolve_gold, run_retrieval_eval, write_report
    from rag.evaluation.splits import select
    from rag.search.retrieve import open_searcher, validate_question

    items = select(load_set(Path(args.set)), _split(args))
    if args.traditional:  # the same items asked in Traditional script (OpenCC s2t), same gold
        from dataclasses import replace

        from rag.script import to_traditional

        items = [replace(item, question=to_traditional(item.question)) for item in items]
    if not args.retrieval_only:
        return _answer_eval(args, settings, items)
    searcher = open_searcher(settings)
    items = resolve_gold(items, searcher.index.chunks)
    report = run_retrieval_eval(items, lambda q, k: searcher.search(validate_question(q, settings), k))
    report["set"] = str(args.set) + (" (questions converted to Traditional, OpenCC s2t)" if args.traditional else "")
    report.update(_halves(args))
    status = searcher.index.status()
    report["settings"] = {"embedder": status.embedder, "chunks": status.chunks}
    name = f"{_set_name(args)}-retrieval"
    json_path, md_path = write_report(report, Path(args.out), name)
    overall = report["metrics"]["overall"]
    english = report["metrics"].get("lang:en", {})
    print(" ".join(f"{m}={overall[m]:.3f}" for m in ("recall@1", "recall@3", "recall@5", "recall@10", "mrr",
                                                       "article_hit@5")))
    if english:
        print(f"English questions: recall@5={english['recall@5']:.3f} (n={english['n']})")
    for half, metrics in report["splits"].items():
        print(f"{half}: recall@5={metrics['overall']['recall@5']:.3f} (n={metrics['overall']['n']})")
    print(f"Report: {json_path} and {md_path}")
    return 0


def _split(args) -> str:
    return getattr(args, "split", "both")


def _halves(args) -> dict:
    """What a report records of the halves: which were evaluated and which one was tuned on."""
    tuned = getattr(args, "tuned_on", None)
    if tuned == "test":
        print("warning: tuned on the test half: its figures are no longer held out; tune on dev")
    return {"split": _split(args), "tuned_on": tuned}


def _set_name(args) -> str:
    """The report's name: the set's, "-traditional" when its questions were converted, and the half
    when only one was evaluated (so that it is compared with the same half's last report)."""
    half = "" if _split(args) == "both" else f"-{_split(args)}"
    return Path(args.set).stem + ("-traditional" if args.traditional else "") + half


def _answer_eval(args, settings, items) -> int:
    from rag.evaluation.answers import write_answer_report, run_answer_eval
    from rag.evaluation.retrieval import resolve_gold
    from rag.answer.pipeline import get_pipeline

    pipeline = get_pipeline(settings).load()
    if args.limit:
        items = items[: args.limit]
    items = resolve_gold(items, pipeline.searcher.index.chunks)
    report = run_answer_eval(items, pipeline.ask)
    report["set"] = str(args.set) + (" (questions converted to Traditional, OpenCC s2t)" if args.traditional else "")
    report.update(_halves(args))
    report["settings"] = {"llm": f"{settings.llm_backend}:{settings.llm_model}", "top_k": settings.top_k,
                          "llm_passages": settings.llm_passages, "min_coverage": settings.min_coverage}
    name = f"{_set_name(args)}-answers-{settings.llm_model.replace('/', '_')}"
    paths = write_answer_report(report, Path(args.out), name)
    overall = report["metrics"]["overall"]
    print(" ".join(f"{k}={v}" for k, v in overall.items()))
    shown = ("n", "answer_accuracy", "refusal_accuracy", "false_refusal", "citation_precision")
    for half, metrics in report["splits"].items():
        print(f"{half}: " + " ".join(f"{k}={metrics['overall'][k]}" for k in shown))
    print("Report: " + ", ".join(str(p) for p in paths))
    return 0


def cmd_bench(args, settings: Settings) -> int:
    """Index build time with models loaded and retrieval latency over an evaluation set's questions,
    or the one other bench a flag names (--decode, --stock, --scale, --load, --prefix)."""
    sizes = _check_bench_options(args)
    try:
        return _run_bench(args, settings, sizes)
    except ValueError as exc:  # a value the bench cannot work with: the user's to fix, not a traceback
        raise RagError(f"rag bench cannot run with these options: {exc}") from exc


def _check_bench_options(args) -> list[int]:
    """The paragraph counts of --scale; RagError for an option the benches cannot use."""
    sizes = [size.strip() for size in args.scale.split(",")] if args.scale is not None else []
    if not all(size.isdecimal() and int(size) > 0 for size in sizes):
        raise RagError(f"--scale takes paragraph counts separated by commas, e.g. --scale 10000,100000 "
                       f"(got {args.scale!r})")
    for option, value, least in (("--repeat", args.repeat, 1), ("--users", args.users, 1), ("--limit", args.limit, 0)):
        if value < least:
            raise RagError(f"{option} must be at least {least} (got {value})")
    if not args.seconds > 0:
        raise RagError(f"--seconds must be more than 0 (got {args.seconds})")
    return [int(size) for size in sizes]


def _run_bench(args, settings: Settings, sizes: list[int]) -> int:
    from rag.evaluation import bench
    from rag.evaluation.loadtest import load_served_chat
    from rag.evaluation.retrieval import load_set

    out, model = Path(args.out), settings.llm_model.replace("/", "_")
    if args.decode:
        return _write_bench(bench.decode_speed(settings, repeats=args.repeat), out, f"decode-{model}.json")
    items = load_set(Path(args.set))
    questions = [item.question for item in items]
    if args.stock:
        result = _stamped(bench.stock_comparison(settings, items[: args.limit] if args.limit else items))
        return _write_bench(result, out, f"stock-comparison-{model}.json", stamp=False,
                            markdown=bench.render_comparison(result))
    if sizes:
        return _write_bench(bench.scale_bench(settings, sizes, questions, args.repeat), out,
                            f"scale-{'-'.join(map(str, sizes))}.json")
    if args.load:
        return _write_bench(load_served_chat(settings, questions, args.users, args.seconds), out,
                            f"load-{model}.json")
    if args.engines:
        from rag.evaluation.embedbench import engines_bench

        return _write_bench(engines_bench(settings), out, "embed-engines.json")
    if args.archive:
        from rag.evaluation.archivebench import archive_bench

        return _write_bench(archive_bench(settings, questions, args.repeat), out,
                            f"archive-{settings.corpus_dir.name}.json")
    if args.prefix:
        follow_ups = [item.question for item in items if item.answerable]
        return _write_bench(bench.follow_up_ttft(settings, follow_ups, pairs=2 * args.repeat), out,
                            f"prefix-{model}.json")
    return _write_bench(bench.retrieval_bench(settings, questions, args.repeat), out, "retrieval.json")


def _stamped(result: dict) -> dict:
    from rag.evaluation.retrieval import describe_machine
    from rag.files import timestamp

    return {"written_at": timestamp(), "machine": describe_machine(), **result}


def _write_bench(result: dict, out: Path, name: str, stamp: bool = True, markdown: str | None = None) -> int:
    """Write ``name`` (JSON) and beside it the same as Markdown (``markdown``, or every measure in a
    table), and print the result."""
    from rag.evaluation.bench import render_bench

    result = _stamped(result) if stamp else result
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    stem = Path(name).stem
    (out / f"{stem}.md").write_text(markdown or render_bench(result, stem), encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "reports"}, ensure_ascii=False, indent=2))
    return 0


def add_eval_parser(sub, llm_options, settings_of) -> None:
    """The `rag eval` subcommand; ``llm_options`` adds the LLM flags, ``settings_of`` reads Settings from args."""
    p = sub.add_parser("eval", help="evaluate on a JSONL evaluation set")
    p.add_argument("set", help="evaluation set, e.g. eval/sets/public.jsonl")
    p.add_argument("--retrieval-only", action="store_true", help="score retrieval only")
    p.add_argument("--out", default=str(PROJECT_ROOT / "eval" / "reports"), help="report folder")
    p.add_argument("--limit", type=int, default=0, help="only the first N items")
    p.add_argument("--traditional", action="store_true",
                   help="ask every question converted to Traditional script (OpenCC s2t), same gold")
    p.add_argument("--split", choices=CHOICES, default="both",
                   help="evaluate the dev half, the test half, or both side by side (default); tune on dev only")
    p.add_argument("--tuned-on", choices=SPLITS, default=None,
                   help="the half the change being measured was tuned on, recorded in the report (dev)")
    llm_options(p)
    p.set_defaults(func=lambda args: cmd_eval(args, settings_of(args)))


def add_bench_parser(sub, llm_options, settings_of) -> None:
    """The `rag bench` subcommand (see `add_eval_parser`)."""
    p = sub.add_parser("bench", help="benchmark index build and retrieval latency (--decode: LLM decode speed)")
    p.add_argument("--set", default=str(PROJECT_ROOT / "eval" / "sets" / "public.jsonl"))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--decode", action="store_true",
                   help="instead: decode tokens/s of the llama.cpp adapter vs raw llama-cpp-python")
    p.add_argument("--stock", action="store_true",
                   help="instead: our pipeline against the stock LangChain recipe on --set, item by item")
    p.add_argument("--limit", type=int, default=0, help="--stock: only the first N items")
    p.add_argument("--scale", metavar="SIZES",
                   help="instead: index build and retrieval over synthetic corpora of SIZES paragraphs, "
                        "e.g. 10000,100000")
    p.add_argument("--load", action="store_true",
                   help="instead: simulated users (gradio_client) against `rag chat` served on loopback")
    p.add_argument("--users", type=int, default=8, help="--load: simultaneous users")
    p.add_argument("--seconds", type=float, default=300, help="--load: how long questions are sent")
    p.add_argument("--engines", action="store_true",
                   help="embedding throughput of torch, OpenVINO and the rest on the corpus's own texts")
    p.add_argument("--archive", action="store_true",
                   help="instead: search latency over the current index (--corpus) with and without "
                        "date and outlet filters")
    p.add_argument("--prefix", action="store_true",
                   help="instead: time to first token of follow-up questions with and without the kept "
                        "prompt prefix (2 × --repeat follow-ups)")
    llm_options(p)
    p.add_argument("--out", default=str(PROJECT_ROOT / "eval" / "bench"))
    p.set_defaults(func=lambda args: cmd_bench(args, settings_of(args)))


