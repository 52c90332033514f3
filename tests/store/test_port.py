"""The port itself: compare-and-set, indexes, due documents, transactions."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from svc.store import VersionConflict
from svc.store.readset import recording_reads


async def test_put_is_compare_and_set(store):
    assert await store.put("plans", "r/p", {"vendor_id": "r", "n": 1}, 0) == 1
    with pytest.raises(VersionConflict):
        await store.put("plans", "r/p", {"vendor_id": "r", "n": 2}, 0)
    assert await store.put("plans", "r/p", {"vendor_id": "r", "n": 2}, 1) == 2
    with pytest.raises(VersionConflict):
        await store.put("plans", "r/p", {"vendor_id": "r", "n": 3}, 1)
    found = await store.get("plans", "r/p")
    assert (found.version, found.doc["n"]) == (2, 2)


async def test_money_round_trips_exactly(store):
    await store.put("plans", "r/p", {"doc": {"rate": Decimal("24.95")}}, 0)
    assert (await store.get("plans", "r/p")).doc["doc"]["rate"] == Decimal("24.95")


async def test_find_keys_by_value_and_list_membership(store):
    await store.put("accounts", "c", {"tree": ["a", "b"]}, 0)
    await store.put("accounts", "d", {"tree": ["a"]}, 0)
    assert await store.find_keys("accounts", "tree", "a") == ["c", "d"]
    assert await store.find_keys("accounts", "tree", "b") == ["c"]
    await store.put("accounts", "c", {"tree": ["x"]}, 1)
    assert await store.find_keys("accounts", "tree", "a") == ["d"]


async def test_find_due_returns_earliest_first_up_to_a_time(store):
    for key, due in [("a", 30.0), ("b", 10.0), ("c", None), ("d", 20.0)]:
        await store.put("services", key, {"due_at": due}, 0)
    assert [v.key for v in await store.find_due("services", 25.0, 10)] == ["b", "d"]
    assert [v.key for v in await store.find_due("services", 99.0, 2)] == ["b", "d"]


async def test_dirty_stats_count_accounts_waiting_and_the_longest_wait(store):
    assert await store.dirty_stats() == (0, None)
    for key, dirty, since, due in [("a", True, 50.0, 50.0), ("b", True, 20.0, 90.0),
                                   ("c", False, None, 99.0), ("d", False, None, None)]:
        await store.put("leases", key, {"dirty": dirty, "due_at": due, "dirty_since": (
            None if since is None else Decimal(str(since)))}, 0)
    await store.put("services", "e", {"dirty": True, "dirty_since": 0.0, "due_at": 1.0}, 0)
    assert await store.dirty_stats() == (2, 20.0)
    await store.put("leases", "b", {"dirty": False, "dirty_since": None, "due_at": None}, 1)
    assert await store.dirty_stats() == (1, 50.0)


async def test_versions_of_documents_without_reading_them(store):
    await store.put("plans", "r/p", {"vendor_id": "r"}, 0)
    await store.put("plans", "r/p", {"vendor_id": "r"}, 1)
    await store.put("services", "r/p", {}, 0)  # same key, other collection
    refs = [("plans", "r/p"), ("services", "r/p"), ("plans", "gone")]
    assert await store.versions(refs) == {("plans", "r/p"): 2, ("services", "r/p"): 1}
    assert await store.versions([]) == {}
    many = [("ledger", f"k{n}") for n in range(600)]  # beyond one statement's variables
    await store.put_many("ledger", [(key, {}) for _, key in many])
    assert await store.versions(many) == dict.fromkeys(many, 1)


async def test_the_commit_marker_moves_with_every_commit_or_is_none(store):
    """None: the store cannot tell (memoized answers then check versions every time)."""
    markers = [await store.commit_marker()]
    if markers[0] is None:
        return
    assert await store.commit_marker() == markers[0]  # nothing committed, nothing moves
    await store.put("plans", "r/p", {"vendor_id": "r"}, 0)
    markers.append(await store.commit_marker())
    await store.delete("plans", "r/p", 1)
    markers.append(await store.commit_marker())
    async with store.transaction():
        await store.put("plans", "r/q", {"vendor_id": "r"}, 0)
        assert await store.commit_marker() is None  # its own writes are not committed yet
    markers.append(await store.commit_marker())
    with pytest.raises(VersionConflict):
        async with store.transaction():
            await store.put("plans", "r/x", {}, 0)
            raise VersionConflict("rolled back")
    markers.append(await store.commit_marker())
    assert len(set(markers[:4])) == 4 and markers[4] == markers[3]


async def test_reads_by_key_are_recorded_with_their_versions(store):
    await store.put("plans", "r/p", {"vendor_id": "r"}, 0)
    with recording_reads() as reads:
        await store.get("plans", "r/p")
        await store.get("plans", "r/none")
        await store.get_many("accounts", ["a", "b"])
    assert reads.complete
    assert reads.versions == {("plans", "r/p"): 1, ("plans", "r/none"): 0,
                              ("accounts", "a"): 0, ("accounts", "b"): 0}
    with recording_reads() as reads:
        await store.find_keys("plans", "vendor_id", "r")
    assert not reads.complete  # an index read cannot be re-checked by versions


async def test_a_failed_transaction_writes_nothing(store):
    with pytest.raises(VersionConflict):
        async with store.transaction():
            await store.put("plans", "r/a", {"vendor_id": "r"}, 0)
            await store.put("plans", "r/a", {"vendor_id": "r"}, 0)
    assert await store.get("plans", "r/a") is None
    assert await store.find_keys("plans", "vendor_id", "r") == []


async def test_a_read_outside_a_unit_sees_the_last_commit_without_waiting(store):
    await store.put("plans", "r/p", {"n": 1}, 0)
    written, release = asyncio.Event(), asyncio.Event()

    async def unit() -> None:  # a long unit, as a sync batch is
        async with store.transaction():
            await store.put("plans", "r/p", {"n": 2}, 1)
            written.set()
            await release.wait()

    task = asyncio.create_task(unit())
    try:
        await written.wait()
        async with asyncio.timeout(5):  # waiting for the unit would wait for ever here
            found = await store.get("plans", "r/p")
            assert await store.versions([("plans", "r/p")]) == {("plans", "r/p"): 1}
        assert (found.version, found.doc["n"]) == (1, 1)
    finally:
        release.set()
        await task
    found = await store.get("plans", "r/p")
    assert (found.version, found.doc["n"]) == (2, 2)


async def test_scan_and_bulk_load(store):
    await store.put_many("ledger", [(f"a/{n:04}", {"account_id": "a"}) for n in range(2500)])
    keys = [v.key async for v in store.scan("ledger")]
    assert len(keys) == 2500 and keys == sorted(keys)
    assert len(await store.find_keys("ledger", "account_id", "a")) == 2500
    assert len(await store.get_many("ledger", keys[:700] + ["nope"])) == 700
