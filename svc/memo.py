"""Memoized read-only answers (``summary``, ``quote`` by account), each valid while every
document it was computed from keeps its version (``svc/store/readset.py``).

Checking that is one query that reads versions only, so a repeated request against an
unchanged account costs no document decoding, no rating and no re-encoding; a change made
by any replica bumps a version and the next request computes afresh.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from .store import DocumentStore
from .store.readset import Ref, recording_reads

T = TypeVar("T")


@dataclass(frozen=True)
class _Entry(Generic[T]):
    reads: dict[Ref, int]
    value: T


class AnswerMemo(Generic[T]):
    def __init__(self, store: DocumentStore, size: int = 4096) -> None:
        self.store = store
        self.size = size
        self._entries: OrderedDict[Hashable, _Entry[T]] = OrderedDict()

    async def answer(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        """The memoized value of ``key`` if what it read is unchanged, else ``compute()``
        (whose value must not be mutated afterwards: later requests share it)."""
        entry = self._entries.get(key)
        if entry is not None:
            current = await self.store.versions(entry.reads)
            if all(current.get(ref, 0) == version for ref, version in entry.reads.items()):
                self._entries.move_to_end(key)
                return entry.value
        with recording_reads() as reads:
            value = await compute()
        if reads.complete:
            self._entries[key] = _Entry(reads.versions, value)
            self._entries.move_to_end(key)
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)
        else:
            self._entries.pop(key, None)
        return value
