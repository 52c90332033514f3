"""Every RPC category end to end through the real broker."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import aio_pika
import pytest
from waiting import eventually

from svc.amqp.kazoo_notices import doc_change as notice
from svc.amqp.kazoo_notices import publish
from svc.jsonio import dumps, loads

PLAN = {"name": "Gold", "plan": {"devices": {"_all": {"rate": 2, "activation_charge": 5}},
                                 "users": {"user": {"rate": 3}}}}


def new_id() -> str:
    return uuid.uuid4().hex


async def account_tree(channel, client, *accounts):
    """(id, tree) pairs created through account notices; waits until each is known."""
    for account_id, tree in accounts:
        doc = {"_id": account_id, "pvt_type": "account", "pvt_tree": tree, "name": account_id}
        await publish(channel, *notice(doc, account_id))

    async def known():
        replies = [await client.call("reseller_get", {"Account-ID": a}) for a, _ in accounts]
        return all(r["Status"] == "success" for r in replies)

    await eventually(known)


async def test_quote_document_round_trip(client):
    reply = await client.call("quote", {"Quote-Request": {
        "plans": [{"id": "p", "vendor_id": "r", "doc": PLAN}],
        "quantities": {"account": {"devices": {"sip_device": 3}}}}})
    assert reply["Event-Name"] == "quote_resp" and reply["Status"] == "success"
    [invoice] = reply["Quote"]["invoices"]
    assert invoice["summary"] == {"recurring": 6, "today": 0}


async def test_plans_assign_summary_and_quote_by_account(client, channel):
    master, account = new_id(), new_id()
    await account_tree(channel, client, (master, []), (account, [master]))
    put = await client.call("plan_put", {"Account-ID": master, "Plan": {"id": "gold",
                                                                         "doc": PLAN}})
    assert put["Plan"]["version"] == 1 and put["Plan"]["name"] == "Gold"
    stale = await client.call("plan_put", {"Account-ID": master,
                                           "Plan": {"id": "gold", "version": 7, "doc": PLAN}})
    assert (stale["Status"], stale["Reason"]) == ("error", "conflict")
    assert (await client.call("plan_get", {"Account-ID": master, "Plan-ID": "gold"}))[
        "Plan"]["doc"] == PLAN
    available = await client.call("available_plans", {"Account-ID": account})
    assert available["Plans"] == [{"id": "gold", "vendor_id": master, "name": "Gold",
                                   "description": None, "category": None}]

    dry = await client.call("assign_plan", {"Account-ID": account, "Plan-ID": "gold",
                                            "Dry-Run": True})
    assert dry["Plans"] == {"gold": {"vendor_id": master, "overrides": {}}} and "Quote" in dry
    assigned = await client.call("assign_plan", {"Account-ID": account, "Plan-ID": "gold"})
    assert assigned["Plans"] == {"gold": {"vendor_id": master, "overrides": {}}}

    for n in range(2):
        await publish(channel, *notice({"_id": f"d{n}", "pvt_type": "device"}, account))

    async def counted():  # both notices: they may be applied in two micro-batches
        summary = (await client.call("summary", {"Account-ID": account}))["Summary"]
        return summary if summary["quantities"]["account"] == {
            "devices": {"sip_device": 2}} else None

    summary = await eventually(counted)
    assert summary["dirty"] is True and summary["last_sync"] is None
    [invoice] = summary["invoices"]
    assert invoice["summary"] == {"recurring": 4, "today": 10}  # never synced: all is new

    what_if = await client.call("quote", {"Account-ID": account,
                                          "Changes": {"devices": {"sip_device": 3}}})
    [invoice] = what_if["Quote"]["invoices"]
    assert invoice["summary"] == {"recurring": 10, "today": 15}
    negative = await client.call("quote", {"Account-ID": account,
                                           "Changes": {"devices": {"sip_device": -5}}})
    assert negative["Status"] == "error" and "$.Changes.devices.sip_device" in negative["Message"]

    manual = await client.call("manual_set", {"Account-ID": account,
                                              "Quantities": {"users": {"user": 4}}})
    assert manual["Summary"]["invoices"][0]["summary"]["recurring"] == 16
    overrides = await client.call("overrides_set", {"Account-ID": account, "Overrides": {
        "plan": {"users": {"user": {"rate": 1}}}}})
    assert overrides["Summary"]["invoices"][0]["summary"]["recurring"] == 8
    bad = await client.call("overrides_set", {"Account-ID": account, "Overrides": {
        "plan": {"users": {"user": {"rate": -1}}}}})
    assert (bad["Status"], bad["Reason"]) == ("error", "plan_invalid")
    assert bad["Details"] == [{"path": "$.Overrides.plan.users.user.rate", "rule": "must be >= 0"}]

    removed = await client.call("remove_plan", {"Account-ID": account, "Plan-ID": "gold"})
    assert removed["Plans"] == {}
    again = await client.call("remove_plan", {"Account-ID": account, "Plan-ID": "gold"})
    assert again["Reason"] == "not_assigned"
    deleted = await client.call("plan_delete", {"Account-ID": master, "Plan-ID": "gold"})
    assert deleted["Status"] == "success"
    gone = await client.call("plan_get", {"Account-ID": master, "Plan-ID": "gold"})
    assert gone["Reason"] == "plan_not_found"


async def test_reseller_default_plan_forbidden_and_master(client, channel):
    master, reseller, child, other = new_id(), new_id(), new_id(), new_id()
    await account_tree(channel, client, (master, []), (reseller, [master]))
    promoted = await client.call("reseller_promote", {"Account-ID": reseller})
    assert promoted["Is-Reseller"] is True
    await client.call("plan_put", {"Account-ID": reseller, "Plan": {"id": "std", "doc": PLAN}})
    await client.call("plan_put", {"Account-ID": master, "Plan": {"id": "mst", "doc": PLAN}})
    assert (await client.call("default_plan_set", {"Account-ID": reseller,
                                                   "Plan-ID": "std"}))["Plan-ID"] == "std"
    assert (await client.call("default_plan_get", {"Account-ID": reseller}))["Plan-ID"] == "std"
    await account_tree(channel, client, (child, [master, reseller]), (other, [master]))
    child_summary = (await client.call("summary", {"Account-ID": child}))["Summary"]
    assert child_summary["reseller_id"] == reseller
    assert child_summary["plans"] == {"std": {"vendor_id": reseller, "overrides": {}}}
    forbidden = await client.call("assign_plan", {"Account-ID": child, "Plan-ID": "mst"})
    assert forbidden["Reason"] == "forbidden"
    assert (await client.call("reseller_promote", {"Account-ID": master}))["Reason"] == (
        "master_account")
    demoted = await client.call("reseller_demote", {"Account-ID": reseller})
    assert demoted["Is-Reseller"] is False
    assert (await client.call("reseller_get", {"Account-ID": child}))["Reseller-ID"] == master


async def test_reconcile_and_standing(client, channel):
    master, account = new_id(), new_id()
    await account_tree(channel, client, (master, []), (account, [master]))
    one = await client.call("reconcile", {"Account-ID": account})
    assert (one["Status"], one["Changed"], one["Changes"]) == ("success", False, [])
    everything = await client.call("reconcile", {"Account-ID": "all"})
    assert everything["Changes-Total"] == 0
    standing = await client.call("standing", {"Account-ID": account})
    assert standing["Status"] == "good_standing"


@pytest.mark.parametrize(("fields", "expected"), [
    ({}, "Account-ID: Field required"),
    ({"Account-ID": 5}, "Account-ID: Input should be a valid string"),
])
async def test_invalid_requests_get_the_generic_error_reply(client, fields, expected):
    reply = await client.call("summary", fields)
    assert reply["Event-Category"] == "error" and reply["Event-Name"] == "summary_resp"
    assert expected in reply["Error-Message"]
    assert reply["Request"]["Event-Name"] == "summary_req"


async def test_unknown_event_names_get_an_error_reply(client):
    reply = await client.call("frobnicate", {"Account-ID": "x"}, category="summary")
    assert reply["Event-Category"] == "error" and "unknown request" in reply["Error-Message"]


async def raw_rpc(channel, body: bytes, routing_key: str = "services.summary.request",
                  timeout: float = 10) -> dict:
    """A plain aio-pika RPC client: reply_to + correlation_id, no Kazoo fields."""
    reply_queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    exchange = await channel.declare_exchange("services", aio_pika.ExchangeType.TOPIC,
                                              durable=False, auto_delete=False)
    correlation = uuid.uuid4().hex
    await exchange.publish(aio_pika.Message(body, content_type="application/json",
                                            reply_to=reply_queue.name,
                                            correlation_id=correlation),
                           routing_key=routing_key)
    async with reply_queue.iterator(timeout=timeout) as replies:
        async for message in replies:
            await message.ack()
            assert message.correlation_id == correlation
            return loads(message.body)
    raise AssertionError("no reply")


async def test_plain_amqp_clients_are_answered_on_reply_to(service, channel):
    body = dumps({"Event-Category": "services", "Event-Name": "quote_req", "App-Name": "x",
                  "App-Version": "1", "Msg-ID": "m1", "Quote-Request": {
                      "plans": [{"id": "p", "doc": {"plan": {"d": {"x": {"rate": 1.1}}}}}],
                      "quantities": {"account": {"d": {"x": 3}}}}})
    reply = await raw_rpc(channel, body, "services.quote.request")
    assert reply["Status"] == "success" and reply["Msg-ID"] == "m1"
    assert reply["Quote"]["invoices"][0]["summary"]["recurring"] == Decimal("3.3")


async def test_a_server_id_too_long_to_name_a_queue_falls_back_to_reply_to(service, channel):
    body = dumps({"Event-Category": "services", "Event-Name": "summary_req", "App-Name": "x",
                  "App-Version": "1", "Msg-ID": "m1", "Server-ID": "q" * 256,
                  "Account-ID": "a"})
    reply = await raw_rpc(channel, body)
    assert reply["Msg-ID"] == "m1" and reply["Reason"] == "account_not_found"


@pytest.mark.parametrize(("body", "expected"), [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (dumps({"Event-Name": "summary_req", "Event-Category": "services"}), "App-Name"),
    (dumps({"Event-Category": "services", "Event-Name": "summary_req", "App-Name": "x",
            "App-Version": "1", "Msg-ID": "m", "Account-ID": "a", "Pad": "x" * 70_000}),
     "exceeds SVC_MAX_MESSAGE_BYTES"),
    # echoed in the reply's body only: as an AMQP property it would not go on the wire
    (dumps({"Event-Category": "services", "Event-Name": "summary_req", "App-Name": "x",
            "App-Version": "1", "Msg-ID": 5, "Account-ID": "a"}), "Msg-ID"),
])
async def test_malformed_requests_are_answered_and_the_service_keeps_running(
        service, channel, client, body, expected):
    reply = await raw_rpc(channel, body)
    assert reply["Event-Category"] == "error" and expected in reply["Error-Message"]
    assert "Request" not in reply or len(dumps(reply)) < 70_000
    healthy = await client.call("quote", {"Quote-Request": {}})
    assert healthy["Status"] == "success"


async def test_a_request_with_no_reply_address_is_dead_lettered(service, channel):
    queue = await channel.declare_queue("services_dead_letters", durable=True,
                                        arguments={"x-queue-type": "quorum"})
    await queue.purge()
    exchange = await channel.declare_exchange("services", aio_pika.ExchangeType.TOPIC,
                                              durable=False, auto_delete=False)
    await exchange.publish(aio_pika.Message(b'{"Event-Name": "summary_req"}',
                                            content_type="application/json"),
                           routing_key="services.summary.request")
    message = await eventually(lambda: queue.get(fail=False))
    await message.ack()
    assert "no reply address" in message.headers["x-svc-dead-letter-reason"]


async def test_concurrent_requests_are_matched_by_msg_id(client):
    replies = await asyncio.gather(*(client.call("quote", {"Quote-Request": {
        "plans": [{"id": "p", "doc": {"plan": {"d": {"x": {"rate": 1}}}}}],
        "quantities": {"account": {"d": {"x": n}}}}}) for n in range(20)))
    assert [r["Quote"]["invoices"][0]["summary"]["recurring"] for r in replies] == list(range(20))
