"""The `rag` command: a thin layer over the library (index, search, ask, chat, eval, bench, pages,
models, feedback)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rag.config import PROJECT_ROOT, Settings
from rag.errors import RagError
from rag.app.commands import add_serve_parsers
from rag.evaluation.commands import add_bench_parser, add_eval_parser
from rag.ingest.formats import FORMATS, SUFFIX_FORMATS

EXAMPLE_QUESTION = "苍南县建立了多少个党建联盟？"


def _settings(args) -> Settings:
    return Settings.from_env(corpus_dir=getattr(args, "corpus", None), index_dir=getattr(args, "index", None),
                             embed_model=getattr(args, "embed_model", None),
                             llm_model=getattr(args, "model", None), llm_backend=getattr(args, "backend", None),
                             llm_base_url=getattr(args, "base_url", None),
                             corpus_format=getattr(args, "format", None), field_map=getattr(args, "fields", None))


def _filters(args) -> dict:
    """The --from/--to/--paper options as `rag.retrieve`'s keyword arguments."""
    return {"date_from": args.date_from, "date_to": args.date_to, "paper": args.paper}


def _filter_options(p) -> None:
    p.add_argument("--from", dest="date_from", metavar="DATE", help="only articles dated from DATE (2023, 2023-07, 2023-07-28)")
    p.add_argument("--to", dest="date_to", metavar="DATE", help="only articles dated up to DATE (inclusive)")
    p.add_argument("--paper", metavar="OUTLET", help="only articles of this outlet (several: comma-separated)")


def cmd_ask(args) -> int:
    from rag.answer.pipeline import Answered, Delta, get_pipeline

    pipeline = get_pipeline(_settings(args))
    answer = None
    for event in pipeline.stream(args.question, k=args.k, **_filters(args)):
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
            where = f"{c.provenance} · " if c.provenance else ""
            print(f"  [{c.n}] {c.label or c.article} — {where}{c.source}, ¶{c.paragraph}\n      “{c.quote}”")
            if c.also_in:
                print(f"      also printed in: {'; '.join(c.also_in)}")
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
    from rag.search.build import build_index
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
    for name, problem in corpus.problems[:20]:  # records left out of files that were read
        print(f"warning: {name}: {problem}", file=sys.stderr)
    if len(corpus.problems) > 20:
        print(f"warning: … and {len(corpus.problems) - 20} more problems (see the index manifest)", file=sys.stderr)
    archive = f" from {status.outlets} outlets" if status.outlets else ""
    if status.first_date:
        archive += f", dated {status.first_date} – {status.last_date}"
    print(f"Indexed {status.pages} files → {status.articles} articles{archive} → {status.chunks} chunks "
          f"with {status.embedder} ({status.dimension}-dim; "
          f"{status.embedded} texts embedded now, the rest from the embedding cache) "
          f"in {time.perf_counter() - started:.1f} s (build {status.build_seconds:.1f} s); "
          f"saved to {status.path}")
    return 0


def cmd_add(args) -> int:
    """Copy files (and the corpus files in folders) into the corpus folder, then rebuild the index,
    embedding only the new texts; exit 1 when any file was refused."""
    from rag.ingest.intake import add_paths

    settings = _settings(args)
    settings.corpus_dir.mkdir(parents=True, exist_ok=True)
    report = add_paths(args.paths, settings.corpus_dir, settings)
    for path in report.added:
        print(f"added {path.name}")
    for given, path in report.already:
        print(f"already there: {given}" + (f" (as {path.name})" if Path(given).name != path.name else ""))
    for name, note in report.problems:
        print(f"warning: {name}: {note}", file=sys.stderr)
    for given, error in report.refused:
        print(f"refused {given}: {error}", file=sys.stderr)
    print(f"{len(report.added)} added, {len(report.already)} already there, {len(report.refused)} refused "
          f"→ {settings.corpus_dir}", file=sys.stderr)
    if report.added and not args.no_index:
        from rag.models.embedder import load_embedder
        from rag.search.build import build_index

        index, _ = build_index(settings, load_embedder(settings), progress=not args.quiet)
        status = index.status()
        print(f"embedded {status.embedded} new texts ({_texts_of(index) - status.embedded} from the cache); "
              f"the index holds {status.pages} files → {status.articles} articles → {status.chunks} chunks")
    elif report.added:
        print("the index is not rebuilt (--no-index): run `rag index`, or it is rebuilt when next opened",
              file=sys.stderr)
    return 1 if report.refused else 0


def _texts_of(index) -> int:
    """The texts a build of this index embeds or takes from the cache (as `rag.search.build._embed`
    chooses them): chunks of one sentence whole, the others' sentences and their headlines."""
    owners = set(index.sentence_owner.tolist())
    return (len(index.chunks) - len(owners) + len({index.chunks[i].label for i in owners})
            + len(index.sentence_owner))


def cmd_search(args) -> int:
    from rag.search.filters import SearchFilter
    from rag.search.retrieve import open_searcher, validate_question

    settings = _settings(args)
    question = validate_question(args.question, settings)
    filters = SearchFilter.parse(**_filters(args))
    passages = open_searcher(settings, progress=True).search(question, args.k, filters)
    if args.json:
        print(json.dumps([p.to_document().metadata | {"text": p.text} for p in passages],
                         ensure_ascii=False, indent=2))
        return 0
    print(f"Q: {question}" + (f"  [only {filters.describe()}]" if filters else "") + "\n")
    if not passages:
        print("no passages: nothing in the index matches the filter" if filters else "no passages")
    for p in passages:
        where = f"{p.provenance}, " if p.provenance else ""
        made = " (title from the lead)" if p.headline_source == "lead" else ""
        print(f"[{p.rank}] {p.label}{made}  ({where}{p.source}, ¶{p.paragraph}, score {p.score:.3f})")
        if p.also_in:
            print(f"    also printed in: {'; '.join(p.also_in)}")
        print("    " + p.text.replace("\n\n", "\n    ") + "\n")
    return 0


