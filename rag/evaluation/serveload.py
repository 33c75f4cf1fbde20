"""Concurrent OpenAI-SDK clients against `rag serve`: errors, mixed answers, latency (a bench, not a test).

    python -m rag.evaluation.serveload --clients 8 --seconds 120 --out eval/bench

`rag serve` runs in a process of its own (`rag.evaluation.loadtest.served_app`) over the seed
pages; each client is an `openai.OpenAI` of its own asking its own question (`QUESTIONS`, one seed
article each) again and again until the time is up, streamed and not in turn. Every reply is checked:

- error: the SDK raised (a non-200, a broken stream), or the reply has no content;
- mixed: it cites an article outside its own question's passages (the question's /retrieval
  records, `CHECK_K` of them: an answer reads only its question's passages);
- changed: its text is not the text of the first reply to the same question. Greedy decoding
  answers a question the same way every time, so a different text would be another question's
  answer or state leaking between answers — or llama.cpp reading a cached prompt opening in other
  batches, which can round differently; the examples tell which.

Latency is the whole request, client-side, as p50/p95 (rag.evaluation.stats).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

from rag.config import Settings
from rag.errors import RagError
from rag.evaluation.loadtest import free_port, resident_mb, served_app
from rag.evaluation.stats import p50_p95

# One seed article each (their headlines in the comments), so that their answers cannot pass for each other.
QUESTIONS = [
    "清泉村去年电商交易额是多少？",  # 山货触网 农户生活更红火
    "水头镇建设安居小区“和食堂”投入了多少资金？",  # 水头：用基层党建“撬动”民生幸福
    "安吉县“流动药车”携带了多少种常用药品？",  # 送药进村惠民生 健康服务暖民心
    "织里约有多少童装生产经营主体？",  # “童装之都”添红色新阵地
    "宜山镇成立了几个党建联盟？",  # 党建联盟 构建发展“共同体”
    "观音堂村村民丁志发每年有多少稳定收入？",  # “创富联盟”助力增收
    "小古城村现有多少农户？",  # 勇担使命，守好红色根脉
    "湖州市中心医院把什么班车开进了灯塔村？",  # 乡贤“牵线” 名医为乡亲送健康
]
CHECK_K = 10  # a question's records its answer's citations must come from (the answer reads its top_k)


def own_articles(url: str, questions: list[str], key: str = "") -> dict[str, set[str]]:
    """Per question, the article ids of its passages (Dify's /retrieval of the served API)."""
    import urllib.request

    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    found = {}
    for question in questions:
        body = {"knowledge_id": "archive", "query": question, "retrieval_setting": {"top_k": CHECK_K, "score_threshold": 0}}
        request = urllib.request.Request(f"{url}/retrieval", json.dumps(body).encode(), headers, method="POST")
        with urllib.request.urlopen(request, timeout=600) as response:
            records = json.loads(response.read())["records"]
        found[question] = {r["metadata"]["article_id"] for r in records}
    return found


def run_serve_load(url: str, questions: list[str], clients: int = 8, seconds: float = 120, key: str = "",
                   model: str = "", pid: int | str = "self", progress: bool = True) -> dict:
    """Clients ask until ``seconds`` have passed (answers under way are waited for).

    Args:
        url: the running API (without /v1); key: its API key, if it has keys.
        questions: client c asks questions[c % len(questions)], every time.
        model: the preset to ask for ("" the server's default); pid: the serving process (its memory).
    Returns:
        Requests, errors and mixed replies (with examples), latency p50/p95/max, the serving
        process's memory at the start and end, per question the replies and whether they cited.
    """
    try:
        import openai
    except ModuleNotFoundError as exc:
        raise RagError("the API load bench needs the openai SDK: run `pip install 'rag[openai]'`") from exc

    own = own_articles(url, questions, key)
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    mixed: list[str] = []
    changed: list[str] = []
    first: dict[str, str] = {}
    cited: dict[str, int] = {q: 0 for q in questions}
    asked: dict[str, int] = {q: 0 for q in questions}
    memory_start = resident_mb(pid)

    def check(number: int, question: str, content: str, citations: list[dict]) -> None:
        outside = [c for c in citations if c.get("article_id") not in own[question]]
        with lock:
            asked[question] += 1
            cited[question] += bool(citations)
            if not content:
                errors.append(f"client {number}: an empty reply to {question!r}")
            if outside:
                mixed.append(f"client {number}: {question!r} cites {[c.get('article') for c in outside]}")
            if first.setdefault(question, content) != content:
                changed.append(f"client {number}: {question!r} answered {content[:80]!r}, first {first[question][:80]!r}")

    sdks = [openai.OpenAI(base_url=f"{url}/v1", api_key=key or "none", max_retries=0, timeout=900)
            for _ in range(clients)]

    def client(number: int) -> None:
        sdk, question, n = sdks[number], questions[number % len(questions)], 0
        messages = [{"role": "user", "content": question}]
        while n == 0 or time.monotonic() < deadline:  # each client asks at least once
            t0, stream = time.monotonic(), bool((number + n) % 2)
            n += 1
            try:
                reply = sdk.chat.completions.create(model=model, messages=messages, stream=stream)
                if stream:
                    chunks = list(reply)
                    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
                    citations = (chunks[-1].model_extra or {}).get("citations") or []
                else:
                    content = reply.choices[0].message.content or ""
                    citations = (reply.model_extra or {}).get("citations") or []
            except Exception as exc:  # noqa: BLE001 — the client sees an error: count it and go on
                with lock:
                    errors.append(f"client {number}: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            with lock:
                latencies.append(time.monotonic() - t0)
                if progress:
                    print(f"\r{len(latencies)} answers, {len(errors)} errors, {len(mixed)} mixed", end="",
                          file=sys.stderr, flush=True)
            check(number, question, content, citations)

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    started = time.monotonic()
    deadline = started + seconds
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if progress:
        print(file=sys.stderr)
    return {
        "clients": clients, "seconds": seconds, "wall_s": round(time.monotonic() - started, 1),
        "requests": len(latencies), "errors": len(errors), "error_examples": errors[:5],
        "mixed": len(mixed), "mixed_examples": mixed[:5], "changed": len(changed), "changed_examples": changed[:5],
        "latency_s": {**p50_p95(latencies), "max": round(max(latencies), 2) if latencies else None},
        "rss_mb": {"start": memory_start, "end": resident_mb(pid)},
        "per_question": [{"question": q, "replies": asked[q], "cited": cited[q], "first_reply": first.get(q, "")[:200]}
                         for q in questions],
    }


def load_served_api(settings: Settings, clients: int, seconds: float, questions: list[str] | None = None) -> dict:
    """`rag serve` with these settings in a process of its own on a free loopback port, loaded by
    ``clients`` OpenAI-SDK clients for ``seconds`` (`run_serve_load`)."""
    options = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir),
               "--embed-model", settings.embed_model, "serve", "--model", settings.llm_model,
               "--backend", settings.llm_backend]
    with served_app(options, free_port(), command="serve", ready=r"API open at (\S+)") as (url, pid):
        result = run_serve_load(url, questions or QUESTIONS, clients, seconds, pid=pid)
    return {"model": settings.llm_model, "served_by": "rag serve, a separate process", "corpus": str(settings.corpus_dir),
            **result}


