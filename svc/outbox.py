"""The outbox relay (SPEC §14 "Events after commit"): one per service, it publishes the
events that committed changes wrote to the outbox (``svc.store.outbox``), oldest first, each
with its outbox key as ``Msg-ID`` so a consumer can drop the repeats an at-least-once relay
may send, and deletes each only once the broker has confirmed it. None is lost while the
broker is away: they wait in the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from .store.abc import DocumentStore, VersionConflict
from .store.outbox import OUTBOX, OutboxEntry, written

log = logging.getLogger("svc.outbox")
CLAIM_S = 30.0
Publish = Callable[[OutboxEntry, str], Awaitable[None]]  # the event, its Msg-ID


class Broker(Protocol):
    """Whether the broker can take publishes now, and a wait until it can."""

    @property
    def is_up(self) -> bool: ...

    async def wait_up(self) -> None: ...


class OutboxRelay:
    def __init__(self, store: DocumentStore, publish: Publish, *, broker: Broker | None = None,
                 batch: int = 200, idle_s: float = 1.0, retry_max_s: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.publish = publish
        self.broker = broker
        self.batch = batch
        self.idle_s = idle_s
        self.retry_max_s = retry_max_s
        self.clock = clock

    async def relay_once(self) -> int:
        """Publish what is waiting, oldest first; how many went out. Each entry is claimed
        first, so that replicas sharing a store do not all publish it; a relay that dies
        holding one leaves it due again after ``CLAIM_S``."""
        now = self.clock()
        sent = 0
        for entry in await self.store.find_due(OUTBOX, now, self.batch):
            doc = entry.doc
            try:
                claimed = await self.store.put(OUTBOX, entry.key, {**doc, "due_at": now + CLAIM_S},
                                               entry.version)
            except VersionConflict:
                continue  # another replica's relay has it
            try:
                await self.publish(OutboxEntry(doc["name"], doc["account_id"], doc["fields"]),
                                   entry.key)
            except BaseException:  # not published: due again at once, for the next try
                with contextlib.suppress(Exception):
                    await self.store.put(OUTBOX, entry.key, doc, claimed)
                raise
            await self.store.delete(OUTBOX, entry.key, claimed)
            sent += 1
        return sent

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``; woken by each commit that wrote events, else every ``idle_s``;
        after a failure it backs off and ignores the wake-ups. While the broker is away it
        waits for it to come back, and then goes on at once."""
        delay = 0.0
        signal = written(self.store)
        while not stop.is_set():
            if self.broker is not None and not self.broker.is_up:
                await _first(stop.wait(), self.broker.wait_up())
                delay = 0.0
                continue
            signal.clear()
            try:
                sent = await self.relay_once()
                delay = 0.0
            except Exception as error:  # noqa: BLE001 - the broker or the store is away
                delay = min(max(delay * 2, 0.1), self.retry_max_s)
                if self.broker is None or self.broker.is_up:  # else the link logged it
                    log.warning("outbox relay waits %.1f s: %r", delay, error)
                sent = 0
            if sent == self.batch:  # more may be waiting
                continue
            waits = [stop.wait()] if delay else [stop.wait(), signal.wait()]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(*waits), delay or self.idle_s)


async def _first(*waits: Awaitable[object]) -> None:
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
