"""Domain behaviour of the store, identical on every adapter."""

from __future__ import annotations

import asyncio

import pytest
from changes import account_doc, change, device, tree, user

from svc.rating import PlanInvalid
from svc.store import Forbidden, InvalidInput, MasterAccount, NotAssigned, NotFound, repository

SEED_PLAN = {"plan": {"devices": {"_all": {"rate": 2}}}}


async def own(repo, account_id):
    return (await repo.services(account_id))["quantities"]["account"]


async def cascade(repo, account_id):
    return (await repo.services(account_id))["quantities"]["cascade"]


async def test_a_device_is_counted_and_the_account_marked_dirty(repo):
    await tree(repo, ("m", [], False), ("a", ["m"], False))
    applied = await repo.apply_doc_change(change("a", device("d1", "softphone"), 1))
    assert applied.outcome == "applied"
    assert await own(repo, "a") == {"devices": {"softphone": 1}}
    assert await cascade(repo, "m") == {"devices": {"softphone": 1}}
    assert (await repo.services("a"))["dirty"] is True
    assert [(c.account_id, c.scope, c.current) for c in applied.changes] == [
        ("a", "account", 1), ("m", "cascade", 1)]


async def test_duplicate_and_out_of_order_notices_leave_exact_counts(repo):
    await tree(repo, ("m", [], False), ("a", ["m"], False))
    await repo.apply_doc_change(change("a", device("d1", "fax"), 2))
    assert (await repo.apply_doc_change(change("a", device("d1", "fax"), 2))).outcome == "ignored"
    assert (await repo.apply_doc_change(change("a", device("d1", "ata"), 1))).outcome == "ignored"
    assert await own(repo, "a") == {"devices": {"fax": 1}}
    assert await cascade(repo, "m") == {"devices": {"fax": 1}}


async def test_an_edit_moves_the_count_and_a_delete_leaves_a_tombstone(repo):
    await tree(repo, ("m", [], False), ("a", ["m"], False))
    await repo.apply_doc_change(change("a", device("d1", "fax"), 1))
    await repo.apply_doc_change(change("a", device("d1", "ata"), 2))
    assert await own(repo, "a") == {"devices": {"ata": 1}}
    await repo.apply_doc_change(change("a", device("d1"), None, deleted=True))
    late = await repo.apply_doc_change(change("a", device("d1", "fax"), 3))
    assert late.outcome == "ignored"
    assert await own(repo, "a") == {} and await cascade(repo, "m") == {}


async def test_cascade_reaches_every_ancestor(repo):
    await tree(repo, ("m", [], False), ("r", ["m"], True), ("s", ["m", "r"], False),
               ("c", ["m", "r", "s"], False))
    await repo.apply_doc_change(change("c", device("d1"), 1))
    for ancestor in ("m", "r", "s"):
        assert await cascade(repo, ancestor) == {"devices": {"sip_device": 1}}
    assert await cascade(repo, "c") == {}


async def test_a_pending_account_is_attached_when_its_account_document_arrives(repo):
    await tree(repo, ("m", [], False))
    await repo.apply_doc_change(change("a", device("d1"), 1))
    assert (await repo.account("a"))["pending"] is True
    assert await cascade(repo, "m") == {}
    await tree(repo, ("a", ["m"], False))
    assert await cascade(repo, "m") == {"devices": {"sip_device": 1}}
    assert (await repo.account("a"))["reseller_id"] == "m"


async def test_moving_an_account_moves_its_totals_between_chains(repo):
    await tree(repo, ("m", [], False), ("x", ["m"], False), ("y", ["m"], False),
               ("a", ["m", "x"], False))
    await repo.apply_doc_change(change("a", device("d1"), 1))
    await repo.apply_doc_change(change("a", account_doc("a", ["m", "y"]), 2))
    assert await cascade(repo, "x") == {}
    assert await cascade(repo, "y") == {"devices": {"sip_device": 1}}
    assert await cascade(repo, "m") == {"devices": {"sip_device": 1}}


