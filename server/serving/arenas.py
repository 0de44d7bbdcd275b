"""Fewer malloc arenas: glibc's per-thread heaps keep what their threads once held.

glibc gives threads that allocate their own heap ("arena"), up to eight per core, and an
arena keeps its peak. spigot's S3 backend allocates in its pool threads (botocore's
requests and responses, the chunks read from S3), so each of those threads grew a heap of
its own. Two arenas cut the S3 load suite's peak RSS by 14-22 MiB and ran it faster
(bench/load.py). An operator's MALLOC_ARENA_MAX is left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_ARENA_MAX = -8  # glibc's malloc.h


def limit_arenas(count: int = 2) -> bool:
    """Cap glibc's arenas before any thread starts; False where that cannot be done."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt  # glibc only: musl has none
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_ARENA_MAX, count))
