"""Sync leases and delivery records, on both adapters (SPEC §14): one claim at a time per
account, fenced writes, renewal, and a release that cleans only an unchanged account."""

from __future__ import annotations

import pytest
from changes import change, device, tree

from svc.store import Conflict
from svc.store.leases import LeaseLost, SyncLeases


@pytest.fixture
def leases(store, clock) -> SyncLeases:
    return SyncLeases(store, clock=clock)


async def test_a_dirty_account_is_leased_to_one_claim_at_a_time(repo, leases, clock):
    await tree(repo, ("m", [], False), ("a", ["m"], False))
    await repo.apply_doc_change(change("a", device("d1"), 1))
    first = {c.account_id: c for c in await leases.claim_due("replica-1", 10, lease_s=60)}
    assert set(first) == {"a", "m"}
    assert await leases.claim_due("replica-2", 10, lease_s=60) == []
    with pytest.raises(Conflict):  # sync_req, from any replica, the claimant's own too
        await leases.claim_account("a", "replica-1", lease_s=60)
    clock.now += 61  # an expired lease is due again
    again = {c.account_id: c for c in await leases.claim_due("replica-2", 10, lease_s=60)}
    assert set(again) == {"a", "m"}
    # the first claim is fenced off: its release and its delivery records are refused
    assert await leases.release(first["a"], synced=True) is False
    with pytest.raises(LeaseLost):
        await leases.record_delivery(first["a"], "bk", 1, {"state": "sending"})
    await leases.record_delivery(again["a"], "bk", 1, {"state": "sending"})
    assert (await leases.delivery(again["a"], "bk", 1))["state"] == "sending"


async def test_an_expired_lease_refuses_its_own_writes(repo, leases, clock):
    await tree(repo, ("m", [], False))
    await repo.apply_doc_change(change("m", device("d1"), 1))
    (claim,) = await leases.claim_due("me", 10, lease_s=60)
    clock.now += 61
    with pytest.raises(LeaseLost):
        await leases.record_delivery(claim, "bk", 1, {"state": "sending"})
    assert await leases.renew(claim, 60) is False


async def test_renewal_keeps_the_lease_and_the_release_still_cleans(repo, leases, clock):
    await tree(repo, ("m", [], False))
    await repo.apply_doc_change(change("m", device("d1"), 1))
    (claim,) = await leases.claim_due("me", 10, lease_s=60)
    for _ in range(5):  # 5 × 40 s: far past the first lease
        clock.now += 40
        assert await leases.renew(claim, 60)
        assert await leases.claim_due("other", 10, lease_s=60) == []
    assert await leases.release(claim, synced=True)
    assert (await repo.services("m"))["dirty"] is False


async def test_release_cleans_only_an_account_unchanged_since_the_claim(repo, leases):
    await tree(repo, ("m", [], False), ("a", ["m"], False), ("b", ["m"], False))
    await repo.apply_doc_change(change("a", device("d1"), 1))
    await repo.apply_doc_change(change("b", device("d2"), 1))
    claimed = {c.account_id: c for c in await leases.claim_due("me", 10, lease_s=60)}
    await repo.apply_doc_change(change("b", device("d3"), 1))  # b changes during its sync
    for key in ("a", "b"):
        assert await leases.release(claimed[key], synced=True,
                                    updates={"status": "good_standing"})
    assert (await repo.services("a"))["dirty"] is False
    assert (await repo.services("b"))["dirty"] is True
    assert [c.account_id for c in await leases.claim_due("me", 10, lease_s=60)] == ["b"]


async def test_a_failed_sync_stays_dirty_until_its_next_attempt(repo, leases, clock):
    await tree(repo, ("m", [], False), ("a", ["m"], False))
    await repo.apply_doc_change(change("a", device("d1"), 1))
    claimed = {c.account_id: c for c in await leases.claim_due("me", 10, lease_s=60)}
    await leases.release(claimed["a"], synced=False, next_attempt_at=clock.now + 30)
    assert "a" not in [c.account_id for c in await leases.claim_due("me", 10, lease_s=60)]
    clock.now += 31
    assert [c.account_id for c in await leases.claim_due("me", 10, lease_s=60)] == ["a"]
