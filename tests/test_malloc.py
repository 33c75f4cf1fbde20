"""glibc malloc settings for the serving process (rag.memory), each in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from helpers import ROOT

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")

ARENAS = textwrap.dedent("""
    import ctypes, sys, threading
    from rag.memory import cap_arenas
    print(cap_arenas())
    held, together = [], threading.Barrier(12)
    def allocate():
        held.append(bytearray(100_000))  # over pymalloc's limit, under mmap's: this thread's arena
        together.wait()  # all alive at once, so that none takes over an arena another has left
    threads = [threading.Thread(target=allocate) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    out = libc.fopen(sys.argv[1].encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(out))
    libc.fclose(ctypes.c_void_p(out))
""")


def _run(script: str, *args: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    return subprocess.run([sys.executable, "-c", script, *args], env=environ, check=True, cwd=ROOT,
                          capture_output=True, text=True).stdout


@pytest.mark.slow  # slow tier: fresh interpreters
@pytest.mark.parametrize("preset, capped, most", [(None, "True", 2), ("8", "False", 8)])
def test_arenas_are_capped_unless_the_user_chose(tmp_path, preset, capped, most):
    out = _run(ARENAS, str(tmp_path / "malloc.xml"), **({"MALLOC_ARENA_MAX": preset} if preset else {}))
    arenas = (tmp_path / "malloc.xml").read_text().count("<heap nr=")
    assert out.strip() == capped and 2 <= arenas <= most, (out, arenas)
    if preset:
        assert arenas > 2  # the threads did get arenas of their own: the cap above is what held them


TRIM = textwrap.dedent("""
    from pathlib import Path
    from rag.memory import release_free_memory
    def rss():
        return next(int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines()
                    if l.startswith("VmRSS")) // 1024
    blocks = [bytearray(2048) for _ in range(150_000)]  # ~300 MB of small malloc'ed blocks
    del blocks[::10]  # free nine in ten: holes no arena gives back by itself
    kept = [b for i, b in enumerate(blocks) if i % 9 == 0]
    del blocks
    before = rss()
    release_free_memory()
    print(before, rss())
""")


@pytest.mark.slow  # slow tier: a fresh interpreter
def test_free_pages_go_back_to_the_system():
    before, after = map(int, _run(TRIM).split())
    assert before - after > 150, (before, after)
