"""Sync leases and delivery records, on both adapters: one claim at a time per
account, fenced writes, renewal, a release that cleans only an unchanged account, and the
writes of many claims group-committed, each still fenced by its own token."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from changes import change, device, tree

from svc.models.events import StatusChange
from svc.store import Conflict
from svc.store.audit import Actor, Change, acting, entries
from svc.store.leases import LEASES, LeaseLost, SyncLeases, adopt_legacy_schedules


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


def counted_units(store, monkeypatch) -> list[None]:
    """One item per transaction the store begins from now on."""
    begun: list[None] = []
    transaction = store.transaction

    @contextlib.asynccontextmanager
    async def counted():
        begun.append(None)
        async with transaction():
            yield

    monkeypatch.setattr(store, "transaction", counted)
    return begun


async def delivery_entries(store, account_id: str) -> list[dict]:
    return [e for e in await entries(store, account_id) if e["action"] == "delivery"]


async def test_writes_asked_for_together_share_one_unit_each_fenced_by_its_own_token(
        repo, leases, store, monkeypatch):
    await tree(repo, ("m", [], False), ("a", ["m"], False), ("b", ["m"], False))
    await repo.apply_doc_change(change("a", device("d1"), 1))
    await repo.apply_doc_change(change("b", device("d2"), 1))
    first = {c.account_id: c for c in await leases.claim_due("replica-1", 10, lease_s=60)}
    assert await leases.release(first["a"], synced=False)
    fresh = await leases.claim_account("a", "replica-2", lease_s=60)
    units = counted_units(store, monkeypatch)
    answers = await asyncio.gather(
        leases.release(first["a"], synced=True, event=StatusChange(
            account_id="a", previous_status="good_standing", status="delinquent"),
            audited=Change("a", "status_changed", None, {"status": "delinquent"})),
        leases.record_delivery(fresh, "bk", 1, {"state": "sending"},
                               audited=Change("a", "delivery", None, {"state": "sending"})),
        leases.release(first["b"], synced=True, event=StatusChange(
            account_id="b", previous_status="good_standing", status="delinquent")),
        leases.record_delivery(first["a"], "bk", 2, {"state": "sending"}),
        return_exceptions=True)
    assert len(units) == 1
    assert answers[:3] == [False, None, True] and isinstance(answers[3], LeaseLost)
    # the stale claim's writes left no trace: no record, no event, no entry, a's lease intact
    assert await leases.delivery(fresh, "bk", 2) is None
    assert (await leases.delivery(fresh, "bk", 1))["state"] == "sending"
    events = [(e.doc["name"], e.doc["account_id"]) async for e in store.scan("outbox")]
    assert [e for e in events if e[0] == "status_change"] == [("status_change", "b")]
    assert [e["action"] for e in await entries(store, "a")
            if e["action"] != "quantities_daily"] == ["delivery"]
    assert (await store.get(LEASES, "a")).doc["token"] == fresh.token
    assert (await repo.services("b"))["dirty"] is False


async def test_writes_of_different_callers_keep_each_its_own_in_the_audit_trail(
        repo, leases, store):
    await tree(repo, ("m", [], False), ("a", ["m"], False), ("b", ["m"], False))
    await repo.apply_doc_change(change("a", device("d1"), 1))
    await repo.apply_doc_change(change("b", device("d2"), 1))
    claims = {c.account_id: c for c in await leases.claim_due("replica-1", 10, lease_s=60)}

    async def record(actor: Actor, account_id: str) -> None:
        with acting(actor):
            await leases.record_delivery(claims[account_id], "bk", 1, {"state": "sending"},
                                         audited=Change(account_id, "delivery", None, {}))

    await asyncio.gather(record(Actor("sync", "replica-1"), "a"),
                         record(Actor("token", "ops", "a retry"), "b"))
    [by_sync] = await delivery_entries(store, "a")
    [by_token] = await delivery_entries(store, "b")
    assert (by_sync["who"], by_sync["reason"]) == ({"kind": "sync", "name": "replica-1"}, None)
    assert (by_token["who"], by_token["reason"]) == ({"kind": "token", "name": "ops"},
                                                     "a retry")


async def test_a_claim_does_not_lose_to_a_change_of_the_account(repo, leases, store,
                                                                 monkeypatch):
    """Under steady traffic an account changes between the moment a claim finds it due and
    the moment it is leased: the claim must still lease it, with the change."""
    await tree(repo, ("m", [], False), ("a", ["m"], False))
    await repo.apply_doc_change(change("a", device("d1"), 1))
    find_due = store.find_due
    changed = []

    async def a_change_meanwhile(collection, upto, limit):
        found = await find_due(collection, upto, limit)
        if not changed:
            changed.append(await repo.apply_doc_change(change("a", device("d2"), 1)))
        return found

    monkeypatch.setattr(store, "find_due", a_change_meanwhile)
    claims = {c.account_id: c for c in await leases.claim_due("me", 10, lease_s=60)}
    assert set(claims) == {"a", "m"}
    assert claims["a"].services["quantities"]["account"] == {"devices": {"sip_device": 2}}
    assert await leases.release(claims["a"], synced=True)
    assert (await repo.services("a"))["dirty"] is False


async def test_changes_to_a_dirty_account_leave_its_lease_document_alone(repo, leases, store):
    await tree(repo, ("m", [], False), ("a", ["m"], False))
    await repo.apply_doc_change(change("a", device("d1"), 1))
    scheduled = await store.get(LEASES, "a")
    assert scheduled.doc["dirty"] is True
    for n in range(2, 6):
        await repo.apply_doc_change(change("a", device(f"d{n}"), 1))
    assert (await store.get(LEASES, "a")).version == scheduled.version
    (claim,) = [c for c in await leases.claim_due("me", 10, lease_s=60) if c.account_id == "a"]
    await repo.apply_doc_change(change("a", device("d6"), 1))  # during the sync
    assert await leases.renew(claim, 60)
    await leases.record_delivery(claim, "bk", 1, {"state": "sending"})
    assert await leases.release(claim, synced=True)
    assert (await repo.services("a"))["dirty"] is True  # d6 is for the next sync


async def test_every_write_under_a_lease_writes_its_lease_document(repo, leases, store):
    """So that a claim of the same account made meanwhile elsewhere (which writes that
    document too) conflicts with the write, whatever the store's isolation."""
    await tree(repo, ("m", [], False))
    await repo.apply_doc_change(change("m", device("d1"), 1))
    (claim,) = await leases.claim_due("me", 10, lease_s=60)
    versions = [(await store.get(LEASES, "m")).version]
    await leases.record_delivery(claim, "bk", 1, {"state": "sending"})
    versions.append((await store.get(LEASES, "m")).version)
    assert await leases.renew(claim, 60)
    versions.append((await store.get(LEASES, "m")).version)
    assert await leases.release(claim, synced=True)
    versions.append((await store.get(LEASES, "m")).version)
    assert versions == sorted(set(versions))


