"""Sync through a webhook bookkeeper in its own process that answers 200, 402, 500, hangs,
then recovers, and the local bookkeeper's idempotent ledger."""

from __future__ import annotations

import uuid

import aio_pika
import pytest
from waiting import eventually
from webhook import received, set_mode

from svc.amqp.client import ServicesClient
from svc.amqp.kazoo_notices import doc_change as notice
from svc.amqp.kazoo_notices import publish
from svc.app import Service
from svc.jsonio import loads
from svc.settings import BookkeeperSetting, Settings

PLAN = {"plan": {"devices": {"_all": {"rate": 2, "activation_charge": 5}}}}


@pytest.fixture
def settings(amqp_url, tmp_path, http_bookkeeper) -> Settings:
    return Settings(
        amqp_url=amqp_url, store_url=f"sqlite:///{tmp_path}/svc.db", node="services@sync-test",
        sync_interval_s=3600, sync_retry_base_s=0.01, bookkeeper_timeout_s=5,
        bookkeepers={"webhook": BookkeeperSetting(adapter="http",
                                                  url=f"{http_bookkeeper}/invoice",
                                                  secret=["s3cret-2027", "s3cret"],
                                                  timeout_s=1)})


async def events_queue(channel, account_id):
    queue = await channel.declare_queue(exclusive=True)
    exchange = await channel.declare_exchange("services", aio_pika.ExchangeType.TOPIC,
                                              durable=False, auto_delete=False)
    await queue.bind(exchange, routing_key=f"services.*.{account_id}")
    return queue


async def drain(queue) -> list[dict]:
    events = []
    while (message := await queue.get(fail=False)) is not None:
        events.append(loads(message.body))
    return events


async def billed_account(client, channel, bookkeeper: dict | None):
    master, account = uuid.uuid4().hex, uuid.uuid4().hex
    for account_id, tree in ((master, []), (account, [master])):
        await publish(channel, *notice({"_id": account_id, "pvt_type": "account",
                                        "pvt_tree": tree}, account_id))

    async def known():
        return (await client.call("reseller_get", {"Account-ID": account}))["Status"] == (
            "success")

    await eventually(known)
    await client.call("plan_put", {"Account-ID": master, "Plan": {"id": "p", "doc": PLAN}})
    if bookkeeper:
        await client.call("bookkeeper_set", {"Account-ID": master, "Bookkeeper": bookkeeper})
    await client.call("assign_plan", {"Account-ID": account, "Plan-ID": "p"})
    await client.call("manual_set", {"Account-ID": account,
                                     "Quantities": {"devices": {"sip_device": 3}}})
    return master, account


async def test_webhook_failures_keep_the_account_dirty_and_retries_keep_the_key(
        settings, amqp_url, channel, http_bookkeeper):
    service = Service(settings)
    await service.start()
    try:
        async with ServicesClient(amqp_url) as client:
            master, account = await billed_account(client, channel,
                                                   {"id": "webhook", "type": "http"})
            events = await events_queue(channel, account)
            for mode in ("error", "hang"):
                await set_mode(http_bookkeeper, mode)
                reply = await client.call("sync", {"Account-ID": account}, timeout=20)
                [result] = reply["Results"]
                assert result["status"] == "failed"
                summary = (await client.call("summary", {"Account-ID": account}))["Summary"]
                assert summary["dirty"] is True and summary["status"] == "good_standing"

            await set_mode(http_bookkeeper, "delinquent")
            reply = await client.call("sync", {"Account-ID": account}, timeout=20)
            assert reply["Results"][0]["status"] == "completed"
            assert reply["Results"][0]["reason"] == "card_declined"
            summary = (await client.call("summary", {"Account-ID": account}))["Summary"]
            assert summary["status"] == "delinquent" and summary["dirty"] is False
            standing = await client.call("standing", {"Account-ID": account})
            assert (standing["Status"], standing["Reason"]) == ("error", "delinquent")

            await set_mode(http_bookkeeper, "ok")
            await client.call("manual_set", {"Account-ID": account,
                                             "Quantities": {"devices": {"sip_device": 4}}})
            reply = await client.call("sync", {"Account-ID": account}, timeout=20)
            assert reply["Results"][0]["status"] == "completed"
            summary = (await client.call("summary", {"Account-ID": account}))["Summary"]
            assert summary["status"] == "good_standing"
            assert summary["invoices"][0]["activation_charges"] == []  # billed, not pending

            sent = await received(http_bookkeeper)
            assert all(entry["signed"] for entry in sent)  # by the first secret, rotating
            first_content = [e for e in sent if e["body"]["items"][0]["quantity"] == 3]
            # the same invoice carried the same idempotency key on every attempt
            assert len({e["body"]["idempotency_key"] for e in first_content}) == 1
            assert len(first_content) == 3  # error, hang, 402
            assert first_content[0]["body"]["activation_charges"][0]["total"] == 15
            last = sent[-1]["body"]
            assert last["items"][0]["quantity"] == 4
            assert last["activation_charges"] == [{"category": "devices", "item": "_all",
                                                   "name": "devices", "billable": 1, "rate": 5,
                                                   "total": 5}]
            assert last["idempotency_key"] != first_content[0]["body"]["idempotency_key"]

            published = await eventually(lambda: drain(events))
            published += await drain(events)
            syncs = [e for e in published if e["Event-Name"] == "bookkeeper_sync"]
            assert [(e["Status"], e["Attempt"]) for e in syncs] == [
                ("failed", 1), ("failed", 2), ("completed", 3), ("completed", 1)]
            changes = [(e["Previous-Status"], e["Status"]) for e in published
                       if e["Event-Name"] == "status_change"]
            assert changes == [("good_standing", "delinquent"), ("delinquent", "good_standing")]
    finally:
        await service.stop()


