"""The sync loop inside ``svc serve`` and the forced sync of ``sync_req``.

A replica claims only as many accounts as it has free sync slots, so no lease runs out while
its account waits for a slot; every lease in flight is renewed at a third of its length, and a
store error stops one renewal, never the renewing; an account this replica is already syncing
is not claimed again, even once its lease lapsed (``sync_req`` answers ``conflict``). A sync
that fails or loses its lease is retried after a back-off that doubles with each failure in a
row, never at once: a sync longer than its lease would otherwise send the same invoice again
and again. An invoice that failed goes again after the same back-off, counted by its attempts,
while the account's other bookkeepers go on being billed. ``stop`` ends claiming at once;
what is still running is given ``grace_s``, then abandoned: its delivery records make the
later retry safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from ..bookkeepers.abc import BookkeeperAdapter
from ..models.events import StatusChange
from ..rating import Bookkeeper
from ..store import Conflict, Repository
from ..store.audit import Actor, Change, acting
from ..store.leases import DirtyAccountClaim, LeaseLost, SyncLeases
from .account import SyncOutcome, sync_account

log = logging.getLogger("svc.sync")
RELEASE_ON_ABANDON_S = 2.0


class SyncLoop:
    def __init__(self, repo: Repository, adapter_for: Callable[[Bookkeeper], BookkeeperAdapter],
                 *, owner: str, batch: int, lease_s: float,
                 retry_base_s: float, retry_max_s: float, delinquent_recheck_s: float,
                 concurrency: int = 32, clock: Callable[[], float] = time.time) -> None:
        self.repo = repo
        self.leases = SyncLeases(repo.store, sync_buffer_s=repo.sync_buffer_s, clock=clock)
        self.adapter_for = adapter_for
        self.owner = owner
        self.batch = batch
        self.lease_s = lease_s
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.delinquent_recheck_s = delinquent_recheck_s
        self.concurrency = concurrency  # one slow bookkeeper must not hold up the others
        self._claim_at_least = max(1, min(batch, concurrency) // 2)
        self.clock = clock
        self._in_flight: dict[str, DirtyAccountClaim] = {}
        self._failures: dict[str, int] = {}  # failed syncs in a row, for the back-off
        self._tasks: set[asyncio.Task[SyncOutcome | None]] = set()
        self._slot_freed = asyncio.Event()

    async def run(self, interval_s: float, stop: asyncio.Event) -> None:
        """A tick every ``interval_s``, counted from the start of the last one: an account
        that changes all the time is billed every interval, however long its tick took (a
        pause after each tick instead billed it every interval plus a tick, and ticks
        lengthen as the store grows)."""
        renewing = asyncio.create_task(self._renewing(stop))
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                next_tick_at = loop.time() + interval_s
                try:
                    await self.tick(stop)
                except Exception:  # noqa: BLE001 - the loop outlives any one failure
                    log.exception("sync tick failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, next_tick_at - loop.time()))
        finally:
            renewing.cancel()

    async def tick(self, stop: asyncio.Event | None = None) -> int:
        """Claim and sync until nothing is due, never more claims than free slots; returns
        how many were synced."""
        done: list[SyncOutcome] = []
        started = 0
        while stop is None or not stop.is_set():
            if len(done) >= self.batch:  # under steady churn a tick may never end
                finished, done[:] = list(done), []
                await self._dirty_resellers([o for o in finished if o.results])
            free = self.concurrency - len(self._tasks)
            if self._tasks and free < self._claim_at_least:
                # claims come in batches: one query per freed slot would cost more than the
                # syncs themselves with a fast bookkeeper
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            claims = await self.leases.claim_due(self.owner, min(self.batch, free),
                                                 self.lease_s, skip=set(self._in_flight))
            if not claims:
                break
            started += len(claims)
            for claim in claims:
                self._start(claim, done)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._dirty_resellers([o for o in done if o.results])
        return started

    def _start(self, claim: DirtyAccountClaim, done: list[SyncOutcome]) -> None:
        task = asyncio.create_task(self._claimed_by_the_loop(claim))
        self._tasks.add(task)

        def finished(task: asyncio.Task[SyncOutcome | None]) -> None:
            self._tasks.discard(task)
            self._slot_freed.set()
            if not task.cancelled() and task.exception() is None and task.result():
                done.append(task.result())  # type: ignore[arg-type]

        task.add_done_callback(finished)

    async def sync_now(self, account_id: str) -> SyncOutcome:
        if account_id in self._in_flight:
            raise Conflict(f"a sync of {account_id} is in progress on this replica")
        await self.repo.existing_account(account_id)
        claim = await self.leases.claim_account(account_id, self.owner, self.lease_s)
        outcome = await self._guarded(claim, asked=True)
        assert outcome is not None
        if outcome.results:
            await self._dirty_resellers([outcome])
        return outcome

    async def abandon(self, grace_s: float) -> None:
        """At stop: the syncs still running get ``grace_s``, then are cancelled."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("%d syncs abandoned at stop; their delivery records keep the retry "
                        "safe", len(pending))
            await asyncio.gather(*pending, return_exceptions=True)

    async def _renewing(self, stop: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            for account_id, claim in list(self._in_flight.items()):
                try:
                    if not await self.leases.renew(claim, self.lease_s):
                        log.warning("lease lost while syncing",
                                    extra={"account_id": account_id})
                except Exception:  # noqa: BLE001 - a busy or electing store: renew next round
                    log.warning("lease renewal failed, tried again in %.1f s",
                                self.lease_s / 3, exc_info=True,
                                extra={"account_id": account_id})

    async def _claimed_by_the_loop(self, claim: DirtyAccountClaim) -> SyncOutcome | None:
        with acting(Actor("sync", self.owner)):
            return await self._guarded(claim)

    def _backoff(self, account_id: str) -> float:
        """The delay before the next try of a sync that failed: doubles with each failure in
        a row."""
        self._failures[account_id] = self._failures.get(account_id, 0) + 1
        return self._retry_delay(self._failures[account_id])

    def _retry_delay(self, attempts: int) -> float:
        return min(self.retry_base_s * 2 ** max(attempts - 1, 0), self.retry_max_s)

    async def _guarded(self, claim: DirtyAccountClaim, *, asked: bool = False
                       ) -> SyncOutcome | None:
        """Sync under ``claim``; whatever fails, the lease ends with a back-off. ``asked``
        (``sync_req``, an operator's retry): failed invoices go again without waiting for
        their back-off, and a failure is handed to the caller once the lease is released."""
        account_id = claim.account_id
        self._in_flight[account_id] = claim
        try:
            outcome = await self._sync(claim, asked=asked)
            self._failures.pop(account_id, None)
            return outcome
        except LeaseLost:
            log.warning("sync stopped: its lease was lost", extra={"account_id": account_id})
            await self.leases.release_lapsed(claim, self.clock() + self._backoff(account_id))
            if asked:
                raise
            return None
        except asyncio.CancelledError:  # abandoned at stop: free the account if we can
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.leases.release(claim, synced=False),
                                       RELEASE_ON_ABANDON_S)
            raise
        except Exception:  # noqa: BLE001 - stays dirty, retried after the back-off
            log.exception("sync failed", extra={"account_id": account_id})
            await self.leases.release(
                claim, synced=False, next_attempt_at=self.clock() + self._backoff(account_id))
            if asked:
                raise
            return None
        finally:
            if self._in_flight.get(account_id) is claim:
                del self._in_flight[account_id]

    async def _sync(self, claim: DirtyAccountClaim, *, asked: bool = False) -> SyncOutcome:
        outcome = await sync_account(self.repo, self.leases, self.adapter_for, claim,
                                     self.owner, recheck_s=self.delinquent_recheck_s,
                                     now=self.clock(), retry_delay=self._retry_delay,
                                     retry_owed=asked)
        changed = outcome.status != outcome.previous_status
        status_changed = Change(outcome.account_id, "status_changed",
                                {"status": outcome.previous_status}, {"status": outcome.status})
        released = await self.leases.release(
            claim, synced=outcome.caught_up, updates=outcome.updates,
            recheck_at=outcome.due_again_at,
            event=StatusChange(
                account_id=outcome.account_id, previous_status=outcome.previous_status,
                status=outcome.status,
                reason=next((r["reason"] for r in outcome.results if r["reason"]), None),
            ) if changed else None, audited=status_changed if changed else None)
        if not released:
            raise LeaseLost(f"the lease on {claim.account_id} was lost before the release")
        return outcome

    async def _dirty_resellers(self, outcomes: list[SyncOutcome]) -> None:
        """One write per reseller per batch."""
        accounts = await self.repo.store.get_many("accounts", [o.account_id for o in outcomes])
        resellers = {reseller for account_id, found in accounts.items()
                     if (reseller := found.doc.get("reseller_id")) and reseller != account_id}
        for reseller in sorted(resellers):
            await self.repo.touch(reseller)
