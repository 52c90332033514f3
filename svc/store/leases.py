"""Sync leases and delivery records (SPEC §14): who may sync an account now, and what was
sent to each bookkeeper for each billed snapshot.

A claim carries a fencing token. Every write made under it (a delivery record, the release)
first checks that the account's lease still holds that token and has not expired, in the same
unit as the write, so a replica that lost its lease (paused, partitioned, slow) can no longer
change anything. Leases are renewed while a sync runs; a claim is refused while any unexpired
lease exists, the claimant's own included.

Delivery records and releases are group-committed: those asked for while a unit is being
written go together in the next one, each fenced by its own claim's token, so the syncs in
flight share one transaction instead of taking the store's single writer in turn.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from ..models.events import Event
from .abc import DocumentStore, VersionConflict, Versioned
from .audit import Change, note
from .outbox import emit
from .records import Doc, new_services, with_due_time
from .units import Conflict, GroupCommit, run_unit


class LeaseLost(Conflict):
    """The claim's lease expired or passed to another claim: nothing more may be written."""


@dataclass(frozen=True)
class DirtyAccountClaim:
    account_id: str
    token: str  # the fencing token of this claim's lease
    services: Doc  # the services document as claimed


def delivery_key(account_id: str, bookkeeper_key: str, snapshot_seq: int,
                 presentation: int = 0) -> str:
    """``presentation`` n > 0: the n-th time a declined invoice was presented again."""
    key = f"{account_id}|{bookkeeper_key}|{snapshot_seq}"
    return f"{key}|p{presentation}" if presentation else key


def _lease_of(doc: Doc) -> dict[str, Any]:
    return doc.get("lease") or {}


@dataclass(frozen=True)
class _Release:
    synced: bool
    updates: Doc | None
    next_attempt_at: float | None
    recheck_at: float | None


@dataclass(frozen=True)
class _Fenced:
    """What one write under ``claim`` makes: a delivery record (its key and document) or the
    release, with the event and audit entry that go with it."""

    claim: DirtyAccountClaim
    delivery: tuple[str, Doc] | None = None
    billing: Doc | None = None  # the snapshot being billed, frozen with its first delivery
    release: _Release | None = None
    event: Event | None = None
    audited: Change | None = None


