"""The `rag` command: a thin layer over the library (index, search, ask, chat, eval, bench, pages,
models)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rag.config import PROJECT_ROOT, Settings
from rag.errors import RagError

EXAMPLE_QUESTION = "苍南县建立了多少个党建联盟？"


def _settings(args) -> Settings:
    return Settings.from_env(corpus_dir=getattr(args, "corpus", None), index_dir=getattr(args, "index", None),
                             embed_model=getattr(args, "embed_model", None),
                             llm_model=getattr(args, "model", None), llm_backend=getattr(args, "backend", None),
                             llm_base_url=getattr(args, "base_url", None))


def cmd_ask(args) -> int:
    from rag.answer.pipeline import Answered, Delta, get_pipeline

    pipeline = get_pipeline(_settings(args))
    answer = None
    for event in pipeline.stream(args.question, k=args.k):
        if isinstance(event, Answered):
            answer = event.answer
        elif isinstance(event, Delta) and not args.json:
            print(event.text, end="", flush=True)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2, default=str))
        return 0
    print()
    if answer.abstained or answer.text != answer.raw_text.strip():
        print(f"\n{'Answer' if not answer.abstained else 'Refused'} (checked): {answer.text}")
    if answer.corrected_numbers:
        fixes = ", ".join(f"{wrong} → {right}" for wrong, right in answer.corrected_numbers)
        print(f"note: amounts corrected to what the passages state: {fixes}")
    if answer.unverified_numbers:
        print(f"warning: numbers found in no passage: {', '.join(answer.unverified_numbers)}")
    if answer.citations:
        print("\nSources:")
        for c in answer.citations:
            print(f"  [{c.n}] {c.article} — {c.source}, ¶{c.paragraph}\n      “{c.quote}”")
    t = answer.timings
    print(f"\n(retrieval {t.get('retrieve_s', 0):.2f} s, first token {t.get('ttft_s', 0) or 0:.1f} s, "
          f"total {t.get('total_s', 0) or 0:.1f} s)", file=sys.stderr)
    return 0


def cmd_chat(args) -> int:
    try:
        from rag.app.ui import serve
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "gradio":
            raise
        raise RagError(f"the chat window needs Gradio ({exc}): run `pip install 'rag[chat]'`.") from exc

    from rag.app.access import exposure_warnings, read_logins, tls_files

    logins = read_logins(args.auth, args.auth_file)
    tls = tls_files(args.ssl_keyfile, args.ssl_certfile)
    for warning in exposure_warnings(args.host, logins, tls, bool(args.auth), args.auth_file):
        print(f"warning: {warning}", file=sys.stderr)
    serve(_settings(args), args.host, args.port, logins, **tls)
    return 0


def cmd_index(args) -> int:
    from rag.search.index import build_index
    from rag.models.embedder import load_embedder

    settings = _settings(args)
    started = time.perf_counter()
    print(f"Loading the embedder {settings.embed_model!r}…", file=sys.stderr)
    embedder = load_embedder(settings)
    index, corpus = build_index(settings, embedder, progress=not args.quiet)
    status = index.status()
    for name, reason in corpus.skipped:
        print(f"warning: skipped {name}: {reason}", file=sys.stderr)
    for refusal in corpus.refused:  # names and link targets only: a refused file is never opened
        print(f"warning: refused {refusal.file}: {refusal.reason}", file=sys.stderr)
    print(f"Indexed {status.pages} pages → {status.articles} articles → {status.chunks} chunks "
          f"with {status.embedder} ({status.dimension}-dim; "
          f"{status.embedded} texts embedded now, the rest from the embedding cache) "
          f"in {time.perf_counter() - started:.1f} s (build {status.build_seconds:.1f} s); "
          f"saved to {status.path}")
    return 0


def cmd_search(args) -> int:
    from rag.search.retrieve import open_searcher, validate_question

    settings = _settings(args)
    question = validate_question(args.question, settings)
    passages = open_searcher(settings, progress=True).search(question, args.k)
    if args.json:
        print(json.dumps([p.__dict__ for p in passages], ensure_ascii=False, indent=2))
        return 0
    print(f"Q: {question}\n")
    for p in passages:
        print(f"[{p.rank}] {p.article}  ({p.source}, ¶{p.paragraph}, score {p.score:.3f})")
        print("    " + p.text.replace("\n\n", "\n    ") + "\n")
    return 0


def cmd_eval(args) -> int:
    from rag.evaluation.retrieval import load_set, run_retrieval_eval, write_report
    from rag.search.retrieve import open_searcher, validate_question

    settings = _settings(args)
    items = load_set(Path(args.set))
    if not args.retrieval_only:
        return _answer_eval(args, settings, items)
    searcher = open_searcher(settings)
    report = run_retrieval_eval(items, lambda q, k: searcher.search(validate_question(q, settings), k))
    report["set"] = str(args.set)
    status = searcher.index.status()
    report["settings"] = {"embedder": status.embedder, "chunks": status.chunks}
    name = f"{Path(args.set).stem}-retrieval"
    json_path, md_path = write_report(report, Path(args.out), name)
    overall = report["metrics"]["overall"]
    english = report["metrics"].get("lang:en", {})
    print(" ".join(f"{m}={overall[m]:.3f}" for m in ("recall@1", "recall@3", "recall@5", "recall@10", "mrr",
                                                       "article_hit@5")))
    if english:
        print(f"English questions: recall@5={english['recall@5']:.3f} (n={english['n']})")
    print(f"Report: {json_path} and {md_path}")
    return 0


def _answer_eval(args, settings, items) -> int:
    from rag.evaluation.answers import write_answer_report, run_answer_eval
    from rag.answer.pipeline import get_pipeline

    pipeline = get_pipeline(settings)
    if args.limit:
        items = items[: args.limit]
    report = run_answer_eval(items, pipeline.ask)
    report["set"] = str(args.set)
    report["settings"] = {"llm": f"{settings.llm_backend}:{settings.llm_model}", "top_k": settings.top_k,
                          "llm_passages": settings.llm_passages, "min_coverage": settings.min_coverage}
    name = f"{Path(args.set).stem}-answers-{settings.llm_model.replace('/', '_')}"
    paths = write_answer_report(report, Path(args.out), name)
    overall = report["metrics"]["overall"]
    print(" ".join(f"{k}={v}" for k, v in overall.items()))
    print("Report: " + ", ".join(str(p) for p in paths))
    return 0


def cmd_bench(args) -> int:
    """Index build time with models loaded and retrieval latency over an evaluation set's questions,
    or the one other bench a flag names (--decode, --stock, --scale, --load, --prefix)."""
    sizes = _check_bench_options(args)
    try:
        return _run_bench(args, _settings(args), sizes)
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


def cmd_pages(args) -> int:
    """What the page parser sees: each page's banners and articles, then the chunks they make."""
    from rag.ingest.corpus import load_corpus

    settings = _settings(args)
    corpus = load_corpus(args.folder or settings.corpus_dir, settings.chunk_max_chars)
    for page in corpus.pages:
        print(f"== {page.source}  banners={page.banners}")
        for a in page.articles:
            extra = f"  [kicker: {a.kicker}]" if a.kicker else ""
            print(f"  {a.number:2d} {a.kind:8s} {a.headline}{extra}  ({len(a.text)} chars, by {a.byline})")
    print(f"{len(corpus.chunks)} chunks, skipped: {corpus.skipped}")
    for refusal in corpus.refused:
        print(f"refused {refusal.file}: {refusal.reason}")
    return 0


