"""Object plans from the documents svc ingests: a user or device carrying ``service.plans``
(as Monster UI VoIP writes it for a licensed-user role) adds one copy of each plan it names to
its account's rating, as KAZOO 4.3's view ``services/object_plans`` does. Through the running
service, the real broker and the embedded store: the notice moves the summary, the quote and
what a sync bills; editing the document or deleting it takes the plan away again."""

from __future__ import annotations

import uuid
from decimal import Decimal

from waiting import eventually

from svc.amqp.kazoo_notices import doc_change as notice
from svc.amqp.kazoo_notices import publish

BASE = {"_id": "base", "pvt_type": "service_plan",
        "plan": {"devices": {"sip_device": {"rate": 5}}}}
# a licensed-user role: Monster UI VoIP 4.3 lists the reseller's cumulative plans as roles
# (app.js:100-108, filter_merge.strategy=cumulative); one minimum user per licensed user
LICENCE = {"_id": "voip_pro", "pvt_type": "service_plan", "merge": {"strategy": "cumulative"},
           "plan": {"users": {"user": {"name": "Pro licence", "rate": 12, "minimum": 1}}}}


def new_id() -> str:
    return uuid.uuid4().hex


def account(account_id: str, tree: list[str]) -> dict:
    return {"_id": account_id, "pvt_type": "account", "pvt_tree": tree}


def user(user_id: str, account_id: str, plans: dict | None) -> dict:
    doc = {"_id": user_id, "pvt_type": "user", "pvt_account_id": account_id,
           "priv_level": "user"}
    if plans is not None:
        doc["service"] = {"plans": plans}
    return doc


async def invoice_items(client, account_id: str) -> dict[tuple[str, str], dict]:
    reply = await client.call("summary", {"Account-ID": account_id})
    assert reply["Status"] == "success", reply
    return {(i["category"], i["item"]): i
            for invoice in reply["Summary"]["invoices"] for i in invoice["items"]}


async def until_items(client, account_id: str, predicate) -> dict:
    async def reached():
        found = await invoice_items(client, account_id)
        return found if predicate(found) else None

    return await eventually(reached)


async def a_customer_with_the_base_plan(client, channel) -> tuple[str, str]:
    vendor, customer = new_id(), new_id()
    await publish(channel, *notice(account(vendor, []), vendor))
    await publish(channel, *notice(account(customer, [vendor]), customer))
    await publish(channel, *notice(BASE, vendor, 1))
    await publish(channel, *notice(LICENCE, vendor, 1))

    async def assigned():
        reply = await client.call("assign_plan", {"Account-ID": customer, "Plan-ID": "base"})
        stored = await client.call("plan_get", {"Account-ID": vendor, "Plan-ID": "voip_pro"})
        return reply["Status"] == "success" and stored["Status"] == "success"

    await eventually(assigned)  # once the accounts and both plans are stored
    return vendor, customer


async def test_a_user_naming_a_plan_adds_its_items_to_summary_quote_and_sync(service, client,
                                                                            channel):
    vendor, customer = await a_customer_with_the_base_plan(client, channel)
    assert ("users", "user") not in await invoice_items(client, customer)

    first, second = new_id(), new_id()
    # as Monster UI VoIP 4.3 writes a licensed-user role (submodules/users/users.js:3342):
    # `account_id`, not `vendor_id`, so the plan is the account's reseller's
    monster = {"voip_pro": {"account_id": vendor, "overrides": {}}}
    await publish(channel, *notice(user(first, customer, monster), customer, 1))
    await publish(channel, *notice(user(second, customer, {"voip_pro": {"vendor_id": vendor}}),
                                   customer, 1))
    items = await until_items(client, customer, lambda found: ("users", "user") in found
                              and found[("users", "user")]["quantity"] == 2)
    licence = items[("users", "user")]
    assert (licence["name"], licence["billable"], licence["total"]) == (
        "Pro licence", 2, Decimal(24))  # two copies: cumulative minimums 1 + 1

    quote = await client.call("quote", {"Account-ID": customer})
    [invoice] = quote["Quote"]["invoices"]
    assert {(i["category"], i["item"]): i["total"] for i in invoice["items"]}[
        ("users", "user")] == 24
    # a what-if without the assigned plan keeps what the documents name
    quote = await client.call("quote", {"Account-ID": customer, "Plans": []})
    [invoice] = quote["Quote"]["invoices"]
    proposed = {(i["category"], i["item"]): i for i in invoice["items"]}
    assert proposed[("users", "user")]["total"] == 24
    assert "changes" not in proposed[("users", "user")]
    assert proposed[("devices", "sip_device")]["changes"]["type"] == "removed"

    synced = await client.call("sync", {"Account-ID": customer})
    assert synced["Status"] == "success", synced
    [billed] = await service.repo.store.find_keys("book_ledger", "account_id", customer)
    book = (await service.repo.store.get("book_ledger", billed)).doc["invoice"]
    assert {(i["category"], i["item"]): i["total"] for i in book["items"]}[
        ("users", "user")] == 24
    # what was billed is what is there: nothing pending after the sync
    after = await invoice_items(client, customer)
    assert not any("changes" in item for item in after.values())


async def test_editing_or_deleting_the_naming_document_takes_the_plan_away(client, channel):
    vendor, customer = await a_customer_with_the_base_plan(client, channel)
    named = new_id()
    await publish(channel, *notice(user(named, customer, {"voip_pro": {"overrides": {
        "plan": {"users": {"user": {"rate": 10}}}}}}), customer, 1))
    items = await until_items(client, customer, lambda found: ("users", "user") in found)
    assert items[("users", "user")]["rate"] == 10  # the reference's own override

    await publish(channel, *notice(user(named, customer, None), customer, 2))  # role removed
    await until_items(client, customer, lambda found: ("users", "user") not in found)

    await publish(channel, *notice(user(named, customer, {"voip_pro": {}}), customer, 3))
    await until_items(client, customer, lambda found: ("users", "user") in found)
    await publish(channel, *notice(user(named, customer, {"voip_pro": {}}), customer, 4,
                                   event="doc_deleted", with_doc=False))
    await until_items(client, customer, lambda found: ("users", "user") not in found)


async def test_editing_a_named_plan_dirties_the_accounts_whose_documents_name_it(
        service, client, channel):
    vendor, customer = await a_customer_with_the_base_plan(client, channel)
    await publish(channel, *notice(user(new_id(), customer, {"voip_pro": {}}), customer, 1))
    await until_items(client, customer, lambda found: ("users", "user") in found)
    synced = await client.call("sync", {"Account-ID": customer})
    assert synced["Status"] == "success", synced
    assert (await service.repo.services(customer))["dirty"] is False

    await publish(channel, *notice({**LICENCE, "plan": {"users": {"user": {"rate": 15}}}},
                                   vendor, 2))
    items = await until_items(client, customer, lambda found: ("users", "user") in found
                              and found[("users", "user")]["rate"] == 15)
    assert items[("users", "user")]["changes"]["difference"]["rate"] == 3
    assert (await service.repo.services(customer))["dirty"] is True