async def test_an_account_falls_due_once_its_last_change_is_a_buffer_old(repo, store, clock):
    leases = SyncLeases(store, sync_buffer_s=5, clock=clock)
    repo.sync_buffer_s = 5
    await tree(repo, ("m", [], False))
    await repo.apply_doc_change(change("m", device("d1"), 1))  # the tree's change, then d1
    start = clock.now
    clock.now = start + 3
    await repo.apply_doc_change(change("m", device("d2"), 1))
    clock.now = start + 6  # 6 s after the first change, 3 s after the last
    assert await leases.claim_due("me", 10, lease_s=60) == []
    clock.now = start + 8
    assert [c.account_id for c in await leases.claim_due("me", 10, lease_s=60)] == ["m"]


async def test_dirty_stats_say_since_when_the_unbilled_changes_wait(repo, leases, store,
                                                                    clock):
    await tree(repo, ("m", [], False))
    await repo.apply_doc_change(change("m", device("d1"), 1))
    first = clock.now
    clock.now += 10
    await repo.apply_doc_change(change("m", device("d2"), 1))
    assert await store.dirty_stats() == (1, first)  # since the first change not billed
    clock.now += 10
    (claim,) = await leases.claim_due("me", 10, lease_s=60)
    claimed_at = clock.now
    clock.now += 1
    await repo.apply_doc_change(change("m", device("d3"), 1))  # during the sync
    assert await leases.release(claim, synced=True)
    assert await store.dirty_stats() == (1, claimed_at)  # what is left changed after the claim
    (claim,) = await leases.claim_due("me", 10, lease_s=60)
    assert await leases.release(claim, synced=True)
    assert await store.dirty_stats() == (0, None)


async def test_schedules_kept_on_services_documents_are_adopted(repo, leases, store, clock):
    """A store written before leases had documents of their own: the due time, the back-off
    and the lease were fields of the services document."""
    await tree(repo, ("m", [], False), ("a", ["m"], False), ("b", ["m"], False))
    for key, due, backoff in (("a", clock.now - 1, None), ("b", clock.now + 30, clock.now + 30)):
        found = await store.get("services", key)
        await store.put("services", key, {
            **found.doc, "dirty": True, "changed_at": clock.now - 5, "next_attempt_at": backoff,
            "due_at": due, "lease": {"owner": "old", "token": "t", "until": clock.now - 1}},
            found.version)
    assert [found.key async for found in store.scan(LEASES)] == []  # the tree changed no counts
    assert await adopt_legacy_schedules(store) == 2
    assert await adopt_legacy_schedules(store) == 0
    for key in ("a", "b"):
        services = await repo.services(key)
        assert not {"lease", "due_at", "next_attempt_at"} & services.keys()
    assert [c.account_id for c in await leases.claim_due("me", 10, lease_s=60)] == ["a"]
    clock.now += 31
    assert [c.account_id for c in await leases.claim_due("me", 10, lease_s=60)] == ["b"]
    assert await store.dirty_stats() == (2, clock.now - 36)
