"""Sync leases and delivery records: who may sync an account now, when it falls
due, and what was sent to each bookkeeper for each billed snapshot.

Each account that has ever been dirty has a lease document of its own (collection
``leases``, keyed by the account): when it is next due, who holds it and until when, its
back-off, and whether (and since when) it waits for a sync. The services document, which
ingest rewrites on every change, is not where claims compete: ingest writes the lease
document only when a clean account turns dirty, so under steady traffic a claim, a renewal
or a fenced write meets ingest on no common document.

A claim carries a fencing token. Every write made under it (a delivery record, the release)
checks in its unit that the lease document still holds that token unexpired, and writes the
lease document too, so that a claim made meanwhile by another replica (which writes the same
document) conflicts with it: one of the two units commits, the other is re-run and sees the
outcome. Leases are renewed while a sync runs; a claim is refused while any unexpired lease
exists, the claimant's own included.

Claims are made in one unit: the due lease documents are found and leased there, with the
services documents as they are at that moment, so a claim never loses to a change of the
account (that change is billed by the next sync, since the release sees it).

Delivery records and releases are group-committed: those asked for while a unit is being
written go together in the next one, each fenced by its own claim's token, so the syncs in
flight share one transaction instead of taking the store's single writer in turn.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from ..models.events import Event
from .abc import DocumentStore, Versioned
from .audit import Change, note
from .outbox import emit
from .records import Doc, new_services
from .units import Conflict, GroupCommit, run_unit

LEASES = "leases"
_LEGACY_FIELDS = ("lease", "due_at", "next_attempt_at")  # once on the services document


def new_lease(account_id: str) -> Doc:
    return {"account_id": account_id, "owner": None, "token": None, "until": 0,
            "claimed_at": None, "due_at": None, "next_attempt_at": None, "dirty": False,
            "dirty_since": None}


def _held(lease: Doc, now: float) -> bool:
    return lease.get("token") is not None and float(lease.get("until") or 0) > now


async def schedule_sync(store: DocumentStore, account_id: str, at: float, now: float) -> None:
    """Inside a unit: the account turned dirty at ``now``; it falls due at ``at``, or later
    if its back-off or a lease says so, or earlier if it was due earlier already."""
    found = await store.get(LEASES, account_id) or Versioned(account_id, 0, new_lease(account_id))
    lease = found.doc
    due = max(at, float(lease.get("next_attempt_at") or 0),
              float(lease["until"]) if _held(lease, now) else 0)
    if lease.get("due_at") is not None:
        due = min(due, float(lease["due_at"]))
    await store.put(LEASES, account_id, {
        **lease, "due_at": due, "dirty": True,
        "dirty_since": lease.get("dirty_since") or now}, found.version)


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

    def _leased(self, lease: Doc, owner: str, lease_s: float) -> Doc:
        now = self.clock()
        return {**lease, "owner": owner, "token": uuid.uuid4().hex, "until": now + lease_s,
                "claimed_at": now, "due_at": now + lease_s}

    async def claim_due(self, owner: str, limit: int, lease_s: float,
                        skip: Collection[str] = ()) -> list[DirtyAccountClaim]:
        """Lease up to ``limit`` due accounts, in one unit: a leased account is not due again
        until its lease expires, so replicas never sync one account at once. An account
        whose last change is younger than the sync buffer is put off until it is not.
        ``skip``: the accounts the claimant still has in flight, which a lapsed lease must not
        hand it twice."""
        async def work() -> list[DirtyAccountClaim]:
            claims: list[DirtyAccountClaim] = []
            now, seen = self.clock(), set(skip)
            while len(claims) < limit:
                due = [found for found in await self.store.find_due(
                    LEASES, now, limit - len(claims) + len(seen)) if found.key not in seen]
                if not due:
                    break
                seen.update(found.key for found in due)
                services = await self.store.get_many("services", [f.key for f in due])
                for found in due:
                    account = services.get(found.key)
                    if account is None:  # nothing to sync: no longer due
                        await self.store.put(LEASES, found.key, {
                            **found.doc, "due_at": None, "dirty": False, "dirty_since": None},
                            found.version)
                        continue
                    settled_at = float(account.doc.get("changed_at") or 0) + self.sync_buffer_s
                    if account.doc.get("dirty") and settled_at > now:
                        await self.store.put(LEASES, found.key,
                                             {**found.doc, "due_at": settled_at}, found.version)
                        continue
                    leased = self._leased(found.doc, owner, lease_s)
                    await self.store.put(LEASES, found.key, leased, found.version)
                    claims.append(DirtyAccountClaim(found.key, leased["token"], account.doc))
            return claims

        return await run_unit(self.store, work, clock=self.clock)

    async def claim_account(self, account_id: str, owner: str, lease_s: float
                            ) -> DirtyAccountClaim:
        """Lease one account now (``sync_req``); ``Conflict`` while any lease holds it."""
        async def work() -> DirtyAccountClaim:
            found = await self.store.get(LEASES, account_id) or Versioned(
                account_id, 0, new_lease(account_id))
            if _held(found.doc, self.clock()):
                raise Conflict(f"a sync of {account_id} is in progress")
            services = await self.store.get("services", account_id)
            if services is None:
                services = Versioned(account_id, 0, new_services(account_id))
                await self.store.put("services", account_id, services.doc, 0)
            leased = self._leased(found.doc, owner, lease_s)
            await self.store.put(LEASES, account_id, leased, found.version)
            return DirtyAccountClaim(account_id, leased["token"], services.doc)

        return await run_unit(self.store, work, clock=self.clock)

    async def release_lapsed(self, claim: DirtyAccountClaim, next_attempt_at: float) -> None:
        """After ``LeaseLost``: unless another claim holds the account now, it stays dirty and
        falls due at ``next_attempt_at``, not at once: what was sent under the lost lease but
        not recorded would otherwise be sent again without pause."""
        async def work() -> None:
            found = await self.store.get(LEASES, claim.account_id)
            if found is None or (found.doc.get("token") != claim.token
                                 and _held(found.doc, self.clock())):
                return  # another claim's now
            await self.store.put(LEASES, claim.account_id, {
                **found.doc, "owner": None, "token": None, "until": 0, "dirty": True,
                "next_attempt_at": next_attempt_at, "due_at": next_attempt_at,
                "dirty_since": found.doc.get("dirty_since") or found.doc.get("claimed_at")},
                found.version)

        await run_unit(self.store, work, clock=self.clock)

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
            lease = await self.store.get(LEASES, account_id)
            assert lease is not None  # a delivery is written under the account's lease
            if _held(lease.doc, self.clock()):
                raise Conflict(f"a sync of {account_id} is in progress: try again")
            record = settle(found.doc)
            await self.store.put("deliveries", delivery_id, record, found.version)
            now = self.clock()
            await self.store.put(LEASES, account_id, {  # written: a claim meanwhile conflicts
                **lease.doc, "dirty": True, "next_attempt_at": None, "due_at": now,
                "dirty_since": lease.doc.get("dirty_since") or now}, lease.version)
            note(audited)
            return record

        return await run_unit(self.store, work, clock=self.clock)

    def _holds(self, claim: DirtyAccountClaim, found: Versioned | None) -> bool:
        return (found is not None and found.doc.get("token") == claim.token
                and _held(found.doc, self.clock()))

    async def renew(self, claim: DirtyAccountClaim, lease_s: float) -> bool:
        """Extend the lease of a sync in progress; False once it is lost."""
        async def work() -> bool:
            found = await self.store.get(LEASES, claim.account_id)
            if found is None or not self._holds(claim, found):
                return False
            until = self.clock() + lease_s
            await self.store.put(LEASES, claim.account_id,
                                 {**found.doc, "until": until, "due_at": until}, found.version)
            return True

        return await run_unit(self.store, work, clock=self.clock)

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

    def _released(self, claim: DirtyAccountClaim, services: Doc, lease: Doc,
                  release: _Release) -> tuple[Doc, Doc]:
        """The services and lease documents once the claim's sync ends."""
        services = {**services, **(release.updates or {})}
        lease = {**lease, "owner": None, "token": None, "until": 0,
                 "next_attempt_at": release.next_attempt_at}
        unchanged = services.get("change_count") == claim.services.get("change_count")
        if release.synced and unchanged:
            return ({**services, "dirty": False},
                    {**lease, "dirty": False, "dirty_since": None, "due_at": release.recheck_at})
        # what is left unbilled changed after the claim, unless nothing was billed
        since = (None if release.synced else lease.get("dirty_since")) or lease["claimed_at"]
        due = max(float(services.get("changed_at") or 0) + self.sync_buffer_s,
                  float(release.next_attempt_at or 0))
        return ({**services, "dirty": True},
                {**lease, "dirty": True, "dirty_since": since, "due_at": due})

    async def _write_all(self, writes: Sequence[_Fenced]) -> list[Exception | None]:
        """One unit for the writes of many claims: each is made only if its own lease holds
        (else it is refused with ``LeaseLost`` and leaves no trace); a write sees those made
        before it in the unit, as if each had had a unit of its own. Each writes its lease
        document, so that a claim of the same account elsewhere conflicts with it."""
        account_ids = [w.claim.account_id for w in writes]
        leases = await self.store.get_many(LEASES, account_ids)
        services = await self.store.get_many("services", [
            w.claim.account_id for w in writes if w.billing is not None or w.release is not None])
        deliveries = await self.store.get_many(
            "deliveries", [w.delivery[0] for w in writes if w.delivery is not None])
        refused: list[Exception | None] = []
        for write in writes:
            account_id = write.claim.account_id
            lease = leases.get(account_id)
            if lease is None or not self._holds(write.claim, lease):
                refused.append(LeaseLost(f"the lease on {account_id} was lost"))
                continue
            lease_doc = lease.doc
            if write.delivery is not None:
                key, record = write.delivery
                prior = deliveries.get(key)
                version = await self.store.put("deliveries", key, record,
                                               prior.version if prior else 0)
                deliveries[key] = Versioned(key, version, record)
            if write.billing is not None or write.release is not None:
                found = services.get(account_id) or Versioned(
                    account_id, 0, new_services(account_id))
                doc = found.doc if write.billing is None else {
                    **found.doc, "billing": write.billing}
                if write.release is not None:
                    doc, lease_doc = self._released(write.claim, doc, lease_doc, write.release)
                version = await self.store.put("services", account_id, doc, found.version)
                services[account_id] = Versioned(account_id, version, doc)
            version = await self.store.put(LEASES, account_id, lease_doc, lease.version)
            leases[account_id] = Versioned(account_id, version, lease_doc)
            if write.event is not None:
                emit(write.event)
            if write.audited is not None:
                note(write.audited)
            refused.append(None)
        return refused


async def adopt_legacy_schedules(store: DocumentStore) -> int:
    """At start: stores written before leases had documents of their own kept the lease, the
    due time and the back-off on the services document. Each such account gets its lease
    document (an old lease is dropped: replicas of that version must not run alongside) and
    its services document loses those fields. Returns how many accounts were moved."""
    async def work() -> int:
        legacy = await store.find_due("services", math.inf, 500)
        for found in legacy:
            doc = found.doc
            lease = await store.get(LEASES, found.key) or Versioned(
                found.key, 0, new_lease(found.key))
            dirty = bool(doc.get("dirty"))
            await store.put(LEASES, found.key, {
                **lease.doc, "due_at": doc.get("due_at"),
                "next_attempt_at": doc.get("next_attempt_at"), "dirty": dirty,
                "dirty_since": doc.get("changed_at") if dirty else None}, lease.version)
            await store.put("services", found.key,
                            {k: v for k, v in doc.items() if k not in _LEGACY_FIELDS},
                            found.version)
        return len(legacy)

    moved = 0
    while batch := await run_unit(store, work):
        moved += batch
    return moved
