"""Object plans through the ingest path and the store, without a broker: the documents'
``service.plans`` go into the ledger with their revisions, the account keeps the documents
that name plans, and rating takes them in the order of KAZOO's view (by type, then id).
Imports and reconcile rebuild them from the ledger."""

from __future__ import annotations

from svc.amqp.kazoo_notices import doc_change as notice
from svc.ingest.notices import document_change, read_notice
from svc.invoicing import current_state, snapshot_of, state_of
from svc.quantities import DEFAULT_CLASSIFIERS, document_contributions
from svc.rating import rate_quote
from svc.rating.quote import QuoteRequest

VENDOR, CUSTOMER = "1" * 32, "2" * 32


def change(doc: dict, account_id: str = CUSTOMER, rev: int = 1, event: str = "doc_edited"):
    _, body = notice(doc, account_id, rev, event, with_doc=event != "doc_deleted")
    return document_change(read_notice(body), DEFAULT_CLASSIFIERS)


def naming(doc_id: str, doc_type: str, plans: dict, **fields) -> dict:
    return {"_id": doc_id, "pvt_type": doc_type, "service": {"plans": plans}, **fields}


async def an_account_with_plans(repo, *plan_ids: str) -> None:
    await repo.apply_doc_changes([
        change({"_id": VENDOR, "pvt_type": "account", "pvt_tree": []}, VENDOR),
        change({"_id": CUSTOMER, "pvt_type": "account", "pvt_tree": [VENDOR]}, CUSTOMER)])
    for index, plan_id in enumerate(plan_ids):
        await repo.put_plan(VENDOR, plan_id, {"plan": {"devices": {
            f"item_{plan_id}": {"rate": index + 1}}}})


async def copies(repo) -> list[tuple[str, str]]:
    state = await current_state(repo, await repo.services(CUSTOMER))
    return [(p.vendor_id, p.id) for p in state.object_plans.copies]


async def test_documents_are_taken_by_type_then_id_whatever_order_they_came_in(repo):
    await an_account_with_plans(repo, "a", "b", "c")
    await repo.apply_doc_changes([
        change(naming("u1", "user", {"c": {}})),
        change(naming("d2", "device", {"b": {}, "a": {}})),
        change(naming("d1", "device", {"a": {"vendor_id": ""}})),
    ])
    assert await copies(repo) == [(VENDOR, "a"), (VENDOR, "b"), (VENDOR, "a"), (VENDOR, "c")]
    assert (await repo.services(CUSTOMER))["object_plan_ids"] == ["a", "b", "c"]


async def test_a_disabled_user_still_names_its_plans_and_an_older_revision_changes_nothing(
        repo):
    await an_account_with_plans(repo, "a", "b")
    await repo.apply_doc_changes([change(naming("u1", "user", {"a": {}}, enabled=False), rev=2)])
    services = await repo.services(CUSTOMER)
    assert services["quantities"]["account"] == {}  # a disabled user counts nothing
    assert await copies(repo) == [(VENDOR, "a")]  # the view does not look at `enabled`

    late = await repo.apply_doc_changes([change(naming("u1", "user", {"b": {}}), rev=1)])
    assert late[0].outcome == "ignored"
    assert await copies(repo) == [(VENDOR, "a")]


async def test_a_change_of_what_a_document_names_dirties_the_account(repo):
    await an_account_with_plans(repo, "a")
    await repo.apply_doc_changes([change(naming("u1", "user", {}))])
    before = await repo.services(CUSTOMER)
    await repo.apply_doc_changes([change(naming("u1", "user", {"a": {}}), rev=2)])
    after = await repo.services(CUSTOMER)
    assert after["quantities"] == before["quantities"]
    assert after["change_count"] == before["change_count"] + 1
    assert after["object_plans"] == {"u1": {"type": "user", "plans": {"a": {}}}}


async def test_reconcile_and_import_rebuild_the_named_plans_from_the_ledger(repo):
    await an_account_with_plans(repo, "a", "b")
    await repo.apply_doc_changes([change(naming("u1", "user", {"a": {}})),
                                  change(naming("u2", "user", {"b": {}}))])
    found = await repo.store.get("services", CUSTOMER)
    drifted = {**found.doc, "object_plans": {}, "object_plan_ids": []}
    await repo.store.put("services", CUSTOMER, drifted, found.version)
    await repo.reconcile(CUSTOMER)
    assert await copies(repo) == [(VENDOR, "a"), (VENDOR, "b")]

    # an import: u2 no longer names anything, u1 is gone from the source
    await repo.rebuild_ledger(CUSTOMER, [change(naming("u2", "user", {}), rev=2),
                                         change(naming("u1", "user", {}), rev=2,
                                                event="doc_deleted")])
    assert await copies(repo) == []
    assert (await repo.services(CUSTOMER))["object_plan_ids"] == []


async def test_a_stored_snapshot_rates_its_object_plans_as_the_live_state(repo):
    await an_account_with_plans(repo, "a")
    await repo.apply_doc_changes([change(naming(f"u{i}", "user", {"a": {"overrides": {
        "plan": {"devices": {"item_a": {"minimum": i}}}}}})) for i in range(3)])
    state = await current_state(repo, await repo.services(CUSTOMER))
    assert len(state.object_plans.copies) == 3
    snapshot = snapshot_of(state)
    assert len(snapshot["object_plans"]["docs"]) == 1  # one document for three copies
    again = state_of(snapshot, repo.store.identity)
    assert [i.as_json() for i in rate_quote(QuoteRequest(again))] == [
        i.as_json() for i in rate_quote(QuoteRequest(state))]


def test_unreadable_references_are_left_out_with_a_warning_and_the_document_still_counts():
    contribution = document_contributions(naming("u1", "user", {
        "a": {}, "b": "gold", "c": {"overrides": {"plan": {"devices": {"x": {"rate": -1}}}}}}))
    assert contribution.counts == {"users": {"user": 1}}
    assert contribution.object_plans == {"a": {}}
    assert [w.split(":")[0] for w in contribution.warnings] == [
        "$.service.plans.b", "$.service.plans.c.overrides.plan.devices.x.rate"]
