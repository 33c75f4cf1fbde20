"""Concurrent users against the running chat app on loopback (`rag bench --load`).

Each simulated user talks to the app through gradio_client, as the browser does: a conversation
of a few questions on the /chat endpoint, then a new one. After every answer the user checks that
the conversation holds exactly its own questions, in order (never another user's), and that the
answer is not an error. Memory is the serving process's resident set, sampled every 2 seconds.
"""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

from rag.chatview import esc


def resident_mb() -> float:
    """This process's resident memory in MB (Linux /proc; 0 where unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def _text(content) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def _close(client) -> None:
    """Stop a gradio_client's heartbeat and connections (they would linger in this process)."""
    if client is not None:
        try:
            client.close()
        except Exception:  # a client that failed half-way may not close cleanly; it is dropped anyway
            pass


def run_load(url: str, questions: list[str], model: str, passages: int, users: int = 8, seconds: float = 300,
             turns: int = 3, progress: bool = True) -> dict:
    """Users ask questions until ``seconds`` have passed (answers under way are waited for).

    Args:
        url: the running app (served by this process, so that its memory can be sampled).
        questions: asked in turn; user u starts at question u.
        users: simultaneous users, each with its own session.
        seconds: how long new questions are sent.
        turns: questions per conversation before a user starts a new one.
        model, passages: the settings menu's values, as the page sends them.
    Returns:
        Requests served, errors (with a few examples), mixed conversations, latency percentiles
        and the memory samples.
    """
    from gradio_client import Client
    from tqdm import tqdm

    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    mixed: list[str] = []
    memory = [(0.0, resident_mb())]
    started = time.monotonic()
    bar = tqdm(total=None, desc=f"{users} users", unit="answer", disable=not progress)

    def user(number: int) -> None:
        client, asked, i = None, [], number
        while time.monotonic() < deadline:
            if client is None or len(asked) == turns:
                _close(client)
                client, asked = Client(url, verbose=False), []
            question = questions[i % len(questions)]
            i += users
            try:
                ask(number, client, asked, question)
            except Exception as exc:  # the user sees an error: count it, start a new conversation
                with lock:
                    errors.append(f"user {number}: {type(exc).__name__}: {str(exc)[:200]}")
                _close(client)
                client = None
        _close(client)

    def ask(number: int, client, asked: list, question: str) -> None:
        t0 = time.monotonic()
        messages, _, _ = client.predict(question, model, passages, api_name="/chat")
        elapsed = time.monotonic() - t0
        asked.append(question)
        mine = [_text(m["content"]) for m in messages if m["role"] == "user"]
        last = _text(messages[-1]["content"]) if messages else ""
        with lock:
            latencies.append(elapsed)
            bar.update(1)
            if len(mine) != len(asked) or not all(esc(q) in m for q, m in zip(asked, mine)):
                mixed.append(f"user {number}: asked {asked}, conversation shows {len(mine)} questions")
            if "rag-failed" in last:
                errors.append(f"user {number}: the answer to {question!r} is an error")

    threads = [threading.Thread(target=user, args=(u,), daemon=True) for u in range(users)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        time.sleep(2)
        memory.append((round(time.monotonic() - started, 1), resident_mb()))
    bar.close()
    ordered = sorted(latencies)
    return {
        "users": users, "seconds": seconds, "wall_s": round(time.monotonic() - started, 1),
        "requests": len(latencies), "errors": len(errors), "error_examples": errors[:5],
        "mixed_conversations": len(mixed), "mixed_examples": mixed[:5],
        "latency_s": {"p50": round(statistics.median(ordered), 2) if ordered else None,
                      "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 2) if ordered else None,
                      "max": round(ordered[-1], 2) if ordered else None},
        "rss_mb": {"start": memory[0][1], "end": memory[-1][1], "max": max(m for _, m in memory)},
        "rss_samples": memory,
    }
