"""The store port: a small versioned document store that both adapters implement.

Everything svc keeps (accounts, services documents, the per-document quantity ledger, plans,
sync results, the local bookkeeper's ledger) is a JSON document in a named collection, written
with compare-and-set on a version number. The domain operations (``svc/store/repository.py``)
are written once against this port, so the SQLite and MongoDB adapters behave identically by
construction; the contract suite (``tests/store/``) runs against both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

Doc = dict[str, Any]

# The fields each collection can be searched by: equality, or membership for list fields.
INDEXED_FIELDS: dict[str, tuple[str, ...]] = {
    "accounts": ("tree",),
    "services": ("plan_keys",),
    "ledger": ("account_id",),
    "plans": ("vendor_id",),
    "sync_results": ("account_id",),
    "book_ledger": ("account_id",),
}
# A numeric field by which documents fall due; absent or null means "not due".
DUE_FIELD = "due_at"


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


class DocumentStore(ABC):
    """Versioned JSON documents by (collection, key). Versions start at 1 on insert."""

    @abstractmethod
    async def open(self) -> None:
        """Connect, create the schema or indexes on first start, migrate."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[None]:
        """Group the calls made inside into one atomic unit; a ``VersionConflict`` inside
        rolls everything back and propagates (callers retry the whole unit)."""

    @abstractmethod
    async def get(self, collection: str, key: str) -> Versioned | None: ...

    @abstractmethod
    async def get_many(self, collection: str, keys: Iterable[str]) -> dict[str, Versioned]: ...

    @abstractmethod
    async def put(self, collection: str, key: str, doc: Doc, expected_version: int) -> int:
        """Write ``doc`` if the stored version is ``expected_version`` (0: must not exist);
        returns the new version or raises ``VersionConflict``."""

    @abstractmethod
    async def put_many(self, collection: str, docs: Sequence[tuple[str, Doc]]) -> None:
        """Insert or overwrite without version checks: bulk loading only."""

    @abstractmethod
    async def find_keys(self, collection: str, field: str, value: Any) -> list[str]:
        """Keys of the documents whose indexed ``field`` equals (or, for a list, contains)
        ``value``, without reading the documents."""

    @abstractmethod
    async def find_due(self, collection: str, upto: float, limit: int) -> list[Versioned]:
        """Documents whose ``due_at`` is at most ``upto``, earliest first."""

    @abstractmethod
    def scan(self, collection: str) -> AsyncIterator[Versioned]:
        """Every document of a collection (reconcile of everything, migrations)."""