def write_report(result: dict, out: Path) -> tuple[Path, Path]:
    """serve-load.json and serve-load.md in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    data, text = out / "serve-load.json", out / "serve-load.md"
    data.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    latency = result["latency_s"]
    lines = [f"# `rag serve` under load: {result['clients']} OpenAI-SDK clients for {result['seconds']:.0f} s", "",
             f"Model {result['model']}, {result['served_by']}, corpus {result['corpus']}; each client asks its own "
             f"question (one seed article each), streamed and not in turn (`python -m rag.evaluation.serveload`).", "",
             "| requests | errors | mixed | changed | latency p50 | p95 | max | server RSS start → end |",
             "|---|---|---|---|---|---|---|---|",
             f"| {result['requests']} | {result['errors']} | {result['mixed']} | {result['changed']} | {latency.get('p50')} s | "
             f"{latency.get('p95')} s | {latency.get('max')} s | {result['rss_mb']['start']} → {result['rss_mb']['end']} MB |",
             "", "| question | replies | cited | first reply |", "|---|---|---|---|"]
    lines += [f"| {q['question']} | {q['replies']} | {q['cited']} | {q['first_reply'].splitlines()[0] if q['first_reply'] else ''} |"
              for q in result["per_question"]]
    for kind in ("error_examples", "mixed_examples", "changed_examples"):
        if result[kind]:
            lines += ["", f"{kind.replace('_', ' ').capitalize()}:", *[f"- {e}" for e in result[kind]]]
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return data, text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--out", type=Path, default=Path("eval/bench"))
    parser.add_argument("--corpus", type=Path, help="folder of pages (default: RAG_CORPUS_DIR or seeds/, which "
                                                     "the questions are about)")
    parser.add_argument("--index", type=Path, help="index folder (default: RAG_INDEX_DIR or vectorstore/)")
    args = parser.parse_args(argv)
    settings = Settings.from_env(corpus_dir=args.corpus, index_dir=args.index)
    result = load_served_api(settings, args.clients, args.seconds)
    for path in write_report(result, args.out):
        print(path)
    print(json.dumps({k: result[k] for k in ("requests", "errors", "mixed", "changed", "latency_s")}, ensure_ascii=False))
    return 0 if not result["errors"] and not result["mixed"] else 1


if __name__ == "__main__":
    sys.exit(main())
