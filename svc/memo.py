"""Memoized read-only answers (``summary``, ``quote`` by account), each valid while every
document it was computed from keeps its version (``svc/store/readset.py``).

Checking that is one query that reads versions only, so a repeated request against an
unchanged account costs no document decoding, no rating and no re-encoding; a change made
by any replica bumps a version and the next request computes afresh. Where the store has a
commit marker (SQLite), a store nothing was committed to since the last check skips even that
query: a quiet store answers a repeat for the price of one pragma.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from .store import DocumentStore
from .store.readset import Ref, recording_reads

T = TypeVar("T")


@dataclass
class _Entry(Generic[T]):
    reads: dict[Ref, int]
    value: T
    checked_at: Hashable | None  # the store's commit marker when ``reads`` last held


class AnswerMemo(Generic[T]):
    def __init__(self, store: DocumentStore, size: int = 4096) -> None:
        self.store = store
        self.size = size
        self._entries: OrderedDict[Hashable, _Entry[T]] = OrderedDict()

    async def answer(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        """The memoized value of ``key`` if what it read is unchanged, else ``compute()``
        (whose value must not be mutated afterwards: later requests share it)."""
        marker = await self.store.commit_marker()  # before the reads it vouches for
        entry = self._entries.get(key)
        if entry is not None and (
                (marker is not None and marker == entry.checked_at)
                or await self._unchanged(entry.reads)):
            entry.checked_at = marker
            self._entries.move_to_end(key)
            return entry.value
        with recording_reads() as reads:
            value = await compute()
        if reads.complete:
            self._entries[key] = _Entry(reads.versions, value, marker)
            self._entries.move_to_end(key)
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)
        else:
            self._entries.pop(key, None)
        return value

    async def _unchanged(self, reads: dict[Ref, int]) -> bool:
        current = await self.store.versions(reads)
        return all(current.get(ref, 0) == version for ref, version in reads.items())
