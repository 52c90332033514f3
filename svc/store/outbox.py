"""The outbox: whatever changes the store ``emit``s the
events the change causes, and the unit of work making the change writes them to the ``outbox``
collection in its own transaction, so an event exists exactly when its change committed.
``svc.outbox`` relays them to the broker."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from ..models.events import Event, QuantitiesChange
from .abc import DocumentStore
from .records import QuantityChange

OUTBOX = "outbox"
_pending: ContextVar[list[Event] | None] = ContextVar("svc_outbox_pending", default=None)
_written: WeakKeyDictionary[DocumentStore, asyncio.Event] = WeakKeyDictionary()


@dataclass(frozen=True)
class OutboxEntry:
    """An event as the outbox keeps it: published as ``services.<name>.<account_id>`` with
    its fields as they were when the change committed."""

    name: str
    account_id: str
    fields: dict[str, Any]


def emit(event: Event) -> None:
    """Queue ``event`` with the change being made; only inside a unit of work."""
    pending = _pending.get()
    if pending is None:
        raise RuntimeError(f"{event.name} emitted outside a unit of work")
    pending.append(event)


@contextlib.contextmanager
def collecting() -> Iterator[list[Event]]:
    """The events emitted by one attempt of a unit of work."""
    events: list[Event] = []
    token = _pending.set(events)
    try:
        yield events
    finally:
        _pending.reset(token)


async def write(store: DocumentStore, events: list[Event], now: float) -> None:
    """Inside the unit's transaction: the events, in emission order."""
    for n, event in enumerate(events):
        await store.put(OUTBOX, uuid.uuid4().hex, {
            "name": event.name, "account_id": event.account_id, "fields": event.wire(),
            "due_at": now + n * 1e-6}, 0)


def written(store: DocumentStore) -> asyncio.Event:
    """Set after a commit that wrote events: the relay wakes up."""
    return _written.setdefault(store, asyncio.Event())


def emit_quantity_changes(changes: Iterable[QuantityChange]) -> None:
    """One ``quantities_change`` per account whose counts moved."""
    by_account: dict[str, list[QuantityChange]] = {}
    for change in changes:
        by_account.setdefault(change.account_id, []).append(change)
    for account_id, listed in by_account.items():
        emit(QuantitiesChange(account_id=account_id, changes=listed))
