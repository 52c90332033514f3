"""The store port: a small versioned document store that both adapters implement.

Everything svc keeps (accounts, services documents, the per-document quantity ledger, plans,
sync results, the local bookkeeper's ledger) is a JSON document in a named collection, written
with compare-and-set on a version number. The domain operations (``svc/store/repository.py``)
are written once against this port, so the SQLite and MongoDB adapters behave identically by
construction; the contract suite (``tests/store/``) runs against both.
"""

from __future__ import annotations

import functools
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Hashable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from .readset import Ref, note_read, note_unverifiable_read

Doc = dict[str, Any]

# The fields each collection can be searched by: equality, or membership for list fields.
INDEXED_FIELDS: dict[str, tuple[str, ...]] = {
    "accounts": ("tree",),
    "services": ("plan_keys", "object_plan_ids"),
    "ledger": ("account_id",),
    "plans": ("vendor_id",),
    "sync_results": ("account_id",),
    "book_ledger": ("account_id",),
    "imports": ("run",),
    "deliveries": ("account_id", "state"),
    "audit": ("account_id",),
    "leases": (),  # found by due time only
}
# A numeric field by which documents fall due; absent or null means "not due".
DUE_FIELD = "due_at"
# The accounts waiting for a sync are counted, and the one waiting longest found, by these
# fields of their lease documents (the dirty-account metrics) without reading the documents.
DIRTY_COLLECTION, DIRTY_FLAG, DIRTY_SINCE = "leases", "dirty", "dirty_since"


def index_values(value: Any) -> list[str]:
    """What an indexed field is found by: its string, or each string of a list."""
    return [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]


def due_of(doc: Doc) -> float | None:
    """The ``due_at`` of a document as a float (stored JSON numbers come back as Decimal)."""
    due = doc.get(DUE_FIELD)
    return None if due is None else float(due)


@dataclass(frozen=True)
class Versioned:
    key: str
    version: int
    doc: Doc


class StoreError(Exception):
    """Base of the store's errors; ``reason`` is the RPC ``Reason`` code (SPEC §5)."""

    reason = "store_unavailable"


class VersionConflict(StoreError):
    """A compare-and-set lost: the document changed since it was read."""

    reason = "conflict"


class StoreUnavailable(StoreError):
    reason = "store_unavailable"


class StoreBusy(StoreUnavailable):
    """The store is up but cannot take the unit now: another writer held its lock past the
    wait, the server is stepping down, or a time limit or write concern was not met. Adapters
    raise it for exactly such errors, so that a caller retries the same unit later rather
    than blame its input."""


class DocumentStore(ABC):
    """Versioned JSON documents by (collection, key). Versions start at 1 on insert."""

    @functools.cached_property
    def identity(self) -> str:
        """Names this store among others in one process: process-wide caches keyed by a
        document's version (loaded and merged plans) key by this too."""
        return uuid.uuid4().hex

    @abstractmethod
    async def open(self) -> None:
        """Connect, create the schema or indexes on first start, migrate."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[None]:
        """Group the calls made inside into one atomic unit; a ``VersionConflict`` inside
        rolls everything back and propagates (callers retry the whole unit)."""

    async def get(self, collection: str, key: str) -> Versioned | None:
        found = await self._get(collection, key)
        note_read(collection, key, found.version if found else 0)
        return found

    async def get_many(self, collection: str, keys: Iterable[str]) -> dict[str, Versioned]:
        wanted = list(dict.fromkeys(keys))
        found = await self._get_many(collection, wanted)
        for key in wanted:
            note_read(collection, key, found[key].version if key in found else 0)
        return found

    @abstractmethod
    async def versions(self, refs: Iterable[Ref]) -> dict[Ref, int]:
        """The version of each existing document of ``refs`` (absent: it does not exist),
        without reading the documents: how a memoized answer is re-validated."""

    async def commit_marker(self) -> Hashable | None:
        """A value that changes whenever anything commits to the store, read by anyone;
        ``None`` where the store cannot tell. Equal markers mean nothing was written
        in between, so every version is unchanged without asking for them."""
        return None

    @abstractmethod
    async def _get(self, collection: str, key: str) -> Versioned | None: ...

    @abstractmethod
    async def _get_many(self, collection: str, keys: list[str]) -> dict[str, Versioned]: ...

    @abstractmethod
    async def put(self, collection: str, key: str, doc: Doc, expected_version: int) -> int:
        """Write ``doc`` if the stored version is ``expected_version`` (0: must not exist);
        returns the new version or raises ``VersionConflict``."""

    @abstractmethod
    async def delete(self, collection: str, key: str, expected_version: int) -> None:
        """Remove the document if it is at ``expected_version``, else ``VersionConflict``."""

    @abstractmethod
    async def put_many(self, collection: str, docs: Sequence[tuple[str, Doc]]) -> None:
        """Insert or overwrite without version checks: bulk loading only."""

    async def find_keys(self, collection: str, field: str, value: Any) -> list[str]:
        """Keys of the documents whose indexed ``field`` equals (or, for a list, contains)
        ``value``, without reading the documents."""
        note_unverifiable_read()
        return await self._find_keys(collection, field, value)

    @abstractmethod
    async def _find_keys(self, collection: str, field: str, value: Any) -> list[str]: ...

    @abstractmethod
    async def find_due(self, collection: str, upto: float, limit: int) -> list[Versioned]:
        """Documents whose ``due_at`` is at most ``upto``, earliest first."""

    @abstractmethod
    async def dirty_stats(self) -> tuple[int, float | None]:
        """How many accounts wait for a sync, and the earliest time since which one has
        waited (``None`` when there are none)."""

    @abstractmethod
    def scan(self, collection: str) -> AsyncIterator[Versioned]:
        """Every document of a collection (reconcile of everything, migrations)."""
