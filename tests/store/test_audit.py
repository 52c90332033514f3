"""The audit trail on both adapters: an entry is written exactly when the
change it records commits, with who made it and why, newest first; document-driven quantity
changes are summed per account and UTC day; the trail survives closing the store."""

from __future__ import annotations

import datetime

import pytest
from changes import account_doc, change, device

from svc.store import Repository, VersionConflict
from svc.store.audit import Actor, Change, acting, entries, note
from svc.store.sqlite import SQLiteStore
from svc.store.units import run_unit

PLAN = {"plan": {"devices": {"_all": {"rate": 2}}}}
OPERATOR = Actor("token", "ops", "a trial")
DAY_S = 86_400


def actions(found: list[dict]) -> list[str]:
    return [entry["action"] for entry in reversed(found)]  # oldest first


async def test_an_entry_exists_only_if_its_unit_commits(store):
    async def failing() -> None:
        note(Change("a1", "manual_set", {}, {"users": {"user": 1}}))
        raise RuntimeError("the change does not commit")

    with pytest.raises(RuntimeError):
        await run_unit(store, failing)
    assert await entries(store, "a1") == []

    tries = []

    async def conflicting_once() -> None:
        tries.append(1)
        note(Change("a1", "manual_set", {}, {"n": len(tries)}))
        if len(tries) == 1:
            raise VersionConflict("another writer was first")

    await run_unit(store, conflicting_once)
    [entry] = await entries(store, "a1")
    assert entry["after"] == {"n": 2}
    with pytest.raises(RuntimeError, match="outside a unit of work"):
        note(Change("a1", "manual_set", {}, {}))


async def test_each_change_is_an_entry_with_who_why_before_and_after(repo, clock):
    await repo.apply_doc_change(change("m", account_doc("m", []), 1))
    await repo.apply_doc_change(change("a", account_doc("a", ["m"]), 1))
    with acting(OPERATOR):
        await repo.put_plan("m", "p", PLAN)
        await repo.assign_plan("a", "p", {"devices": {"_all": {"rate": 1}}})
        await repo.set_overrides("a", {"users": {"user": {"rate": 3}}})
        await repo.set_manual("a", {"users": {"user": 2}})
        await repo.set_reseller("a", True)
        await repo.set_reseller("a", False)
        await repo.edit_services("m", lambda doc: {**doc, "bookkeeper": {"id": "b"}},
                                 audited=("bookkeeper_set", lambda doc: doc.get("bookkeeper")))
        await repo.remove_plan("a", "p")

    found = await entries(repo.store, "a")
    assert actions(found) == ["plan_assigned", "overrides_set", "manual_set",
                              "reseller_promoted", "reseller_demoted", "plan_removed"]
    assigned = found[-1]
    assert assigned["who"] == {"kind": "token", "name": "ops"}
    assert assigned["reason"] == "a trial"
    assert (assigned["before"], assigned["after"]) == ({}, {"p": {
        "vendor_id": "m", "overrides": {"devices": {"_all": {"rate": 1}}}}})
    # the repository's clock, in Gregorian seconds (KAZOO's) and ISO 8601
    assert (assigned["at"], assigned["at_iso"]) == (
        1_000_000 + 62_167_219_200, "1970-01-12T13:46:40.000000Z")
    assert found[0]["before"] == assigned["after"] and found[0]["after"] == {}
    assert {e["id"] for e in found} == {e["id"] for e in found if e["account_id"] == "a"}

    vendor = await entries(repo.store, "m")
    assert actions(vendor) == ["plan_edited", "bookkeeper_set"]
    assert (vendor[-1]["before"], vendor[-1]["after"]["version"]) == (None, 1)
    assert (vendor[0]["before"], vendor[0]["after"]) == ({}, {"id": "b"})


async def test_document_quantity_changes_are_summed_per_account_and_day(repo, clock):
    await repo.apply_doc_change(change("m", account_doc("m", []), 1))
    await repo.apply_doc_change(change("a", account_doc("a", ["m"]), 1))
    with acting(Actor("notice", "doc_change")):
        await repo.apply_doc_changes([change("a", device(f"d{n}"), 1) for n in range(3)])
        await repo.apply_doc_change(change("a", device("d0"), 2, deleted=True))
        clock.now += DAY_S
        await repo.apply_doc_change(change("a", device("d1"), 2, deleted=True))

    days = await entries(repo.store, "a")
    assert actions(days) == ["quantities_daily", "quantities_daily"]
    assert [entry["at_iso"][:10] for entry in days] == ["1970-01-13", "1970-01-12"]
    assert days[1]["after"] == {"devices": {"sip_device": {"added": 3, "removed": 1}}}
    assert days[0]["after"] == {"devices": {"sip_device": {"added": 0, "removed": 1}}}
    assert days[0]["who"] == {"kind": "notice", "name": "doc_change"}
    master = await entries(repo.store, "m")  # its cascade moved too
    assert master[1]["after"] == {"devices": {"sip_device": {"added": 3, "removed": 1}}}

    since = datetime.datetime.fromtimestamp(clock.now - 1, tz=datetime.UTC)
    assert await entries(repo.store, "a", since=since) == days[:1]
    assert await entries(repo.store, "a", until=since) == days[1:]


async def test_a_change_that_changes_nothing_writes_no_entry(repo):
    await repo.apply_doc_change(change("m", account_doc("m", []), 1))
    await repo.apply_doc_change(change("a", account_doc("a", ["m"]), 1))
    with acting(OPERATOR):
        await repo.put_plan("m", "p", PLAN)
        await repo.assign_plan("a", "p")
        await repo.assign_plan("a", "p")  # already assigned, with the same overrides
        await repo.set_overrides("a", {})  # the overrides it has
        await repo.set_manual("a", {"users": {"user": 1}})
        await repo.set_manual("a", {"users": {"user": 1}}, merge=True)
    assert actions(await entries(repo.store, "a")) == ["plan_assigned", "manual_set"]


async def test_the_trail_survives_a_restart(tmp_path):
    path = tmp_path / "audit.db"
    store = SQLiteStore(path)
    await store.open()
    repo = Repository(store)
    await repo.apply_doc_change(change("a", account_doc("a", []), 1))
    with acting(Actor("amqp", "ops-console/node1")):
        await repo.set_manual("a", {"users": {"user": 1}})
        await repo.set_manual("a", {"users": {"user": 2}})
    before = await entries(store, "a")
    await store.close()

    reopened = SQLiteStore(path)
    await reopened.open()
    try:
        after = await entries(reopened, "a")
    finally:
        await reopened.close()
    assert after == before and actions(after) == ["manual_set", "manual_set"]
    assert [entry["after"] for entry in after] == [{"users": {"user": 2}},
                                                   {"users": {"user": 1}}]
