"""The sync loop inside ``svc serve`` and the forced sync of ``sync_req`` (SPEC §8, §12)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from ..bookkeepers.abc import BookkeeperAdapter
from ..rating import Bookkeeper
from ..store import Repository, Versioned
from .account import Publish, SyncOutcome, sync_account

log = logging.getLogger("svc.sync")


class SyncLoop:
    def __init__(self, repo: Repository, adapter_for: Callable[[Bookkeeper], BookkeeperAdapter],
                 publish: Publish, *, owner: str, batch: int, lease_s: float,
                 retry_base_s: float, retry_max_s: float, delinquent_recheck_s: float,
                 concurrency: int = 32, clock: Callable[[], float] = time.time) -> None:
        self.repo = repo
        self.adapter_for = adapter_for
        self.publish = publish
        self.owner = owner
        self.batch = batch
        self.lease_s = lease_s
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.delinquent_recheck_s = delinquent_recheck_s
        self.clock = clock
        # one slow bookkeeper must not hold up the accounts of the others
        self._slots = asyncio.Semaphore(concurrency)

    async def run(self, interval_s: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:  # noqa: BLE001 - the loop outlives any one failure
                log.exception("sync tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    async def tick(self) -> int:
        """Claim and sync batches until nothing is due; returns how many were synced."""
        done = 0
        while claimed := await self.repo.claim_due(self.owner, self.batch, self.lease_s):
            outcomes = await asyncio.gather(*(self._guarded(c) for c in claimed))
            await self._dirty_resellers([o for o in outcomes if o is not None and o.results])
            done += len(claimed)
        return done

    async def sync_now(self, account_id: str) -> SyncOutcome:
        claimed = await self.repo.claim_account(account_id, self.owner, self.lease_s)
        outcome = await self._sync(claimed)
        if outcome.results:
            await self._dirty_resellers([outcome])
        return outcome

    async def _guarded(self, claimed: Versioned) -> SyncOutcome | None:
        async with self._slots:
            try:
                return await self._sync(claimed)
            except Exception:  # noqa: BLE001 - stays dirty, retried after the back-off
                log.exception("sync failed", extra={"account_id": claimed.key})
                await self.repo.release(claimed.key, self.owner, claimed.version, synced=False,
                                        next_attempt_at=self.clock() + self.retry_base_s)
                return None

    async def _sync(self, claimed: Versioned) -> SyncOutcome:
        outcome = await sync_account(self.repo, self.adapter_for, claimed, self.publish,
                                     self.owner)
        now = self.clock()
        backoff = min(self.retry_base_s * 2 ** max(outcome.attempts - 1, 0), self.retry_max_s)
        await self.repo.release(
            claimed.key, self.owner, claimed.version, synced=outcome.synced,
            updates=outcome.updates,
            next_attempt_at=None if outcome.synced else now + backoff,
            recheck_at=now + self.delinquent_recheck_s if outcome.status == "delinquent"
            else None)
        if outcome.status != outcome.previous_status:
            await self.publish("status_change", outcome.account_id, {
                "Previous-Status": outcome.previous_status, "Status": outcome.status,
                "Reason": next((r["reason"] for r in outcome.results if r["reason"]), None)})
        return outcome

    async def _dirty_resellers(self, outcomes: list[SyncOutcome]) -> None:
        """One write per reseller per batch (SPEC §12 "Dirty")."""
        resellers: set[str] = set()
        for outcome in outcomes:
            account: dict[str, Any] | None = await self.repo.account(outcome.account_id)
            reseller = account.get("reseller_id") if account else None
            if reseller and reseller != outcome.account_id:
                resellers.add(reseller)
        for reseller in sorted(resellers):
            await self.repo.touch(reseller)