def cmd_models(args) -> int:
    """Prepare the configured embedder and the GGUF chat model(s) and say where they are, so that
    the first `rag index` or `rag chat` does not convert or assemble them."""
    from rag.models.embedder import resolve_embedder
    from rag.models.gguf import resolve_gguf

    settings = _settings(args)
    started = time.perf_counter()
    spec = resolve_embedder(settings)
    print(f"embedder  {spec.name} ({spec.source})\nfolder    {spec.path}\nchecksum  {spec.checksum}")
    names = args.llm or ([settings.llm_model] if settings.llm_backend == "llama.cpp" else [])
    for name in names:
        print(f"llm       {resolve_gguf(name, settings, verify=args.verify)}")
    if not names:
        print(f"llm       {settings.llm_model} is loaded by the {settings.llm_backend} backend; no GGUF to prepare")
    print(f"ready in  {time.perf_counter() - started:.1f} s")
    return 0


def _llm_options(p) -> None:
    p.add_argument("--model", help="LLM: preset qwen-1.5b (default) or fast, a .gguf file, a hub id")
    p.add_argument("--backend", help="llama.cpp (default), transformers or openai")
    p.add_argument("--base-url", help="OpenAI-compatible server URL for --backend openai")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Cited answers from Chinese newspaper pages.")
    parser.add_argument("--corpus", type=Path, help="folder of pages (default: seeds/ or RAG_CORPUS_DIR)")
    parser.add_argument("--index", type=Path, help="index folder (default: vectorstore/ or RAG_INDEX_DIR)")
    parser.add_argument("--embed-model", help="embedder: e5-small, a Hugging Face id or a local folder")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="build the search index from the pages")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", help="show the passages retrieved for a question")
    p.add_argument("question", nargs="?", default=EXAMPLE_QUESTION)
    p.add_argument("-k", type=int, default=5, help="number of passages (1-50)")
    p.add_argument("--json", action="store_true", help="print passages as JSON")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="answer a question with citations (streams the answer)")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=None, help="passages to retrieve")
    p.add_argument("--json", action="store_true", help="print the Answer as JSON")
    _llm_options(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("chat", help="open the chat window in the browser (Gradio)")
    p.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1; 0.0.0.0: the network)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--auth", metavar="USER:PASSWORD",
                   help="require a login (visible in the process list: prefer --auth-file or RAG_AUTH)")
    p.add_argument("--auth-file", type=Path, metavar="PATH",
                   help="require a login: a file of user:password lines (chmod 600)")
    p.add_argument("--ssl-keyfile", type=Path, metavar="PATH", help="serve HTTPS: the private key (PEM)")
    p.add_argument("--ssl-certfile", type=Path, metavar="PATH", help="serve HTTPS: its certificate (PEM)")
    _llm_options(p)
    p.set_defaults(func=cmd_chat)

    for add_parser in (_add_eval_parser, _add_bench_parser, _add_pages_parser, _add_models_parser):
        add_parser(sub)
    return parser


