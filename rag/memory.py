"""Keeping a long-running process's memory flat: glibc malloc settings for `rag chat` and
`rag serve`, and for the benchmarks that measure what they hold (`rag bench --archive`).

Each thread that answers may get a malloc arena of its own, and the embedder's and tokenizer's
short-lived buffers fragment them: with glibc's defaults, 8 users for 4 minutes grew the app's
resident memory by 830 MB and it kept growing. The app caps the arenas at start and hands free
pages back after each answer: 8 users for 5 minutes, resident memory 2.37 GB once every user
had had an answer, between 2.37 and 2.48 GB from then on, 2.44 GB at the end (`rag bench --load`).
Elsewhere than glibc both do nothing.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter


@functools.cache
def _glibc():
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "malloc_trim"):  # musl has neither arenas nor malloc_trim
        return None
    libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    return libc


def cap_arenas(limit: int = 2) -> bool:
    """Let at most ``limit`` malloc arenas serve this process's threads, unless the user chose
    (MALLOC_ARENA_MAX, or arena_max in GLIBC_TUNABLES). Call before the serving threads start:
    glibc fixes the cap for good when it makes its 9th arena.

    Returns:
        True if the cap was set.
    """
    libc = _glibc()
    chosen = os.environ.get("MALLOC_ARENA_MAX") or "arena_max" in os.environ.get("GLIBC_TUNABLES", "")
    if libc is None or chosen:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, limit))


def release_free_memory() -> None:
    """Hand the free pages of every arena back to the system (a few milliseconds)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
