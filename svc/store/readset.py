"""What a computation read from the store, by version: the validity of a memoized answer.

An answer computed only from documents read by key is still right while each of those
documents keeps its version; re-checking the versions is one small query, with no decoding
and no rating. Reads by index (``find_keys``) cannot be re-checked that way, so they make
the read set incomplete, and such answers are not memoized.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

Ref = tuple[str, str]  # (collection, key)


@dataclass
class ReadSet:
    versions: dict[Ref, int] = field(default_factory=dict)  # 0: read and found missing
    complete: bool = True


_current: ContextVar[ReadSet | None] = ContextVar("svc_read_set", default=None)


def note_read(collection: str, key: str, version: int) -> None:
    reads = _current.get()
    if reads is not None:
        reads.versions.setdefault((collection, key), version)


def note_unverifiable_read() -> None:
    reads = _current.get()
    if reads is not None:
        reads.complete = False


@contextlib.contextmanager
def recording_reads() -> Iterator[ReadSet]:
    reads = ReadSet()
    token = _current.set(reads)
    try:
        yield reads
    finally:
        _current.reset(token)