async def test_deleting_an_account_removes_its_totals_from_its_ancestors(repo):
    await tree(repo, ("m", [], False), ("a", ["m"], False))
    await repo.apply_doc_change(change("a", device("d1"), 1))
    await repo.apply_doc_change(change("a", account_doc("a", ["m"]), None, deleted=True))
    assert await cascade(repo, "m") == {}
    with pytest.raises(NotFound):
        await repo.existing_account("a")


async def test_user_apps_follow_the_account_user_counts(repo):
    await tree(repo, ("m", [], False), ("a", ["m"], False))
    store_doc = {"_id": "apps_store", "apps": {"app1": {"name": "voip", "allowed_users": "all"}}}
    await repo.apply_doc_change(change("a", store_doc, 1))
    await repo.apply_doc_change(change("a", user("u1"), 1))
    await repo.apply_doc_change(change("a", user("u2", "admin"), 1))
    assert (await own(repo, "a"))["user_apps"] == {"voip": 2}
    await repo.apply_doc_change(change("a", user("u1"), None, deleted=True))
    assert (await own(repo, "a"))["user_apps"] == {"voip": 1}
    assert (await cascade(repo, "m"))["user_apps"] == {"voip": 1}


async def test_promote_and_demote_re_point_descendants(repo):
    await tree(repo, ("m", [], False), ("r", ["m"], False), ("a", ["m", "r"], False),
               ("b", ["m", "r", "a"], False))
    assert (await repo.account("b"))["reseller_id"] == "m"
    await repo.set_reseller("r", True)
    assert [(await repo.account(x))["reseller_id"] for x in ("a", "b")] == ["r", "r"]
    await repo.set_reseller("a", True)
    assert (await repo.account("b"))["reseller_id"] == "a"
    await repo.set_reseller("r", False)
    assert [(await repo.account(x))["reseller_id"] for x in ("a", "b")] == ["m", "a"]
    with pytest.raises(MasterAccount):
        await repo.set_reseller("m", True)


async def test_an_ordinary_account_edit_does_not_undo_a_promote(repo):
    await tree(repo, ("m", [], False), ("r", ["m"], False))
    await repo.set_reseller("r", True)
    await repo.apply_doc_change(change("r", {**account_doc("r", ["m"]), "name": "new"}, 2))
    assert (await repo.account("r"))["is_reseller"] is True


async def test_plans_are_assigned_only_from_the_reseller(repo):
    await tree(repo, ("m", [], False), ("r", ["m"], True), ("a", ["m", "r"], False))
    await repo.put_plan("r", "gold", SEED_PLAN)
    await repo.put_plan("m", "silver", SEED_PLAN)
    assert [p.doc["id"] for p in await repo.available_plans("a")] == ["gold"]
    services = await repo.assign_plan("a", "gold", {"plan": {"devices": {"_all": {"rate": 1}}}})
    assert services["plans"] == {"gold": {"vendor_id": "r", "overrides": {
        "plan": {"devices": {"_all": {"rate": 1}}}}}}
    with pytest.raises(Forbidden):
        await repo.assign_plan("a", "silver")
    with pytest.raises(NotAssigned):
        await repo.remove_plan("a", "silver")
    assert (await repo.remove_plan("a", "gold"))["plans"] == {}


async def test_editing_a_plan_dirties_the_accounts_it_is_assigned_to(repo, store, clock):
    await tree(repo, ("m", [], False), ("a", ["m"], False))
    await repo.put_plan("m", "gold", SEED_PLAN)
    await repo.assign_plan("a", "gold")
    found = await store.get("services", "a")
    await store.put("services", "a", {**found.doc, "dirty": False}, found.version)
    clock.now += 10
    await repo.put_plan("m", "gold", {"plan": {"devices": {"_all": {"rate": 3}}}})
    services = await repo.services("a")
    assert services["dirty"] is True and services["changed_at"] == clock.now


