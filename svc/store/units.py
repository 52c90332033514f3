"""A unit of work: one transaction, run again from the start while a compare-and-set loses."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random

from . import audit, outbox
from .abc import DocumentStore, StoreError, VersionConflict

T = TypeVar("T")


class Conflict(StoreError):
    reason = "conflict"


async def run_unit(store: DocumentStore, work: Callable[[], Awaitable[T]],
                   attempts: int = 100, clock: Callable[[], float] = time.time) -> T:
    """The events the work emits are written to the outbox, and the changes it notes to the
    audit trail, in its transaction: they exist exactly when the change committed (SPEC §14,
    §15)."""
    retrying = AsyncRetrying(retry=retry_if_exception_type(VersionConflict),
                             stop=stop_after_attempt(attempts),
                             wait=wait_random(0, 0.005), reraise=True)
    try:
        async for attempt in retrying:
            with attempt, outbox.collecting() as events, audit.collecting() as changes:
                async with store.transaction():
                    result = await work()
                    now = clock()
                    await outbox.write(store, events, now)
                    await audit.write(store, changes, now)
                if events:
                    outbox.written(store).set()
                return result
    except VersionConflict as error:
        raise Conflict(str(error)) from None
    raise AssertionError("unreachable")
