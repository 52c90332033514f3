"""The port itself: compare-and-set, indexes, due documents, transactions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from svc.store import VersionConflict


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


async def test_a_failed_transaction_writes_nothing(store):
    with pytest.raises(VersionConflict):
        async with store.transaction():
            await store.put("plans", "r/a", {"vendor_id": "r"}, 0)
            await store.put("plans", "r/a", {"vendor_id": "r"}, 0)
    assert await store.get("plans", "r/a") is None
    assert await store.find_keys("plans", "vendor_id", "r") == []


async def test_scan_and_bulk_load(store):
    await store.put_many("ledger", [(f"a/{n:04}", {"account_id": "a"}) for n in range(2500)])
    keys = [v.key async for v in store.scan("ledger")]
    assert len(keys) == 2500 and keys == sorted(keys)
    assert len(await store.find_keys("ledger", "account_id", "a")) == 2500
    assert len(await store.get_many("ledger", keys[:700] + ["nope"])) == 700