def _add_eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate on a JSONL evaluation set")
    p.add_argument("set", help="evaluation set, e.g. eval/sets/public.jsonl")
    p.add_argument("--retrieval-only", action="store_true", help="score retrieval only")
    p.add_argument("--out", default=str(PROJECT_ROOT / "eval" / "reports"), help="report folder")
    p.add_argument("--limit", type=int, default=0, help="only the first N items")
    _llm_options(p)
    p.set_defaults(func=cmd_eval)


def _add_bench_parser(sub) -> None:
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
    p.add_argument("--prefix", action="store_true",
                   help="instead: time to first token of follow-up questions with and without the kept "
                        "prompt prefix (2 × --repeat follow-ups)")
    _llm_options(p)
    p.add_argument("--out", default=str(PROJECT_ROOT / "eval" / "bench"))
    p.set_defaults(func=cmd_bench)


def _add_pages_parser(sub) -> None:
    p = sub.add_parser("pages", help="show what the page parser sees: each page's articles, then the chunk count")
    p.add_argument("folder", nargs="?", type=Path, help="folder of pages (default: --corpus, seeds/ or RAG_CORPUS_DIR)")
    p.set_defaults(func=cmd_pages)


def _add_models_parser(sub) -> None:
    p = sub.add_parser("models", help="prepare the embedder and the GGUF LLM ahead of time (converted, "
                                      "assembled, checked) and show where they are")
    p.add_argument("llm", nargs="*", metavar="NAME_OR_PATH",
                   help="GGUF presets (qwen-1.5b, fast) or .gguf files (default: RAG_LLM_MODEL, for llama.cpp)")
    p.add_argument("--verify", action="store_true",
                   help="re-hash assembled GGUF files even when their record vouches for them")
    p.set_defaults(func=cmd_models)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the previous index (if any) is unchanged", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
