"""The doc-change consumer: micro-batches deliveries into store
transactions, completes notices without ``Doc`` from the document source (one read per
database per batch), acks after the write, and dead-letters poison with its reason. While the
document source or the store cannot answer, the notices wait unacked for it with back-off:
only a notice that can never be applied is dead-lettered. A notice whose document the source
has only at an older revision (a lagging replica) is read again for the lag budget, then
recorded to be re-read in the background and acked: lag never counts toward the queue's
delivery limit.

What a notice means is decided in ``svc.ingest``; this module only moves deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from aio_pika.abc import AbstractIncomingMessage

from ..ingest.notices import Ignored, Notice, PlanWrite, Poison, document_change, read_notice
from ..ingest.rereads import PendingRereads
from ..ingest.resolve import Lagging, complete_notices
from ..jsonio import loads
from ..quantities import NumberClassifier
from ..rating import PlanInvalid
from ..sources import DocumentSource, SourceUnavailable
from ..store import AppliedChange, Conflict, DocChange, Repository, StoreUnavailable
from ..store.audit import Actor, acting
from .publisher import Publisher

log = logging.getLogger("svc.notices")
RETRY_BASE_S = 0.2
RETRY_MAX_S = 10.0
# What the store raises when the same write may succeed later: unreachable, busy or locked
# (the adapters classify their errors as StoreUnavailable), or a unit that kept losing its
# compare-and-set to other writers. The notice is not at fault: it waits, never poison.
TRANSIENT_STORE_ERRORS = (StoreUnavailable, Conflict)
NOTICE = Actor("notice", "doc_change")  # who the audit trail says made a document's change


class Delivery(Protocol):
    """A broker delivery, or a document re-read after a lagging replica caught up."""

    body: bytes
    routing_key: str | None

    async def ack(self) -> None: ...

    async def nack(self, requeue: bool = True) -> None: ...


Pending = tuple[Delivery, Notice]


class NoticeConsumer:
    """Collects deliveries into batches of up to ``batch`` (or what arrives within
    ``linger_s``) and writes each batch in one store transaction."""

    def __init__(self, repo: Repository, publisher: Publisher,
                 classifiers: tuple[NumberClassifier, ...], batch: int = 200,
                 linger_s: float = 0.005, observe: Any = None,
                 max_bytes: int | None = None, source: DocumentSource | None = None,
                 rereads: PendingRereads | None = None, lag_budget_s: float = 10.0) -> None:
        self.repo = repo
        self.max_bytes = max_bytes  # larger notices are dead-lettered
        self.publisher = publisher
        self.classifiers = classifiers
        self.source = source  # where notices without Doc are completed
        # a document the source still has at an older revision after lag_budget_s is
        # recorded here, to be read again in the background
        self.rereads = rereads if rereads is not None else PendingRereads(repo.store)
        self.lag_budget_s = lag_budget_s
        self.batch = batch
        self.linger_s = linger_s
        self.observe = observe  # metrics hook: (doc type, outcome)
        self._pending: list[Pending] = []
        # id(message) -> (when a read first found it behind, reads that did)
        self._lag: dict[int, tuple[float, int]] = {}
        # notices of a lagging replica, each waiting for its next read
        self._retries: dict[asyncio.TimerHandle, list[Pending]] = {}
        # while the source is down, notices that need it wait here (unacked) for one probe
        self._waiting: list[Pending] = []
        self._probe: asyncio.Task[None] | None = None
        # while the store cannot take writes, notices wait here (unacked) for one retry of
        # the store, with back-off; delivery limits are only for notices that fail to apply
        self._held: list[Pending] = []
        self._store_retry: asyncio.TimerHandle | None = None
        self._store_delay_s = RETRY_BASE_S
        self._flush_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def _count(self, doc_type: str, outcome: str) -> None:
        if self.observe:
            self.observe(doc_type, outcome)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        if self.max_bytes is not None and len(message.body) > self.max_bytes:
            await self._dead_letter(message, f"body of {len(message.body)} bytes exceeds "
                                    f"SVC_MAX_MESSAGE_BYTES ({self.max_bytes})", "oversize")
            return
        try:
            notice = read_notice(loads(message.body))
        except (Poison, ValueError) as error:
            await self._dead_letter(message, str(error), "invalid_notice")
            return
        except Exception as error:  # noqa: BLE001 - e.g. RecursionError: JSON nested too deep
            await self._dead_letter(message, f"{type(error).__name__}: {error}",
                                    "invalid_notice")
            return
        if isinstance(notice, Ignored):
            self._count("other", "ignored")
            await message.ack()
        elif notice.needs_document and self.source is None:
            log.warning("a notice without Doc needs a document source: set SVC_COUCH_URL")
            await self._dead_letter(message, "no_document_source", "no_document_source")
        else:
            self._enqueue([(message, notice)])

    def resubmit(self, items: list[Pending]) -> None:
        """Complete notices from elsewhere (documents re-read once the source caught up):
        written in the batches like deliveries."""
        self._enqueue(items)

    def _enqueue(self, items: list[Pending]) -> None:
        self._pending.extend(items)
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.create_task(self._flushing())

    def _retry_later(self, items: list[Pending], delay_s: float) -> None:
        """Back into the batch after ``delay_s``; the deliveries stay unacked meanwhile
        (the broker gives them back if this channel goes)."""
        handle: asyncio.TimerHandle

        def due() -> None:
            self._retries.pop(handle, None)
            self._enqueue(items)

        handle = asyncio.get_running_loop().call_later(delay_s, due)
        self._retries[handle] = items

    async def _flushing(self) -> None:
        """The one writer of pending changes. Deliveries only append, so what is held in
        memory stays bounded by the prefetch however fast notices come (a delivery that
        waited for a flush of its own would pile up tasks and shrink the batches)."""
        while self._pending:
            if len(self._pending) < self.batch:
                await asyncio.sleep(self.linger_s)  # let a batch fill
            await self._flush_batch()

    async def flush(self) -> None:
        """Write everything pending, after the batch being written and acked (at stop).
        Notices of a lagging replica are recorded to be re-read and acked, so that a restart
        does not count toward their delivery limit either; notices waiting for the source
        or the store are left unacked: the broker redelivers them."""
        if self._probe is not None:
            self._probe.cancel()
        await self._flush_batch()  # takes the lock: waits for a batch in progress
        while self._pending:
            await self._flush_batch()
        retries, self._retries = self._retries, {}  # what those batches found behind too
        for handle, items in retries.items():
            handle.cancel()
            for message, notice in items:
                await self._defer(message, notice)
        if self._store_retry is not None:
            self._store_retry.cancel()

    async def _completed(self, batch: list[Pending]) -> list[Pending]:
        """The batch with every notice complete; what cannot be completed now is set to
        be retried, and left out."""
        unread = [item for item in batch if item[1].needs_document]
        if not unread or self.source is None:
            return batch
        if self._probe is not None and not self._probe.done():  # known to be down
            self._waiting.extend(unread)
            return [item for item in batch if not item[1].needs_document]
        try:
            answers = await complete_notices(self.source, [notice for _, notice in unread])
        except SourceUnavailable as error:
            log.warning("document source unavailable, notices wait for it: %s", error)
            self._waiting.extend(unread)
            self._probe = asyncio.create_task(self._probing(self.source))
            return [item for item in batch if not item[1].needs_document]
        read = {id(message): answer for (message, _), answer in zip(unread, answers,
                                                                    strict=True)}
        complete: list[Pending] = []
        for message, notice in batch:
            answer = read.get(id(message), notice)
            if isinstance(answer, Lagging):
                await self._lagging(message, answer)
            else:
                self._lag.pop(id(message), None)
                complete.append((message, answer))
        return complete

    async def _probing(self, source: DocumentSource) -> None:
        """Until the source answers again, with back-off; then the waiting notices go back
        into the batches."""
        delay = RETRY_BASE_S
        while True:
            await asyncio.sleep(delay)
            try:
                await source.ping()
            except SourceUnavailable:
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            waiting, self._waiting = self._waiting, []
            log.info("document source back, %d notices resume", len(waiting))
            self._enqueue(waiting)
            return

    async def _lagging(self, message: Delivery, lag: Lagging) -> None:
        """Read again with back-off within the lag budget, unacked (the broker does not
        count it); past the budget, recorded to be re-read in the background, and acked."""
        now = asyncio.get_running_loop().time()
        since, reads = self._lag.get(id(message), (now, 0))
        left_s = self.lag_budget_s - (now - since)
        if left_s > 0:
            self._lag[id(message)] = (since, reads + 1)
            self._retry_later([(message, lag.notice)],
                              min(RETRY_BASE_S * 2 ** reads, RETRY_MAX_S, left_s))
            return
        log.info("document source still behind (rev %d < %s) after the lag budget",
                 lag.fetched_rev, lag.notice.rev)
        if not await self._defer(message, lag.notice):
            # read again later, and recorded then if the source is still behind
            self._retry_later([(message, lag.notice)], RETRY_MAX_S)

    async def _defer(self, message: Delivery, notice: Notice) -> bool:
        """The document recorded to be read again in the background, the notice acked;
        False when the store could not take the record (the notice stays unacked)."""
        try:
            await self.rereads.record(notice, message.body, message.routing_key or "")
        except TRANSIENT_STORE_ERRORS as error:
            log.warning("could not record a lagging document: %s", error)
            return False
        self._lag.pop(id(message), None)
        log.info("document %s of account %s recorded to be read again at rev %s, notice acked",
                 notice.doc_id, notice.account_id, notice.rev)
        self._count(notice.doc_type or "other", "deferred")
        await self._ack(message)
        return True

    async def _flush_batch(self) -> None:
        async with self._lock:
            batch = self._pending[:self.batch]
            del self._pending[:self.batch]
            if not batch:
                return
            if self._store_retry is not None:  # known not to take writes: wait with the rest
                self._held.extend(batch)
                return
            plans: list[tuple[Pending, PlanWrite]] = []
            changes: list[tuple[Pending, DocChange]] = []
            for message, notice in await self._completed(batch):
                try:
                    change = document_change(notice, self.classifiers)
                except Poison as error:
                    await self._dead_letter(message, str(error), "invalid_notice")
                    continue
                if isinstance(change, PlanWrite):
                    plans.append(((message, notice), change))
                else:
                    changes.append(((message, notice), change))
            for index, ((message, _), write) in enumerate(plans):
                try:
                    await self._write_plan(message, write)
                except TRANSIENT_STORE_ERRORS as error:
                    self._wait_for_store([item for item, _ in plans[index:] + changes], error)
                    return
            await self._apply(changes)
            if self._store_retry is None:
                self._store_delay_s = RETRY_BASE_S  # the store took the batch
                await self._supersede([notice for (_, notice), _ in plans + changes])

    async def _supersede(self, written: list[Notice]) -> None:
        """A document written here needs no re-read of an older revision any more. Should
        the store fail now, the re-read comes and the revision ledger ignores it."""
        if not written:
            return
        try:
            await self.rereads.supersede(written)
        except TRANSIENT_STORE_ERRORS as error:
            log.warning("pending re-reads not superseded: %s", error)

    def _wait_for_store(self, items: list[Pending], error: Exception) -> None:
        """Hold ``items`` unacked until one retry after the back-off (a nack would count
        toward the queue's delivery limit, and then dead-letter them); the batches that come
        meanwhile wait with them."""
        self._held.extend(items)
        if self._store_retry is not None:
            return
        log.warning("store cannot take writes, %d notices wait %.1f s for it: %s",
                    len(self._held), self._store_delay_s, error)
        self._store_retry = asyncio.get_running_loop().call_later(self._store_delay_s,
                                                                  self._retry_store)
        self._store_delay_s = min(self._store_delay_s * 2, RETRY_MAX_S)

    def _retry_store(self) -> None:
        """The held notices go back into the batches: the first one written tries the store
        again, and waits with the others if it still cannot take it."""
        self._store_retry = None
        held, self._held = self._held, []
        self._enqueue(held)

    async def _apply(self, batch: list[tuple[Pending, DocChange]]) -> None:
        if not batch:
            return
        try:
            with acting(NOTICE):
                results = await self.repo.apply_doc_changes([change for _, change in batch])
        except TRANSIENT_STORE_ERRORS as error:
            self._wait_for_store([item for item, _ in batch], error)
            return
        except Exception:  # noqa: BLE001
            # one bad change must not sink the others: apply them one by one
            results = []
            for index, ((message, _), change) in enumerate(batch):
                try:
                    results.append(await self._apply_one(message, change))
                except TRANSIENT_STORE_ERRORS as error:
                    self._wait_for_store([item for item, _ in batch[index:]], error)
                    batch = batch[:index]
                    break
        lost = 0
        for ((message, _), change), result in zip(batch, results, strict=True):
            if result is None:
                continue
            self._count(change.doc_type or "other", result.outcome)
            lost += not await self._ack(message)
        if lost:
            log.warning("%d acks lost (channel closed): those notices will be redelivered "
                        "and ignored as already applied", lost)

    @staticmethod
    async def _ack(message: Delivery) -> bool:
        """The change is in the store. If the delivery's channel went down with the broker,
        the ack is lost and the broker delivers the notice again, which the revision check
        ignores: one lost ack must not leave the rest of the batch unacked."""
        try:
            await message.ack()
        except Exception:  # noqa: BLE001 - e.g. ChannelInvalidStateError
            return False
        return True

    async def _apply_one(self, message: Delivery,
                         change: DocChange) -> AppliedChange | None:
        """``None``: dead-lettered. What the store cannot take now is raised."""
        try:
            with acting(NOTICE):
                return await self.repo.apply_doc_change(change)
        except TRANSIENT_STORE_ERRORS:
            raise
        except Exception as error:  # noqa: BLE001 - poison, whatever its kind
            log.exception("notice failed")
            await self._dead_letter(message, f"{type(error).__name__}: {error}",
                                    "apply_failed")
        return None

    async def _write_plan(self, message: Delivery, write: PlanWrite) -> None:
        """Through the revision ledger. What the store cannot take now is raised."""
        try:
            with acting(NOTICE):
                result = await self.repo.apply_plan_change(write.vendor_id, write.plan_id,
                                                           write.rev, write.doc)
        except PlanInvalid as error:  # refused before the ledger moved
            await self._dead_letter(message, f"invalid service plan: {error}", "invalid_plan")
            return
        except TRANSIENT_STORE_ERRORS:
            raise
        except Exception as error:  # noqa: BLE001 - poison, whatever its kind
            log.exception("service plan notice failed")
            await self._dead_letter(message, f"{type(error).__name__}: {error}",
                                    "apply_failed")
            return
        self._count("service_plan", result.outcome)
        await self._ack(message)

    async def _dead_letter(self, message: Delivery, reason: str,
                           code: str) -> None:
        log.warning("notice dead-lettered: %s", reason,
                    extra={"event": "dead_letter", "routing_key": message.routing_key})
        self._count("other", "dead_lettered")
        try:
            await self.publisher.dead_letter(message.body, message.routing_key or "", reason,
                                             code=code)
        except Exception as error:  # noqa: BLE001 - e.g. the broker is going away
            # not acked: back to the queue (counted toward the delivery limit), else the
            # delivery would hold a prefetch slot for as long as this channel lives
            log.warning("could not dead-letter, requeued: %r", error)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            return
        await self._ack(message)