class SyncLeases:
    def __init__(self, store: DocumentStore, *, sync_buffer_s: float = 0,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.sync_buffer_s = sync_buffer_s
        self.clock = clock
        self._writes = GroupCommit(store, self._write_all)

    def _leased(self, found: Versioned, owner: str, lease_s: float) -> Versioned:
        lease = {"owner": owner, "token": uuid.uuid4().hex, "until": self.clock() + lease_s}
        return Versioned(found.key, found.version, {**found.doc, "lease": lease,
                                                    "due_at": lease["until"]})

    @staticmethod
    def _claim(leased: Versioned) -> DirtyAccountClaim:
        return DirtyAccountClaim(leased.key, _lease_of(leased.doc)["token"], leased.doc)

    async def claim_due(self, owner: str, limit: int, lease_s: float,
                        skip: Collection[str] = ()) -> list[DirtyAccountClaim]:
        """Lease up to ``limit`` due accounts: a leased account is not due again until its
        lease expires, so replicas never sync one account at once. ``skip``: the accounts
        the claimant still has in flight, which a lapsed lease must not hand it twice."""
        claims = []
        for found in await self.store.find_due("services", self.clock(), limit + len(skip)):
            if found.key in skip or len(claims) == limit:
                continue
            leased = self._leased(found, owner, lease_s)
            try:
                await self.store.put("services", found.key, leased.doc, found.version)
            except VersionConflict:
                continue  # another replica claimed or changed it first
            claims.append(self._claim(leased))
        return claims

    async def claim_account(self, account_id: str, owner: str, lease_s: float
                            ) -> DirtyAccountClaim:
        """Lease one account now (``sync_req``); ``Conflict`` while any lease holds it."""
        async def work() -> DirtyAccountClaim:
            found = await self.store.get("services", account_id)
            if found is None:
                found = Versioned(account_id, 0, new_services(account_id))
            if _lease_of(found.doc).get("until", 0) > self.clock():
                raise Conflict(f"a sync of {account_id} is in progress")
            leased = self._leased(found, owner, lease_s)
            await self.store.put("services", account_id, leased.doc, found.version)
            return self._claim(leased)

        return await run_unit(self.store, work)

    async def release_lapsed(self, claim: DirtyAccountClaim, next_attempt_at: float) -> None:
        """After ``LeaseLost``: unless another claim holds the account now, it stays dirty and
        falls due at ``next_attempt_at``, not at once: what was sent under the lost lease but
        not recorded would otherwise be sent again without pause."""
        async def work() -> None:
            found = await self.store.get("services", claim.account_id)
            if found is None:
                return
            lease = _lease_of(found.doc)
            if lease.get("token") != claim.token and lease.get("until", 0) > self.clock():
                return  # another claim's now
            await self.store.put("services", claim.account_id, with_due_time({
                **found.doc, "lease": None, "dirty": True,
                "next_attempt_at": next_attempt_at}, self.sync_buffer_s), found.version)

        await run_unit(self.store, work)

    async def settle_delivery(self, delivery_id: str, settle: Callable[[Doc], Doc],
                              audited: Change) -> Doc:
        """An operator's decision on a delivery record (``settle`` returns it changed; it
        raises to refuse), written while no sync holds the account (``Conflict`` otherwise),
        the account made due at once so that its snapshot goes on."""
        async def work() -> Doc:
            found = await self.store.get("deliveries", delivery_id)
            if found is None:
                raise KeyError(delivery_id)
            account_id = found.doc["account_id"]
            services = await self.store.get("services", account_id)
            assert services is not None  # a delivery is written under the account's lease
            if _lease_of(services.doc).get("until", 0) > self.clock():
                raise Conflict(f"a sync of {account_id} is in progress: try again")
            record = settle(found.doc)
            await self.store.put("deliveries", delivery_id, record, found.version)
            await self.store.put("services", account_id, {
                **services.doc, "dirty": True, "next_attempt_at": None, "due_at": self.clock()},
                services.version)
            note(audited)
            return record

        return await run_unit(self.store, work)

    def _holds(self, claim: DirtyAccountClaim, found: Versioned) -> bool:
        lease = _lease_of(found.doc)
        return lease.get("token") == claim.token and lease.get("until", 0) > self.clock()

    async def _fenced(self, claim: DirtyAccountClaim) -> Versioned:
        """The services document, if the claim's lease still holds; else ``LeaseLost``."""
        found = await self.store.get("services", claim.account_id)
        if found is None or not self._holds(claim, found):
            raise LeaseLost(f"the lease on {claim.account_id} was lost")
        return found

    async def renew(self, claim: DirtyAccountClaim, lease_s: float) -> bool:
        """Extend the lease of a sync in progress; False once it is lost."""
        async def work() -> None:
            found = await self._fenced(claim)
            until = self.clock() + lease_s
            await self.store.put("services", claim.account_id, {
                **found.doc, "lease": {**_lease_of(found.doc), "until": until},
                "due_at": until}, found.version)

        try:
            await run_unit(self.store, work)
        except LeaseLost:
            return False
        return True

    async def release(self, claim: DirtyAccountClaim, *, synced: bool,
                      updates: Doc | None = None, next_attempt_at: float | None = None,
                      recheck_at: float | None = None, event: Event | None = None,
                      audited: Change | None = None) -> bool:
        """End the lease. The account turns clean only if ``synced`` and it did not change
        during the sync (then it falls due again at ``recheck_at``, if given); otherwise it
        stays dirty and falls due after ``next_attempt_at``. False (nothing written, no
        ``event``, nothing ``audited``) when the lease was lost."""
        try:
            await self._writes.submit(_Fenced(
                claim, release=_Release(synced, updates, next_attempt_at, recheck_at),
                event=event, audited=audited))
        except LeaseLost:
            return False
        return True

    async def delivery(self, claim: DirtyAccountClaim, bookkeeper_key: str,
                       snapshot_seq: int, presentation: int = 0) -> Doc | None:
        found = await self.store.get("deliveries", delivery_key(
            claim.account_id, bookkeeper_key, snapshot_seq, presentation))
        return found.doc if found else None

    async def record_delivery(self, claim: DirtyAccountClaim, bookkeeper_key: str,
                              snapshot_seq: int, record: Doc, event: Event | None = None,
                              audited: Change | None = None, billing: Doc | None = None,
                              presentation: int = 0) -> None:
        """Write the delivery record under the claim's lease (``LeaseLost`` otherwise):
        before the call (state ``sending``; the first of a snapshot with the ``billing`` it
        freezes on the services document), and with the bookkeeper's answer, its
        ``bookkeeper_sync`` event and its audit entry."""
        await self._writes.submit(_Fenced(
            claim, delivery=(delivery_key(claim.account_id, bookkeeper_key, snapshot_seq,
                                          presentation), {
                "account_id": claim.account_id, "bookkeeper_key": bookkeeper_key,
                "snapshot_seq": snapshot_seq, "presentation": presentation,
                "updated_at": self.clock(), **record}),
            billing=billing, event=event, audited=audited))

    def _released(self, claim: DirtyAccountClaim, found: Versioned, release: _Release) -> Doc:
        doc = {**found.doc, **(release.updates or {}), "lease": None,
               "next_attempt_at": release.next_attempt_at}
        unchanged = found.doc.get("change_count") == claim.services.get("change_count")
        if release.synced and unchanged:
            doc.update(dirty=False, due_at=release.recheck_at)
            return doc
        return with_due_time({**doc, "dirty": True}, self.sync_buffer_s)

    async def _write_all(self, writes: Sequence[_Fenced]) -> list[Exception | None]:
        """One unit for the writes of many claims: each is made only if its own lease holds
        (else it is refused with ``LeaseLost`` and leaves no trace); a write sees those made
        before it in the unit, as if each had had a unit of its own."""
        services = await self.store.get_many("services", [w.claim.account_id for w in writes])
        deliveries = await self.store.get_many(
            "deliveries", [w.delivery[0] for w in writes if w.delivery is not None])
        refused: list[Exception | None] = []
        for write in writes:
            account_id = write.claim.account_id
            found = services.get(account_id)
            if found is None or not self._holds(write.claim, found):
                refused.append(LeaseLost(f"the lease on {account_id} was lost"))
                continue
            if write.delivery is not None:
                key, record = write.delivery
                prior = deliveries.get(key)
                version = await self.store.put("deliveries", key, record,
                                               prior.version if prior else 0)
                deliveries[key] = Versioned(key, version, record)
            if write.billing is not None:
                doc = {**found.doc, "billing": write.billing}
                version = await self.store.put("services", account_id, doc, found.version)
                found = services[account_id] = Versioned(account_id, version, doc)
            if write.release is not None:
                doc = self._released(write.claim, found, write.release)
                version = await self.store.put("services", account_id, doc, found.version)
                services[account_id] = Versioned(account_id, version, doc)
            if write.event is not None:
                emit(write.event)
            if write.audited is not None:
                note(write.audited)
            refused.append(None)
        return refused
