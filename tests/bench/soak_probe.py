"""``svc serve`` with a memory probe, for the soak's diagnosis (``SVC_SOAK_DIAG``).

Usage: ``python soak_probe.py OUT_DIR FRAMES``. Each SIGUSR1 appends one JSON line to
``OUT_DIR/memory.jsonl``: glibc's malloc figures (``mallinfo2``: bytes in use and free but
kept), SQLite's own allocator (``sqlite3_memory_used``), pymalloc's blocks and arenas, the
number of live objects per type (``gc.get_objects``) and the pending asyncio tasks by where
they wait. With FRAMES > 0 tracemalloc runs too (much slower) and each SIGUSR1 also writes
``OUT_DIR/snap-NNN.tracemalloc``. Settings come from the ``SVC_*`` environment as for
``svc serve``.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import json
import os
import re
import signal
import sys
import tempfile
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _libc() -> Any:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.mallinfo2.restype = MallInfo2
    return libc


def _sqlite() -> Any:
    import sqlite3  # noqa: F401 - loads the library svc's store uses

    lib = ctypes.CDLL(ctypes.util.find_library("sqlite3"))
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    lib.sqlite3_memory_highwater.restype = ctypes.c_int64
    return lib


def pymalloc_arenas() -> dict[str, int]:
    """pymalloc's arenas (1 MiB each) now and at their high-water mark, read from what
    ``sys._debugmallocstats`` writes to the C stderr."""
    with tempfile.TemporaryFile("w+") as capture:
        saved = os.dup(2)
        try:
            sys.stderr.flush()
            os.dup2(capture.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read()
    found = {}
    for key, name in (("arenas allocated current", "current"),
                      ("arenas highwater mark", "highwater"),
                      ("arenas reclaimed", "reclaimed")):
        match = re.search(rf"# {key}\s*=\s*([\d,]+)", text)
        found[name] = int(match.group(1).replace(",", "")) if match else -1
    return found


def _where(coro: Any) -> str:
    """Where a task's coroutine chain is suspended: its outermost and innermost frames."""
    outer, inner = coro, coro
    while (awaited := getattr(inner, "cr_await", None) or getattr(inner, "gi_yieldfrom", None)
           ) is not None and (getattr(awaited, "cr_frame", None)
                              or getattr(awaited, "gi_frame", None)) is not None:
        inner = awaited
    frame = getattr(inner, "cr_frame", None) or getattr(inner, "gi_frame", None)
    here = f"{frame.f_code.co_qualname} {Path(frame.f_code.co_filename).name}:{frame.f_lineno}" \
        if frame is not None else "?"
    return f"{getattr(outer, '__qualname__', type(outer).__name__)} @ {here}"


def tasks() -> dict[str, int]:
    """Pending asyncio tasks by where they wait (the service's queues, seen from inside)."""
    loop = asyncio._get_running_loop()
    if loop is None:
        return {}
    return dict(Counter(_where(task.get_coro()) for task in asyncio.all_tasks(loop))
                .most_common(25))


def measure() -> dict[str, Any]:
    info = _libc().mallinfo2()
    sqlite = _sqlite()
    types = Counter(type(obj).__qualname__ for obj in gc.get_objects())
    return {
        "malloc_in_use": info.uordblks + info.hblkhd, "malloc_free_kept": info.fordblks,
        "malloc_arena": info.arena, "sqlite_used": sqlite.sqlite3_memory_used(),
        "sqlite_highwater": sqlite.sqlite3_memory_highwater(0),
        "pymalloc_blocks": sys.getallocatedblocks(),
        "pymalloc_arenas": pymalloc_arenas(),
        "traced": tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None,
        "types": dict(types.most_common(200)),
        "tasks": tasks(),
    }


def main() -> None:
    out, frames = Path(sys.argv[1]), int(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    if frames:
        tracemalloc.start(frames)
    taken = 0

    def probe(signum: int, frame: object) -> None:
        nonlocal taken
        taken += 1  # numbered by request: a slow probe never shifts the numbers
        with (out / "memory.jsonl").open("a") as lines:
            lines.write(json.dumps({"n": taken, **measure()}) + "\n")
        if frames:
            tracemalloc.take_snapshot().dump(str(out / f"snap-{taken:03d}.tracemalloc"))

    signal.signal(signal.SIGUSR1, probe)
    from svc.cli.main import app

    sys.argv = ["svc", "serve"]
    app()


if __name__ == "__main__":
    main()
