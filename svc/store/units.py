"""A unit of work: one transaction, run again from the start while a compare-and-set loses;
and group commit, which writes many callers' small changes in one unit."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random

from . import audit, outbox
from .abc import DocumentStore, StoreError, VersionConflict

T = TypeVar("T")
W = TypeVar("W")


class Conflict(StoreError):
    reason = "conflict"


async def run_unit(store: DocumentStore, work: Callable[[], Awaitable[T]],
                   attempts: int = 100, clock: Callable[[], float] = time.time) -> T:
    """The events the work emits are written to the outbox, and the changes it notes to the
    audit trail, in its transaction: they exist exactly when the change committed."""
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


@dataclass(frozen=True)
class _Waiting(Generic[W]):
    write: W
    actor: audit.Actor | None
    done: asyncio.Future[None]


class GroupCommit(Generic[W]):
    """The writes submitted while a unit is being written go together in the next unit.

    Many small units cost one transaction each on a store with a single writer; together
    they cost one. ``write_all`` makes a batch of writes inside one unit and returns, for
    each write, the error that refused it alone (``None``: made); it must leave no trace of a
    refused write. A write exists when ``submit`` returns. Each unit writes the changes of
    one actor, so audit entries keep their caller. Not for use inside a unit: the writer
    would wait for the store that unit holds.
    """

    def __init__(self, store: DocumentStore,
                 write_all: Callable[[Sequence[W]], Awaitable[list[Exception | None]]]) -> None:
        self.store = store
        self.write_all = write_all
        self._waiting: list[_Waiting[W]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, write: W) -> None:
        """Raises the error that refused this write, or that failed its unit."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(write, audit.current_actor(), done))
        if self._writer is None or self._writer.done():
            # a context of its own: the writer serves every caller, whatever unit or actor
            # the first one is in
            self._writer = asyncio.create_task(self._writing(), context=contextvars.Context())
        await done

    async def _writing(self) -> None:
        try:
            while self._waiting:
                actor = self._waiting[0].actor
                batch = [w for w in self._waiting if w.actor == actor]
                self._waiting = [w for w in self._waiting if w.actor != actor]
                await self._commit(actor, batch)
        finally:
            for waiting in self._waiting:  # left only when the writer itself was cancelled
                waiting.done.cancel()
            self._writer = None

    async def _commit(self, actor: audit.Actor | None, batch: list[_Waiting[W]]) -> None:
        batch = [w for w in batch if not w.done.done()]  # cancelled before its turn: no write
        if not batch:
            return
        try:
            with audit.acting(actor):
                refused = await run_unit(self.store,
                                         lambda: self.write_all([w.write for w in batch]))
        except Exception as error:  # noqa: BLE001 - the unit failed, so did each write in it
            for waiting in batch:
                if not waiting.done.done():
                    waiting.done.set_exception(error)
            return
        except BaseException:
            for waiting in batch:
                waiting.done.cancel()
            raise
        for waiting, error in zip(batch, refused, strict=True):
            if waiting.done.done():  # its caller gave up while the unit was written
                continue
            if error is None:
                waiting.done.set_result(None)
            else:
                waiting.done.set_exception(error)
