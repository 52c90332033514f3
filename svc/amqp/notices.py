"""Kazoo document-change notices → document changes for the store (SPEC §6, §12).

``read_notice`` is the pure decision for one notice; ``NoticeConsumer`` micro-batches the
deliveries into store transactions, acks after the write, and dead-letters poison with its
reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from ..handlers import quantity_events
from ..jsonio import loads
from ..quantities import NumberClassifier, document_contributions
from ..rating import PlanInvalid
from ..store import AccountFields, DocChange, Repository, StoreError, StoreUnavailable
from .publisher import Publisher

log = logging.getLogger("svc.notices")
DOC_EVENTS = {"doc_created", "doc_edited", "doc_deleted"}
ACCOUNT_DB = re.compile(r"^account(?:%2F|/)([0-9a-f]{2})(?:%2F|/)([0-9a-f]{2})(?:%2F|/)"
                        r"([0-9a-f]+)(?:-\d{6})?$")


class Poison(ValueError):
    """A notice that can never be applied; the message is its dead-letter reason."""


@dataclass(frozen=True)
class Ignored:
    reason: str


@dataclass(frozen=True)
class PlanWrite:
    vendor_id: str
    plan_id: str
    doc: dict[str, Any] | None  # None: deleted


def _revision(rev: Any) -> int:
    if not isinstance(rev, str) or not re.match(r"^\d+-", rev + "-"):
        raise Poison("Rev: must be a string like \"3-abc…\"")
    return int(rev.split("-", 1)[0])


def _account_of_db(database: str) -> str | None:
    match = ACCOUNT_DB.match(database)
    return "".join(match.groups()) if match else None


def _is_true(value: Any) -> bool:
    return value is True or value == "true"


def read_notice(notice: Any, classifiers: tuple[NumberClassifier, ...]
                ) -> DocChange | PlanWrite | Ignored:
    if not isinstance(notice, dict):
        raise Poison("body must be a JSON object")
    event = notice.get("Event-Name")
    if isinstance(event, str) and event.startswith("db_"):
        return Ignored("database event")
    if event not in DOC_EVENTS:
        raise Poison(f"Event-Name: {event!r} is not a document change")
    doc_id, database = notice.get("ID"), notice.get("Database")
    if not isinstance(doc_id, str) or not doc_id:
        raise Poison("ID: required")
    deleted = event == "doc_deleted" or _is_true(notice.get("Is-Soft-Deleted"))
    doc = notice.get("Doc")
    if not deleted and not isinstance(doc, dict):
        raise Poison("Doc: required on created/edited notices (svc needs a publisher that "
                     "includes the document; KAZOO's own sends none)")
    doc = doc if isinstance(doc, dict) else {}
    doc_type = notice.get("Type") or doc.get("pvt_type") or doc_id
    if not isinstance(doc_type, str):  # it is stored, and counted by type
        raise Poison("Type: must be a string (the document's pvt_type)")
    if doc_id == "apps_store":
        doc_type = "apps_store"
    account_db = _account_of_db(database) if isinstance(database, str) else None
    if doc_type == "account":
        if database != "accounts":  # the accounts database only, so nothing counts twice
            return Ignored("account document outside the accounts database")
        account_id = doc_id
    else:
        if doc_type == "number" and account_db is None:
            return Ignored("number document outside an account database")
        account_id = notice.get("Account-ID") or account_db
        if not isinstance(account_id, str) or not account_id:
            raise Poison("Account-ID: required (or an account Database)")
    rev = None if deleted and notice.get("Rev") is None else _revision(notice.get("Rev"))
    if doc_type == "service_plan":
        return PlanWrite(account_id, doc_id, None if deleted else {**doc, "_id": doc_id})
    fields = None
    if doc_type == "account" and not deleted:
        tree = doc.get("pvt_tree") or []
        if not isinstance(tree, list) or not all(isinstance(a, str) for a in tree):
            raise Poison("Doc.pvt_tree: must be a list of account ids")
        fields = AccountFields(tuple(tree), _is_true(doc.get("pvt_reseller")),
                               doc.get("pvt_enabled") not in (False, "false"), doc.get("name"))
    counts = {} if deleted else document_contributions(doc, classifiers).counts
    return DocChange(account_id, doc_id, doc_type, rev, deleted, counts, fields)


class NoticeConsumer:
    """Collects deliveries into batches of up to ``batch`` (or what arrives within
    ``linger_s``) and writes each batch in one store transaction."""

    def __init__(self, repo: Repository, publisher: Publisher,
                 classifiers: tuple[NumberClassifier, ...], batch: int = 200,
                 linger_s: float = 0.005, observe: Any = None,
                 max_bytes: int | None = None) -> None:
        self.repo = repo
        self.max_bytes = max_bytes  # larger notices are dead-lettered (SPEC §10)
        self.publisher = publisher
        self.classifiers = classifiers
        self.batch = batch
        self.linger_s = linger_s
        self.observe = observe  # metrics hook: (doc type, outcome)
        self._pending: list[tuple[AbstractIncomingMessage, DocChange]] = []
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
            action = read_notice(loads(message.body), self.classifiers)
        except (Poison, ValueError) as error:
            await self._dead_letter(message, str(error), "invalid_notice")
            return
        except Exception as error:  # noqa: BLE001 - e.g. RecursionError: JSON nested too deep
            await self._dead_letter(message, f"{type(error).__name__}: {error}",
                                    "invalid_notice")
            return
        if isinstance(action, Ignored):
            self._count("other", "ignored")
            await message.ack()
        elif isinstance(action, PlanWrite):
            await self._write_plan(message, action)
        else:
            self._pending.append((message, action))
            if self._flush_task is None or self._flush_task.done():
                self._flush_task = asyncio.create_task(self._flushing())

    async def _flushing(self) -> None:
        """The one writer of pending changes. Deliveries only append, so what is held in
        memory stays bounded by the prefetch however fast notices come (a delivery that
        waited for a flush of its own would pile up tasks and shrink the batches)."""
        while self._pending:
            if len(self._pending) < self.batch:
                await asyncio.sleep(self.linger_s)  # let a batch fill
            await self._flush_batch()

    async def flush(self) -> None:
        """Write everything pending, after the batch being written and acked (at stop)."""
        await self._flush_batch()  # takes the lock: waits for a batch in progress
        while self._pending:
            await self._flush_batch()

    async def _flush_batch(self) -> None:
        async with self._lock:
            batch = self._pending[:self.batch]
            del self._pending[:self.batch]
            if not batch:
                return
            try:
                results = await self.repo.apply_doc_changes([change for _, change in batch])
            except Exception:  # noqa: BLE001
                # one bad change must not sink the others: apply them one by one
                results = [await self._apply_one(message, change) for message, change in batch]
            changes, lost = [], 0
            for (message, change), result in zip(batch, results, strict=True):
                if result is None:
                    continue
                changes.extend(result.changes)
                self._count(change.doc_type, result.outcome)
                lost += not await self._ack(message)
            if lost:
                log.warning("%d acks lost (channel closed): those notices will be redelivered "
                            "and ignored as already applied", lost)
            try:
                for event in quantity_events(changes):
                    await self.publisher.event(event.name, event.account_id, event.fields)
            except Exception as error:  # noqa: BLE001 - the counts are stored and acked
                log.warning("quantities_change events not published: %r", error)

    @staticmethod
    async def _ack(message: AbstractIncomingMessage) -> bool:
        """The change is in the store. If the delivery's channel went down with the broker,
        the ack is lost and the broker delivers the notice again, which the revision check
        ignores: one lost ack must not leave the rest of the batch unacked."""
        try:
            await message.ack()
        except Exception:  # noqa: BLE001 - e.g. ChannelInvalidStateError
            return False
        return True

    async def _apply_one(self, message: AbstractIncomingMessage, change: DocChange) -> Any:
        try:
            return await self.repo.apply_doc_change(change)
        except StoreUnavailable:
            await message.nack(requeue=True)  # counted toward the delivery limit
        except Exception as error:  # noqa: BLE001 - poison, whatever its kind
            log.exception("notice failed")
            await self._dead_letter(message, f"{type(error).__name__}: {error}",
                                    "apply_failed")
        return None

    async def _write_plan(self, message: AbstractIncomingMessage, write: PlanWrite) -> None:
        try:
            if write.doc is None:
                await self.repo.delete_plan(write.vendor_id, write.plan_id)
            else:
                await self.repo.put_plan(write.vendor_id, write.plan_id, write.doc)
        except PlanInvalid as error:
            await self._dead_letter(message, f"invalid service plan: {error}", "invalid_plan")
            return
        except StoreError as error:
            if error.reason != "plan_not_found":
                await self._dead_letter(message, str(error), "plan_rejected")
                return
        self._count("service_plan", "applied")
        await message.ack()

    async def _dead_letter(self, message: AbstractIncomingMessage, reason: str,
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