def cmd_pages(args) -> int:
    """What the page parser sees: each page's banners and articles, then the chunks they make."""
    from rag.ingest.corpus import load_corpus

    settings = _settings(args)
    corpus = load_corpus(args.folder or settings.corpus_dir, settings.chunk_max_chars, settings.corpus_format,
                         settings.field_map)
    from rag.ingest.article import provenance

    for page in corpus.pages:
        print(f"== {page.source}  [{page.format}]  banners={page.banners}")
        for a in page.articles:
            extra = f"  [kicker: {a.kicker}]" if a.kicker else ""
            extra += f"  [{provenance(a)}]" if provenance(a) else ""
            extra += "  (headline from the lead)" if a.headline_source == "lead" else ""
            print(f"  {a.number:2d} {a.kind:8s} {a.headline}{extra}  ({len(a.text)} chars, by {a.byline or a.author})")
            for start, title in a.subheads:
                print(f"       › {title}  (from paragraph {start + 1})")
    print(f"{len(corpus.chunks)} chunks, skipped: {corpus.skipped}")
    for name, problem in corpus.problems:
        print(f"problem {name}: {problem}")
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
    parser.add_argument("--format", choices=FORMATS,
                        help="how corpus files are read (default auto: each detected from the file)")
    parser.add_argument("--fields", metavar="MAP",
                        help="record field names for JSON Lines / CSV, ours=theirs: body=内容,title=标题")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="build the search index from the pages")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("add", help="copy files or folders into the corpus (checked), then rebuild the index")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                   help=f"files ({' '.join(SUFFIX_FORMATS)}) or folders of them")
    p.add_argument("--no-index", action="store_true", help="only copy; the index is rebuilt when next opened")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("search", help="show the passages retrieved for a question")
    p.add_argument("question", nargs="?", default=EXAMPLE_QUESTION)
    p.add_argument("-k", type=int, default=5, help="number of passages (1-50)")
    p.add_argument("--json", action="store_true", help="print passages as JSON")
    _filter_options(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("ask", help="answer a question with citations (streams the answer)")
    p.add_argument("question")
    p.add_argument("-k", type=int, default=None, help="passages to retrieve")
    p.add_argument("--json", action="store_true", help="print the Answer as JSON")
    _filter_options(p)
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

    for add_parser in (add_eval_parser, add_bench_parser, add_serve_parsers):
        add_parser(sub, _llm_options, _settings)
    for add_parser in (_add_pages_parser, _add_models_parser, _add_feedback_parser, _add_timeline_parser):
        add_parser(sub)
    return parser


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


def _add_feedback_parser(sub) -> None:
    from rag.app.feedback import FORMATS

    p = sub.add_parser("feedback", help="the chat's ratings of its answers (👍/👎 with comments)")
    actions = p.add_subparsers(dest="action", required=True)
    e = actions.add_parser("export", help="write every rating (question, answer, citations, model, time, rating, "
                                          "comment, login) as JSON Lines or CSV")
    e.add_argument("--out", type=Path, metavar="FILE", help="write to FILE (default: standard output)")
    e.add_argument("--format", dest="export_format", choices=FORMATS, default="jsonl", help="default jsonl")
    e.set_defaults(func=cmd_feedback_export)


def cmd_feedback_export(args) -> int:
    from rag.app.feedback import FeedbackStore, export_rows, feedback_path

    path = feedback_path(_settings(args))
    rows = FeedbackStore(path).rows()
    text = export_rows(rows, args.export_format)
    if args.out is None:
        sys.stdout.write(text)
    else:
        try:
            args.out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise RagError(f"cannot write {args.out} ({exc}); pass another --out") from exc
    where = f" to {args.out}" if args.out else ""
    print(f"{len(rows)} rating{'s' if len(rows) != 1 else ''} from {path}{where}", file=sys.stderr)
    return 0


def _add_timeline_parser(sub) -> None:
    p = sub.add_parser("timeline", help="how the reporting on a topic developed: dated, cited sentences and "
                                        "counts per period")
    p.add_argument("topic", help="what the timeline is about, e.g. 台风杜苏芮")
    p.add_argument("--granularity", default="auto", help="day, week, month or year (default auto: from the span)")
    p.add_argument("--max-entries", type=int, help="stories listed at most (default 100)")
    p.add_argument("--summarise", action="store_true", help="add a checked LLM line per period (loads the LLM)")
    p.add_argument("--json", action="store_true", help="print the Timeline as JSON")
    _filter_options(p)
    p.set_defaults(func=cmd_timeline)


def cmd_timeline(args) -> int:
    from rag.answer.timeline import MAX_ENTRIES, timeline

    result = timeline(args.topic, args.date_from, args.date_to, args.paper, args.granularity, args.summarise,
                      _settings(args), MAX_ENTRIES if args.max_entries is None else args.max_entries)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2, default=str))
    else:
        print("\n".join(result.lines()))
    print(f"({result.timings.get('searches', 0)} searches, {result.timings.get('total_s', 0):.2f} s)", file=sys.stderr)
    return 0


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
