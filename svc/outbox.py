"""The outbox relay: one per service, it publishes the
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
from typing import Any, Protocol

from .store.abc import DocumentStore
from .store.outbox import OUTBOX, OutboxEntry, written
from .store.units import run_unit

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
        """Publish what is waiting, oldest first; how many went out. A batch is claimed in one
        unit first, so that replicas sharing a store do not all publish it (a relay that dies
        holding one leaves it due again after ``CLAIM_S``), and settled in one more: the
        published deleted, the rest due again at once. Two writer turns a batch, not two an
        event: the relay keeps up with what the syncs and ingest commit."""
        claimed = await run_unit(self.store, self._claim)
        published = 0
        try:
            for key, _, doc in claimed:
                await self.publish(OutboxEntry(doc["name"], doc["account_id"], doc["fields"]),
                                   key)
                published += 1
        except BaseException:  # what was not published is due again at once, for the next try
            with contextlib.suppress(Exception):
                await run_unit(self.store, lambda: self._settle(claimed, published))
            raise
        if claimed:
            await run_unit(self.store, lambda: self._settle(claimed, published))
        return published

    async def _claim(self) -> list[tuple[str, int, dict[str, Any]]]:
        now = self.clock()
        claimed = []
        for entry in await self.store.find_due(OUTBOX, now, self.batch):
            version = await self.store.put(OUTBOX, entry.key,
                                           {**entry.doc, "due_at": now + CLAIM_S}, entry.version)
            claimed.append((entry.key, version, entry.doc))
        return claimed

    async def _settle(self, claimed: list[tuple[str, int, dict[str, Any]]],
                      published: int) -> None:
        for n, (key, version, doc) in enumerate(claimed):
            if n < published:
                await self.store.delete(OUTBOX, key, version)
            else:
                await self.store.put(OUTBOX, key, doc, version)

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
