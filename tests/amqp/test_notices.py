"""The doc-change consumer against the real broker."""

from __future__ import annotations

import uuid

import aio_pika
from waiting import eventually

from svc.amqp.kazoo_notices import doc_change as notice
from svc.amqp.kazoo_notices import publish
from svc.jsonio import loads


def new_id() -> str:
    return uuid.uuid4().hex


async def quantities(client, account_id):
    reply = await client.call("summary", {"Account-ID": account_id})
    return reply.get("Summary", {}).get("quantities")


async def dead_letters(channel):
    queue = await channel.declare_queue("services_dead_letters", durable=True,
                                        arguments={"x-queue-type": "quorum"})
    await queue.purge()
    return queue


async def test_duplicates_and_out_of_order_notices_leave_exact_counts(client, channel):
    master, account = new_id(), new_id()
    await publish(channel, *notice({"_id": master, "pvt_type": "account", "pvt_tree": []},
                                   master))
    await publish(channel, *notice({"_id": account, "pvt_type": "account",
                                    "pvt_tree": [master]}, account))
    fax = {"_id": "d1", "pvt_type": "device", "device_type": "fax"}
    ata = {"_id": "d1", "pvt_type": "device", "device_type": "ata"}
    for routing_key, body in [notice(fax, account, 2), notice(fax, account, 2),
                              notice(ata, account, 1), notice(fax, account, 2)]:
        await publish(channel, routing_key, body)
    for n in range(5):
        await publish(channel, *notice({"_id": f"u{n}", "pvt_type": "user"}, account, 1))
    await publish(channel, *notice({"_id": "u0", "pvt_type": "user"}, account, 2,
                                   event="doc_deleted", with_doc=False))
    await publish(channel, *notice({"_id": "u0", "pvt_type": "user"}, account, 1))  # late

    async def settled():
        q = await quantities(client, account)
        return q if q and q["account"].get("users", {}).get("user") == 4 else None

    q = await eventually(settled)
    assert q["account"] == {"devices": {"fax": 1}, "users": {"user": 4}}
    master_q = await quantities(client, master)
    assert master_q["cascade"] == {"devices": {"fax": 1}, "users": {"user": 4}}


async def test_without_a_document_source_a_notice_without_doc_is_dead_lettered(service,
                                                                              channel):
    queue = await dead_letters(channel)
    await publish(channel, *notice({"_id": "d1", "pvt_type": "device"}, new_id(),
                                   with_doc=False))
    message = await eventually(lambda: queue.get(fail=False))
    await message.ack()
    assert message.headers["x-svc-dead-letter-reason"] == "no_document_source"
    assert loads(message.body)["ID"] == "d1"


async def test_poison_notices_are_dead_lettered_and_valid_work_continues(client, channel):
    queue = await dead_letters(channel)
    account = new_id()
    await publish(channel, *notice({"_id": account, "pvt_type": "account", "pvt_tree": []},
                                   account))
    bad = notice({"_id": "d9", "pvt_type": "device"}, account)
    await publish(channel, bad[0], {**bad[1], "Rev": "oops"})
    await publish(channel, *notice({"_id": "d1", "pvt_type": "device"}, account))
    message = await eventually(lambda: queue.get(fail=False))
    await message.ack()
    assert message.headers["x-svc-dead-letter-reason"].startswith("Rev:")

    async def counted():
        q = await quantities(client, account)
        return q and q["account"] == {"devices": {"sip_device": 1}}

    await eventually(counted)


async def test_service_plan_notices_store_the_plan_and_changes_publish_events(client, channel):
    master = new_id()
    events = await channel.declare_queue(exclusive=True)
    services = await channel.declare_exchange("services", aio_pika.ExchangeType.TOPIC,
                                              durable=False, auto_delete=False)
    await events.bind(services, routing_key=f"services.quantities_change.{master}")
    await publish(channel, *notice({"_id": master, "pvt_type": "account", "pvt_tree": []},
                                   master))
    plan = {"_id": "gold", "pvt_type": "service_plan", "plan": {"devices": {"_all": {"rate": 1}}}}
    await publish(channel, *notice(plan, master))

    async def stored():
        reply = await client.call("plan_get", {"Account-ID": master, "Plan-ID": "gold"})
        return reply if reply["Status"] == "success" else None

    assert (await eventually(stored))["Plan"]["doc"]["plan"] == plan["plan"]
    await publish(channel, *notice({"_id": "d1", "pvt_type": "device"}, master))
    message = await eventually(lambda: events.get(fail=False))
    event = loads(message.body)
    assert event["Event-Name"] == "quantities_change" and event["Account-ID"] == master
    assert event["Changes"] == [{"account_id": master, "scope": "account",
                                 "category": "devices", "item": "sip_device",
                                 "previous": 0, "current": 1}]
    assert event["Timestamp"] > 62_167_219_200