async def test_a_new_account_gets_its_resellers_default_plan(repo):
    await tree(repo, ("m", [], False), ("r", ["m"], True))
    await repo.put_plan("r", "starter", SEED_PLAN)
    await repo.set_default_plan("r", "starter")
    await tree(repo, ("a", ["m", "r"], False))
    assert (await repo.services("a"))["plans"] == {"starter": {"vendor_id": "r", "overrides": {}}}


async def test_reconcile_repairs_drift_and_reports_it(repo, store):
    await tree(repo, ("m", [], False), ("a", ["m"], False))
    for n in range(3):
        await repo.apply_doc_change(change("a", device(f"d{n}"), 1))
    for account_id in ("a", "m"):  # corrupt both counts behind the repository's back
        found = await store.get("services", account_id)
        doc = found.doc
        doc["quantities"] = {**doc["quantities"], "raw": {}, "account": {"devices": {"x": 9}},
                             "cascade": {}}
        await store.put("services", account_id, doc, found.version)
    changes = await repo.reconcile_all()
    assert await own(repo, "a") == {"devices": {"sip_device": 3}}
    assert await cascade(repo, "m") == {"devices": {"sip_device": 3}}
    assert {(c.account_id, c.scope, c.category, c.item, c.previous, c.current)
            for c in changes} >= {("a", "account", "devices", "sip_device", 0, 3),
                                  ("m", "cascade", "devices", "sip_device", 0, 3)}
    assert await repo.reconcile("a") == []


async def test_reconciling_one_account_repairs_its_ancestors_cascades(repo, store):
    await tree(repo, ("m", [], False), ("r", ["m"], True), ("a", ["m", "r"], False))
    await repo.apply_doc_change(change("a", device("d1"), 1))
    drifted = {"devices": {"x": 9}}  # its own counts drifted, and the cascades summed them
    for account_id, scope in (("a", "account"), ("r", "cascade"), ("m", "cascade")):
        found = await store.get("services", account_id)
        doc = found.doc
        doc["quantities"] = {**doc["quantities"], scope: drifted}
        await store.put("services", account_id, doc, found.version)
    changes = await repo.reconcile("a")
    assert await own(repo, "a") == {"devices": {"sip_device": 1}}
    for ancestor in ("r", "m"):
        assert await cascade(repo, ancestor) == {"devices": {"sip_device": 1}}
    assert {(c.account_id, c.scope) for c in changes} == {("a", "account"), ("r", "cascade"),
                                                          ("m", "cascade")}


async def test_fifty_concurrent_writers_lose_no_manual_unit(repo):
    await tree(repo, ("m", [], False), ("a", ["m"], False))

    async def add_one() -> None:
        def edit(doc):
            manual = doc["quantities"]["manual"].setdefault("devices", {})
            manual["sip_device"] = manual.get("sip_device", 0) + 1
            return doc

        await repo.edit_services("a", edit)

    await asyncio.gather(*(add_one() for _ in range(50)))
    assert (await repo.services("a"))["quantities"]["manual"] == {"devices": {"sip_device": 50}}


@pytest.mark.parametrize("manual", [
    {"devices": {"sip_device": -1}}, {"devices": {"sip_device": 2.5}},
    {"devices": {"sip_device": True}}, {"devices": 3}, [1],
])
async def test_bad_manual_quantities_are_refused_and_change_nothing(repo, store, manual):
    await tree(repo, ("m", [], False), ("a", ["m"], False))
    before = await store.get("services", "a")
    with pytest.raises(InvalidInput) as error:
        await repo.set_manual("a", manual)
    assert error.value.path.startswith("$.Quantities")
    assert await store.get("services", "a") == before


