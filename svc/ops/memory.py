"""Freed memory handed back to the system.

Under steady traffic the Python heap stays flat, yet the process grew by a third in an hour
(docs/benchmarks.md): glibc's malloc keeps what Python frees in its arenas, fragmented, and
returns little of it by itself. ``malloc_trim`` returns the free pages of every arena; it runs
in a thread, at an interval, so the loop never waits for it. Where the C library is not glibc
there is nothing to call and nothing runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger("svc.memory")


def malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)``, or ``None`` where there is no such function."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: trim(0)


async def trim_memory(interval_s: float, stop: asyncio.Event) -> None:
    trim = malloc_trim()
    if trim is None:
        log.info("no malloc_trim in this C library: freed memory stays with the allocator")
        return
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
        if not stop.is_set():
            await asyncio.to_thread(trim)
