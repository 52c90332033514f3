"""Documents to read again from a lagging CouchDB replica.

A notice whose document the source still has only at an older revision once the lag budget
is spent is recorded here (one record per account and document, with the notice's revision
and the notice itself) and acked, so the broker's delivery limit never sees the lag. A
background task reads the due records again with back-off; once the source has the notice's
revision (or a newer one) the completed notice goes through the consumer like any other, and
settling it there removes the record. A later notice written for the same document removes
the record too: the revision ledger would ignore the older re-read anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..sources import DocumentSource, SourceUnavailable
from ..store import DocumentStore, StoreUnavailable, VersionConflict, Versioned
from ..store.abc import DUE_FIELD
from ..store.records import ledger_key
from ..store.units import run_unit
from .notices import Notice
from .resolve import Lagging, complete_notices

log = logging.getLogger("svc.rereads")
COLLECTION = "rereads"
BATCH = 100
MAX_DOUBLINGS = 30  # the interval is capped long before; this only bounds the power


class PendingRereads:
    """The store's records of documents to read again, by account and document id."""

    def __init__(self, store: DocumentStore, first_s: float = 5.0, max_s: float = 300.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.first_s = first_s
        self.max_s = max_s
        self.clock = clock
        # whether any record may exist, from a look at the store at most every first_s and
        # from the records written here: spares the consumer a read per batch when nothing
        # lags (the usual case)
        self.maybe_pending = True
        self._looked_at = -math.inf

    def _interval(self, attempts: int) -> float:
        return min(self.first_s * 2 ** min(attempts, MAX_DOUBLINGS), self.max_s)

    async def record(self, notice: Notice, body: bytes, routing_key: str) -> None:
        """Keep the notice to be read again; a record of a newer revision already there
        covers it."""
        assert notice.rev is not None  # a notice that needs its document has a revision
        key = ledger_key(notice.account_id, notice.doc_id)

        async def work() -> None:
            found = await self.store.get(COLLECTION, key)
            if found is not None and found.doc["rev"] >= notice.rev:
                return
            now = self.clock()
            await self.store.put(COLLECTION, key, {
                "account_id": notice.account_id, "database": notice.database,
                "doc_id": notice.doc_id, "type": notice.doc_type, "rev": notice.rev,
                "body": body.decode(), "routing_key": routing_key, "attempts": 0,
                "since": found.doc["since"] if found else now, DUE_FIELD: now + self.first_s,
            }, found.version if found else 0)

        await run_unit(self.store, work)
        self.maybe_pending = True

    async def refresh(self) -> None:
        """Look whether any record exists (another replica may have written one)."""
        self._looked_at = self.clock()
        self.maybe_pending = bool(await self.store.find_due(COLLECTION, math.inf, 1))

    async def claim_due(self, limit: int = BATCH) -> list[Versioned]:
        """The records due now, each moved to its next re-read time first: a replica that
        claims one (compare-and-set) reads it, the others skip it."""
        now = self.clock()
        claimed = []
        for found in await self.store.find_due(COLLECTION, now, limit):
            attempts = int(found.doc["attempts"]) + 1
            doc = {**found.doc, "attempts": attempts, DUE_FIELD: now + self._interval(attempts)}
            try:
                version = await self.store.put(COLLECTION, found.key, doc, found.version)
            except VersionConflict:  # claimed elsewhere, or replaced by a newer notice's
                continue
            claimed.append(Versioned(found.key, version, doc))
        return claimed

    async def release(self, claimed: Versioned) -> None:
        """The re-read was written (or dead-lettered): the record goes, unless a newer
        notice replaced it meanwhile."""
        with contextlib.suppress(VersionConflict):
            await self.store.delete(COLLECTION, claimed.key, claimed.version)

    async def supersede(self, written: Iterable[Notice]) -> None:
        """Remove the records of documents just written at their revision or a newer one
        (a revision ``None``, a delete by id, outranks every other). Best effort: a record
        left behind is read again later, and the revision ledger ignores the older read."""
        if self.clock() - self._looked_at >= self.first_s:
            await self.refresh()
        if not self.maybe_pending:
            return
        newest: dict[str, float] = {}
        for notice in written:
            rev = float("inf") if notice.rev is None else notice.rev
            key = ledger_key(notice.account_id, notice.doc_id)
            newest[key] = max(rev, newest.get(key, rev))
        for key, found in (await self.store.get_many(COLLECTION, newest)).items():
            if found.doc["rev"] <= newest[key]:
                with contextlib.suppress(VersionConflict):
                    await self.store.delete(COLLECTION, key, found.version)

    async def count(self) -> int:
        found = sum([1 async for _ in self.store.scan(COLLECTION)])
        self.maybe_pending = found > 0
        return found


def recorded_notice(record: Versioned) -> Notice:
    doc = record.doc
    return Notice(doc["account_id"], doc["database"], doc["doc_id"], doc["type"],
                  int(doc["rev"]), False, None)


class RereadDelivery:
    """A re-read document as the consumer sees a delivery: its body and routing key are the
    original notice's (what a dead letter carries), and settling it removes the record."""

    def __init__(self, pending: PendingRereads, claimed: Versioned) -> None:
        self._pending = pending
        self._claimed = claimed
        self.body: bytes = claimed.doc["body"].encode()
        self.routing_key: str = claimed.doc["routing_key"]

    async def ack(self) -> None:
        await self._pending.release(self._claimed)

    async def nack(self, requeue: bool = True) -> None:
        """Not settled: the record stays, and is read again when due."""


Resubmit = Callable[[list[tuple[Any, Notice]]], None]


class Rereader:
    """Reads the due records again, one request per database per batch, and hands those the
    source has caught up with to the consumer (``resubmit``)."""

    def __init__(self, pending: PendingRereads, source: DocumentSource,
                 resubmit: Resubmit, batch: int = BATCH) -> None:
        self.pending = pending
        self.source = source
        self.resubmit = resubmit
        self.batch = batch

    async def run(self, interval_s: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            full = False
            try:
                full = await self.reread_due() >= self.batch
            except (SourceUnavailable, StoreUnavailable) as error:  # the records wait
                log.warning("lagging documents not re-read now: %s", error)
            except Exception:  # noqa: BLE001 - the task outlives any one failure
                log.exception("re-reading lagging documents failed")
            if not full:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval_s)

    async def reread_due(self) -> int:
        """How many records were claimed."""
        claimed = await self.pending.claim_due(self.batch)
        if not claimed:
            return 0
        notices = [recorded_notice(record) for record in claimed]
        answers = await complete_notices(self.source, notices)
        caught_up = [(RereadDelivery(self.pending, record), answer)
                     for record, answer in zip(claimed, answers, strict=True)
                     if not isinstance(answer, Lagging)]
        if caught_up:
            log.info("document source caught up with %d lagging documents", len(caught_up))
            self.resubmit(caught_up)
        return len(claimed)