async def test_unknown_accounts_and_invalid_plans_change_nothing(repo, store):
    with pytest.raises(NotFound):
        await repo.set_manual("ghost", {})
    with pytest.raises(PlanInvalid):
        await repo.put_plan("m", "bad", {"plan": {"devices": {"_all": {"rates": {"x": 1}}}}})
    assert await store.get("plans", "m/bad") is None
    assert await store.get("services", "ghost") is None


async def test_malformed_doc_changes_and_unknown_plans_are_refused(repo, store):
    from svc.store import DocChange, PlanNotFound

    await tree(repo, ("m", [], False), ("a", ["m"], False))
    with pytest.raises(InvalidInput) as error:
        await repo.apply_doc_change(DocChange("a", "d1", "device", 1, False,
                                              {"devices": {"sip_device": -1}}))
    assert error.value.path == "$.counts.devices.sip_device"
    assert await store.get("ledger", "a/d1") is None
    with pytest.raises(PlanNotFound):
        await repo.get_plan("m", "nope")
    with pytest.raises(Forbidden):
        await repo.assign_plan("a", "nope")


async def test_an_import_goes_in_units_that_each_leave_the_counts_exact(repo, store,
                                                                         monkeypatch):
    """SPEC §18: a ledger rebuild (``svc import``) is chunked, so no transaction grows with
    the account; each unit moves the counts with the ledger, so a sync between two of them
    bills nothing half-imported, and the revision rule still holds."""
    monkeypatch.setattr(repository, "LEDGER_CHUNK", 4)
    await tree(repo, ("m", [], False), ("a", ["m"], False))
    await repo.apply_doc_change(change("a", device("d0", "fax"), 5))  # newer than the import's
    seen = []
    unit = repo._unit

    async def watched(work):
        result = await unit(work)
        keys = await store.find_keys("ledger", "account_id", "a")
        ledger = {}
        for entry in (await store.get_many("ledger", keys)).values():
            if not entry.doc["deleted"]:
                for item, count in entry.doc["counts"].get("devices", {}).items():
                    ledger[item] = ledger.get(item, 0) + count
        seen.append(((await own(repo, "a")).get("devices", {}), ledger,
                     (await cascade(repo, "m")).get("devices", {})))
        return result

    monkeypatch.setattr(repo, "_unit", watched)
    await repo.rebuild_ledger("a", [change("a", device(f"d{n}", "softphone"), 1)
                                    for n in range(10)])

    assert len(seen) == 4  # 10 documents in units of 4, then the recount
    assert all(counted == ledger == cascaded for counted, ledger, cascaded in seen), seen
    assert seen[-1][0] == {"fax": 1, "softphone": 9}


async def test_re_pointing_goes_in_units_and_resumes_what_a_stop_left(repo, store,
                                                                     monkeypatch):
    """SPEC §18: promoting an account re-points its descendants in units of their own
    (none grows with the reseller); a process that stopped half-way leaves a mark, and the
    re-pointing resumes from it (at start)."""
    monkeypatch.setattr(repository, "TOUCH_CHUNK", 2)
    await tree(repo, ("m", [], False), ("r", ["m"], False),
               *[(f"c{n}", ["m", "r"], False) for n in range(5)])
    units = 0
    unit = repo._unit

    async def counted(work):
        nonlocal units
        units += 1
        return await unit(work)

    monkeypatch.setattr(repo, "_unit", counted)
    stop_after = repo.repoint_pending
    monkeypatch.setattr(repo, "repoint_pending", lambda: asyncio.sleep(0))  # "stopped"
    await repo.set_reseller("r", True)
    assert units == 1
    assert {(await repo.account(f"c{n}"))["reseller_id"] for n in range(5)} == {"m"}

    await stop_after()  # as Service.start does
    assert units == 1 + 3 + 1  # five descendants in units of two, then the mark goes
    assert {(await repo.account(f"c{n}"))["reseller_id"] for n in range(5)} == {"r"}
    assert (await store.get("meta", "repointing")).doc["accounts"] == []
