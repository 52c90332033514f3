"""Leases under store stalls and lapses: a store error never stops lease renewal, a lost
lease is released with back-off, and an account is never in flight twice in one replica.
Real SQLite store, real sync loop; a bookkeeper slower than the lease."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from waiting import eventually

from svc.bookkeepers.abc import Answer, BookkeeperAdapter, InvoiceDelivery
from svc.store import AccountFields, DocChange, Repository
from svc.store.abc import StoreBusy
from svc.sync.loop import SyncLoop

MASTER, SLOW, BUSY = "m" * 32, "a" * 32, "b" * 32
LEASE_S = 0.3  # renewed every 0.1 s
CALL_S = 1.0  # each call outlasts the lease: only renewal keeps it


class SlowBooks(BookkeeperAdapter):
    """Charges each idempotency key once; notes the calls in progress per account."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.keys: dict[str, set[str]] = {}
        self.in_progress: Counter[str] = Counter()
        self.most_at_once: Counter[str] = Counter()

    async def deliver(self, delivery: InvoiceDelivery) -> Answer:
        account = delivery.account_id
        self.calls[account] += 1
        self.keys.setdefault(account, set()).add(delivery.idempotency_key)
        self.in_progress[account] += 1
        self.most_at_once[account] = max(self.most_at_once[account], self.in_progress[account])
        try:
            await asyncio.sleep(CALL_S if account == SLOW else 0)
        finally:
            self.in_progress[account] -= 1
        return Answer("good_standing")


async def accounts(repo: Repository) -> None:
    await repo.apply_doc_change(DocChange(MASTER, MASTER, "account", 1,
                                          account=AccountFields((), False)))
    await repo.put_plan(MASTER, "plan", {"plan": {"devices": {"_all": {"rate": 1}}}})
    for account in (SLOW, BUSY):
        await repo.apply_doc_change(DocChange(account, account, "account", 1,
                                              account=AccountFields((MASTER,), False)))
        await repo.assign_plan(account, "plan")
        await repo.apply_doc_change(DocChange(account, "d", "device", 1,
                                              counts={"devices": {"sip_device": 1}}))


def sync_loop(repo: Repository, books: SlowBooks) -> SyncLoop:
    return SyncLoop(repo, lambda _: books, owner="test", batch=10, lease_s=LEASE_S,
                    retry_base_s=0.05, retry_max_s=0.2, delinquent_recheck_s=3600,
                    concurrency=2)


def renewals_fail(loop: SyncLoop, monkeypatch, *, times: int = 0, for_s: float = 0) -> None:
    """The store refuses the first ``times`` renewals, and every one for ``for_s`` (an import
    holding SQLite's write lock past the busy timeout; a MongoDB election), then takes them
    again."""
    renew, until, refused = loop.leases.renew, time.monotonic() + for_s, []

    async def stalled(claim: Any, lease_s: float) -> bool:
        if len(refused) < times or time.monotonic() < until:
            refused.append(claim)
            raise StoreBusy("database is locked")
        return await renew(claim, lease_s)

    monkeypatch.setattr(loop.leases, "renew", stalled)


@contextlib.asynccontextmanager
async def running(loop: SyncLoop) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(0.05, stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def clean(repo: Repository, account: str) -> bool:
    return not (await repo.services(account))["dirty"]


async def test_one_failed_renewal_does_not_end_the_renewing(repo, monkeypatch):
    books = SlowBooks()
    await accounts(repo)
    await repo.set_overrides(BUSY, {})  # only the slow account is billed here
    loop = sync_loop(repo, books)
    await loop.sync_now(BUSY)
    renewals_fail(loop, monkeypatch, times=1)

    async with running(loop):
        await eventually(lambda: clean(repo, SLOW), timeout=8)

    assert books.calls[SLOW] == 1  # recorded under its lease: not sent again


async def test_an_account_is_never_in_flight_twice_when_its_lease_lapses(repo, monkeypatch):
    """The slow account's lease lapses mid-call (renewals refused for longer than the lease)
    while another account keeps changing, so the loop keeps claiming: the slow one must not be
    claimed and sent again while its first call is still in progress."""
    books = SlowBooks()
    await accounts(repo)
    loop = sync_loop(repo, books)
    renewals_fail(loop, monkeypatch, for_s=CALL_S * 1.5)

    async def churn() -> None:
        for rev in range(2, 1000):
            await repo.apply_doc_change(DocChange(BUSY, "d", "device", rev, counts={
                "devices": {"sip_device": 1 + rev % 2}}))
            await asyncio.sleep(0.02)

    churning = asyncio.create_task(churn())
    try:
        async with running(loop):
            await eventually(lambda: first_call_ended(books), timeout=8)
            churning.cancel()
            await eventually(lambda: clean(repo, SLOW), timeout=8)
    finally:
        churning.cancel()

    assert books.most_at_once[SLOW] == 1
    assert len(books.keys[SLOW]) == 1  # one content, one key, however often it was tried


async def first_call_ended(books: SlowBooks) -> bool:
    return books.calls[SLOW] >= 1 and books.in_progress[SLOW] == 0
