"""Concurrent users against the running chat app on loopback (`rag bench --load`).

Each simulated user talks to the app through gradio_client, as the browser does: a conversation
of a few questions on the /chat endpoint, then a new one. After every answer the user checks that
the conversation holds exactly its own questions, in order (never another user's), and that the
answer is not an error. Memory is the serving process's resident set, sampled every 2 seconds;
`served_app` runs the app as users do, `rag chat` in a process of its own, so that the users'
clients are not counted in it.
"""

from __future__ import annotations

import contextlib
import queue
import html
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

from rag.config import Settings
from rag.errors import RagError
from rag.evaluation.stats import p50_p95


def resident_mb(pid: int | str = "self") -> float:
    """A process's resident memory in MB, this one's by default (Linux /proc; 0 where unavailable)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
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


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(child: subprocess.Popen, timeout: float = 30) -> None:
    """Ask a child process to end; kill it if it has not after ``timeout`` seconds."""
    child.terminate()
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


@contextlib.contextmanager
def served_app(options: list[str], port: int, timeout: float = 900, command: str = "chat",
               ready: str = r"Chat open at (\S+)") -> Iterator[tuple[str, int]]:
    """Run `rag [options] chat --port PORT` (or another serving ``command``) in a child process
    until the block ends.

    Args:
        options: the command's options before ``chat`` and the chat's own, e.g.
            ``["--index", "vectorstore", "chat", "--model", "fast"]`` (``chat`` is added if absent).
        port: a free loopback port.
        timeout: seconds to wait for "Chat open at" (the first start builds the index).
        command, ready: the serving command (`serve`: the HTTP API) and the pattern of the line
            that says where it listens (its group 1: the URL).
    Yields:
        (the app's URL, the child's pid). Its progress bars and messages go to this process's stderr.
    Raises:
        RagError: the app exited (before the end of the block) or did not open in time.
    """
    argv = [*options, *([] if command in options else [command]), "--port", str(port)]
    child = subprocess.Popen([sys.executable, "-m", "rag", *argv], stdout=subprocess.PIPE, text=True,
                             encoding="utf-8", errors="replace")
    lines: queue.Queue = queue.Queue()

    def drain():  # reads the app's output until it exits, so that a full pipe never blocks it
        for line in child.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, daemon=True).start()
    try:
        url, deadline = None, time.monotonic() + timeout
        while url is None:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise RagError(f"`rag {' '.join(argv)}` did not open the chat in {timeout:.0f} s; its "
                               f"messages are above") from None
            if line is None:
                raise RagError(f"`rag {' '.join(argv)}` exited with {child.wait()} before the chat opened; "
                               f"its messages are above")
            if found := re.search(ready, line):
                url = found.group(1)
        yield url, child.pid
        if child.poll() is not None:
            raise RagError(f"`rag {' '.join(argv)}` exited with {child.returncode} while serving; its "
                           f"messages are above")
    finally:
        stop_process(child)


def run_load(url: str, questions: list[str], model: str, passages: int, users: int = 8, seconds: float = 300,
             turns: int = 3, progress: bool = True, pid: int | str = "self") -> dict:
    """Users ask questions until ``seconds`` have passed (answers under way are waited for).

    Args:
        url: the running app.
        pid: the process serving it, whose memory is sampled (by default this one).
        questions: asked in turn; user u starts at question u.
        users: simultaneous users, each with its own session.
        seconds: how long new questions are sent.
        turns: questions per conversation before a user starts a new one.
        model, passages: the settings menu's values, as the page sends them.
    Returns:
        Requests served, errors (with a few examples), mixed conversations, latency percentiles,
        the memory samples and memory at the start (before any question), when ``users`` answers
        had been given (growth after that point is what "flat" is about), at the end and at most.
    """
    try:
        from gradio_client import Client
    except ModuleNotFoundError as exc:
        raise RagError("simulated users need gradio_client: run `pip install 'rag[chat]'`.") from exc
    from tqdm import tqdm

    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    mixed: list[str] = []
    memory = [(0.0, resident_mb(pid))]
    settled: list[float] = []
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
            if len(latencies) == users:  # every user has had an answer: the app's buffers are all made
                settled.append(resident_mb(pid))
            if len(mine) != len(asked) or not all(html.escape(q, quote=True) in m for q, m in zip(asked, mine)):
                mixed.append(f"user {number}: asked {asked}, conversation shows {len(mine)} questions")
            if "rag-failed" in last:
                errors.append(f"user {number}: the answer to {question!r} is an error")

    threads = [threading.Thread(target=user, args=(u,), daemon=True) for u in range(users)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        time.sleep(2)
        memory.append((round(time.monotonic() - started, 1), resident_mb(pid)))
    bar.close()
    return {
        "users": users, "seconds": seconds, "wall_s": round(time.monotonic() - started, 1),
        "requests": len(latencies), "errors": len(errors), "error_examples": errors[:5],
        "mixed_conversations": len(mixed), "mixed_examples": mixed[:5],
        "latency_s": {**p50_p95(latencies), "max": round(max(latencies), 2) if latencies else None},
        "rss_mb": {"start": memory[0][1], "after_first_answers": settled[0] if settled else None,
                   "end": memory[-1][1], "max": max(m for _, m in memory)},
        "rss_samples": memory,
    }


def load_served_chat(settings: Settings, questions: list[str], users: int, seconds: float) -> dict:
    """`rag chat` with these settings, served in a process of its own on a free loopback port and
    loaded by ``users`` simulated users for ``seconds`` (`run_load`)."""
    options = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir),
               "--embed-model", settings.embed_model, "chat", "--model", settings.llm_model,
               "--backend", settings.llm_backend]
    if settings.llm_base_url:
        options += ["--base-url", settings.llm_base_url]
    with served_app(options, free_port()) as (url, pid):
        return {"model": settings.llm_model, "served_by": "rag chat, a separate process",
                **run_load(url, questions, settings.llm_model, settings.llm_passages, users, seconds, pid=pid)}
