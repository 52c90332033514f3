"""Events after commit: the broker stops while the syncs of freshly counted accounts
commit. Every event their changes caused waits in the store's outbox while the broker is away
and is published once it is back; afterwards the outbox is empty, each account has exactly one
``bookkeeper_sync`` and its ``quantities_change`` events add up exactly to what it counted.

The broker is a private RabbitMQ node. Events are caught by a quorum queue (it keeps messages
through a restart whatever their delivery mode), bound again at once after the restart: Kazoo's
exchanges are not durable, so a restart drops their bindings.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections import defaultdict
from pathlib import Path

import aio_pika
import pytest
from faultkit import wait_for, wait_until_consuming

from svc.amqp import topology
from svc.amqp.kazoo_notices import doc_change
from svc.jsonio import dumps
from svc.store import AccountFields, DocChange, Repository
from svc.store.sqlite import SQLiteStore

ACCOUNTS = 20
DEVICES = 400  # notices, spread over the accounts, waiting in the queue when svc starts
PROBE = "outbox-probe"


async def populate(path: Path) -> list[str]:
    store = SQLiteStore(path)
    await store.open()
    repo = Repository(store)
    await repo.apply_doc_change(DocChange("m", "m", "account", 1,
                                          account=AccountFields((), True)))
    await repo.put_plan("m", "p", {"plan": {"devices": {"_all": {"rate": 1}}}})
    await repo.set_default_plan("m", "p")
    # KAZOO's account ids: notices name the database account%2Fxx%2Fxx%2F<rest> after them
    ids = sorted(f"{n:02x}{uuid.uuid4().hex[2:]}" for n in range(ACCOUNTS))
    await repo.apply_doc_changes([DocChange(a, a, "account", 1,
                                            account=AccountFields(("m",), False)) for a in ids])
    async for entry in store.scan("outbox"):  # the set-up's own events are not under test
        await store.delete("outbox", entry.key, entry.version)
    await store.close()
    return ids


async def counted(path: Path, accounts: list[str]) -> bool:
    store = SQLiteStore(path)
    await store.open()
    try:
        found = await store.get_many("services", accounts)
    finally:
        await store.close()
    return all(found[a].doc["quantities"]["account"] == {
        "devices": {"sip_device": DEVICES // ACCOUNTS}} for a in accounts if a in found) and \
        len(found) == len(accounts)


async def outbox_size(path: Path) -> int:
    store = SQLiteStore(path)
    await store.open()
    try:
        return len([entry async for entry in store.scan("outbox")])
    finally:
        await store.close()


async def bind_probe(url: str) -> aio_pika.abc.AbstractRobustConnection:
    connection = await aio_pika.connect_robust(url)
    channel = await connection.channel()
    services = (await topology.declare_exchanges(channel))["services"]
    queue = await channel.declare_queue(PROBE, durable=True,
                                        arguments={"x-queue-type": "quorum"})
    await queue.bind(services, routing_key="services.#")
    return connection


@pytest.mark.timeout(180)
async def test_events_wait_in_the_outbox_while_the_broker_is_away(private_broker,
                                                                  svc_processes, tmp_path):
    db = tmp_path / "svc.db"
    accounts = await populate(db)
    url = private_broker.url
    probe = await bind_probe(url)
    channel = await probe.channel()
    exchanges = await topology.declare_exchanges(channel)
    await topology.declare_doc_changes_queue(channel, 5)
    for n in range(DEVICES):
        key, body = doc_change({"_id": f"d{n}", "pvt_type": "device"}, accounts[n % ACCOUNTS])
        await exchanges["configuration"].publish(
            aio_pika.Message(dumps(body), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=key)
    await probe.close()

    # the notices are counted at once; the accounts fall due some seconds later, while the
    # broker is away: their syncs commit with nowhere to publish (``rabbitmqctl stop_app``
    # takes seconds on a busy machine, longer with quorum queues to stop)
    svc = svc_processes(url, db, tmp_path / "svc.log", "services@outbox",
                        sync_interval_s="0.2", sync_buffer_s="12").start()
    await wait_until_consuming(url)
    await wait_for(lambda: counted(db, accounts), 60, "the notices counted", interval=0.1)
    await asyncio.to_thread(private_broker.ctl, "stop_app")
    try:
        async def waiting() -> bool:
            assert svc.running, svc.tail()
            return await outbox_size(db) >= ACCOUNTS  # a bookkeeper_sync each, at least
        await wait_for(waiting, 60, "events waiting in the outbox", interval=0.2)
    finally:
        # svc is paused while the broker comes back, so that the probe (its binding went with
        # the exchange, which is not durable) is bound before svc can publish
        os.kill(svc.process.pid, signal.SIGSTOP)
        try:
            await asyncio.to_thread(private_broker.ctl, "start_app")
            probe = await bind_probe(url)
        finally:
            os.kill(svc.process.pid, signal.SIGCONT)

    async def relayed() -> bool:
        assert svc.running, svc.tail()
        return await outbox_size(db) == 0
    await wait_for(relayed, 90, "the outbox relayed")
    assert svc.terminate() == 0

    channel = await probe.channel()
    queue = await channel.declare_queue(PROBE, passive=True)
    events: dict[str, dict] = {}
    while (message := await queue.get(fail=False, no_ack=True)) is not None:
        event = json.loads(message.body)
        events.setdefault(event["Msg-ID"], event)  # at least once: repeats share a Msg-ID
    await probe.close()

    synced = [e["Account-ID"] for e in events.values() if e["Event-Name"] == "bookkeeper_sync"]
    assert sorted(synced) == accounts  # one each: the master has no plan, so no invoice
    added: dict[str, int] = defaultdict(int)
    for event in events.values():
        if event["Event-Name"] == "quantities_change":
            for change in event["Changes"]:
                if change["scope"] == "account" and change["account_id"] != "m":
                    added[change["account_id"]] += change["current"] - change["previous"]
    assert dict(added) == {a: DEVICES // ACCOUNTS for a in accounts}