async def test_the_loop_syncs_through_the_local_ledger_once_per_invoice(
        settings, amqp_url, channel):
    settings = settings.model_copy(update={"sync_interval_s": 0.05})
    service = Service(settings)
    await service.start()
    try:
        async with ServicesClient(amqp_url) as client:
            master, account = await billed_account(client, channel, None)

            async def clean():
                summary = (await client.call("summary", {"Account-ID": account}))["Summary"]
                return summary if not summary["dirty"] and summary["last_sync"] else None

            summary = await eventually(clean)
            assert summary["last_sync"]["results"][0]["bookkeeper"]["type"] == "local"
            ledger = [v async for v in service.store.scan("book_ledger")]
            assert [entry.doc["account_id"] for entry in ledger] == [account]
            assert ledger[0].doc["invoice"]["summary"] == {"recurring": 6, "today": 15}
            trail = (await client.call("audit", {"Account-ID": account}))["Entries"]
            [delivery] = [entry for entry in trail if entry["action"] == "delivery"]
            assert delivery["who"] == {"kind": "sync", "name": settings.node}
            # the master is dirtied as the reseller once its customer synced, then synced
            master_summary = await eventually(lambda: _synced(client, master))
            assert master_summary["dirty"] is False
    finally:
        await service.stop()


async def _synced(client, account_id):
    summary = (await client.call("summary", {"Account-ID": account_id}))["Summary"]
    return summary if summary["last_sync"] and not summary["dirty"] else None


async def test_a_sub_account_change_re_syncs_its_reseller(settings, amqp_url, channel):
    """master → reseller (billed on its customers' devices by cascade) → customer."""
    settings = settings.model_copy(update={"sync_interval_s": 0.05})
    service = Service(settings)
    await service.start()
    try:
        async with ServicesClient(amqp_url) as client:
            master, reseller, customer = (uuid.uuid4().hex for _ in range(3))
            for account_id, tree in ((master, []), (reseller, [master]),
                                     (customer, [master, reseller])):
                await publish(channel, *notice({"_id": account_id, "pvt_type": "account",
                                                "pvt_tree": tree}, account_id))

            async def known():
                reply = await client.call("reseller_get", {"Account-ID": customer})
                return reply["Status"] == "success"

            await eventually(known)
            await client.call("reseller_promote", {"Account-ID": reseller})
            wholesale = {"plan": {"devices": {"_all": {"rate": 1, "cascade": True}}}}
            await client.call("plan_put", {"Account-ID": master,
                                           "Plan": {"id": "wholesale", "doc": wholesale}})
            await client.call("assign_plan", {"Account-ID": reseller, "Plan-ID": "wholesale"})
            events = await events_queue(channel, reseller)
            await publish(channel, *notice({"_id": "d1", "pvt_type": "device"}, customer))

            async def reseller_billed():
                found = [e for e in await drain(events) if e["Event-Name"] == "bookkeeper_sync"
                         and e["Items"][0]["quantity"] == 1]
                return found

            [event] = await eventually(reseller_billed)
            assert event["Status"] == "completed" and event["Summary"]["recurring"] == 1
            summary = (await client.call("summary", {"Account-ID": reseller}))["Summary"]
            assert summary["quantities"]["cascade"] == {"devices": {"sip_device": 1}}
    finally:
        await service.stop()
