"""What to embed at archive scale: every sentence (the default) or whole chunks only — measured.

    .venv/bin/python eval/embed_scope.py [--news /work/shared/corpora/news-cn] [--files 2]

Two figures for each scope, written to eval/reports/embed-scope.md:
- retrieval quality on eval/sets/public.jsonl (recall@5, English recall@5, article hit@5), each
  scope's seed index built from an empty embedding cache of its own (vectors are cached by text,
  so a shared cache would hide what a scope embeds);
- what it costs to embed: texts and tokens over the first news-cn files, as `rag index` would embed
  them ("sentences": sentences, headlines and one-sentence chunks; "chunks": every chunk whole;
  "chunks + lead": whole chunks for the other paragraphs, sentences for each article's first).

"chunks" is what a build does with `rag.search.build._sentences` returning nothing: no sentence
index, every chunk embedded whole; the code paths for it exist because a chunk of one sentence is
embedded whole today.
"""

from __future__ import annotations

import argparse
import shutil
from contextlib import nullcontext
import sys
import tempfile
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]


def retrieval(scope: str) -> dict:
    """Public-set retrieval metrics with a seed index embedded in ``scope``."""
    from rag.config import Settings
    from rag.evaluation.retrieval import load_set, resolve_gold, run_retrieval_eval
    from rag.search import build
    from rag.search.retrieve import open_searcher, validate_question

    tmp = Path(tempfile.mkdtemp(prefix=f"scope-{scope}-"))
    settings = Settings.from_env(index_dir=tmp / "index", cache_dir=tmp / "cache")
    models = Settings.from_env().cache_dir / "models"
    (tmp / "cache").mkdir()
    (tmp / "cache" / "models").symlink_to(models)  # the converted model, not its vectors
    patch = mock.patch.object(build, "_sentences", lambda chunks: ([], [])) if scope == "chunks" else nullcontext()
    with patch:
        searcher = open_searcher(settings, progress=False)
    items = resolve_gold(load_set(ROOT / "eval" / "sets" / "public.jsonl"), searcher.index.chunks)
    report = run_retrieval_eval(items, lambda q, k: searcher.search(validate_question(q, settings), k), progress=False)
    metrics = report["metrics"]
    return {"recall@5": metrics["overall"]["recall@5"], "en_recall@5": metrics["lang:en"]["recall@5"],
            "article_hit@5": metrics["overall"]["article_hit@5"],
            "embedded": searcher.index.manifest["counts"]["embedded"]}


def costs(folder: Path, files: int) -> dict:
    """Texts and e5 tokens each scope embeds for the first ``files`` news-cn files."""
    from rag.config import Settings
    from rag.ingest.corpus import load_corpus
    from rag.models.embedder import load_embedder
    from rag.search.build import _sentences, with_reprint_groups
    from rag.search.index import chunk_sentences

    tmp = Path(tempfile.mkdtemp(prefix="scope-news-"))
    for path in sorted(folder.glob("news-*.txt"))[:files]:
        shutil.copyfile(path, tmp / path.name)  # links leaving a corpus are refused (rag.ingest.discovery)
    settings = Settings.from_env(corpus_dir=tmp)
    corpus = load_corpus(tmp, settings.chunk_max_chars, settings.corpus_format, settings.field_map)
    chunks = with_reprint_groups(corpus)
    tokenizer = load_embedder(settings).model.tokenizer

    def tokens(texts):
        unique = list(dict.fromkeys(texts))  # the embedding cache embeds a repeated text once
        return len(unique), sum(len(ids) + 3 for ids in tokenizer(unique)["input_ids"])  # + "passage: "

    sentences, owners = _sentences(chunks)
    has = set(owners)
    whole = [c.context_text for i, c in enumerate(chunks) if i not in has]
    headlines = sorted({chunks[i].heading for i in has})
    first = {}
    for i, c in enumerate(chunks):
        first.setdefault((c.source, c.article_no), i)
    lead = set(first.values())
    lead_texts = [s for i in sorted(lead) for s in chunk_sentences(chunks[i].text)]
    rest = [c.context_text for i, c in enumerate(chunks) if i not in lead]
    out = {}
    for name, texts in (("sentences", whole + headlines + sentences),
                        ("chunks", [c.context_text for c in chunks]),
                        ("chunks + lead", rest + sorted({chunks[i].heading for i in lead}) + lead_texts)):
        n, t = tokens(texts)
        out[name] = {"texts": n, "tokens": t}
    out["articles"] = len(corpus.articles)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--news", type=Path, default=Path("/work/shared/corpora/news-cn"))
    parser.add_argument("--files", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "reports" / "embed-scope.md")
    args = parser.parse_args(argv)
    quality = {scope: retrieval(scope) for scope in ("sentences", "chunks")}
    cost = costs(args.news, args.files) if args.news.is_dir() else {}
    lines = ["# What to embed: every sentence or whole chunks", "",
             "Public set (eval/sets/public.jsonl), each scope's seed index from an empty embedding cache:", "",
             "| scope | recall@5 | English recall@5 | article hit@5 | texts embedded |", "|---|---|---|---|---|"]
    lines += [f"| {s} | {q['recall@5']:.3f} | {q['en_recall@5']:.3f} | {q['article_hit@5']:.3f} | {q['embedded']} |"
              for s, q in quality.items()]
    if cost:
        lines += ["", f"Embedding cost over the first {args.files} news-cn files ({cost['articles']} articles), "
                  "distinct texts and e5 tokens (the work is proportional to tokens):", "",
                  "| scope | texts | tokens |", "|---|---|---|"]
        lines += [f"| {s} | {c['texts']:,} | {c['tokens']:,} |" for s, c in cost.items() if s != "articles"]
    text = "\n".join(lines) + "\n"
    args.out.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
