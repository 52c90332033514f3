"""A busy store is not poison: while another process
holds the SQLite write lock for longer than the adapter waits for it, notices wait unacked and
are retried with back-off; none is dead-lettered, and every one is applied once the lock goes.
In process, the same for each error that means "not now" (busy, unreachable, a unit that kept
losing its compare-and-set), service plan notices included: none is requeued toward the
delivery limit.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid

import pytest
from waiting import eventually

from svc.amqp import notices as consumer_module
from svc.amqp.kazoo_notices import doc_change, publish
from svc.amqp.notices import NoticeConsumer
from svc.jsonio import dumps
from svc.quantities import DEFAULT_CLASSIFIERS
from svc.store import Conflict, StoreUnavailable
from svc.store.abc import StoreBusy

NOTICES = 40
# more than twice the adapter's busy_timeout (5 s): its BEGIN IMMEDIATE gives up at least
# twice, so a consumer that tried the batch's notices one by one would lose one of them too
HOLD_S = 12.0
LOCK_HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(60)
"""


def sample(service, name: str, **labels: str) -> float:
    return service.metrics.registry.get_sample_value(name, labels) or 0


async def devices(service, account_id: str) -> int:
    services = await service.repo.services(account_id)
    if services is None:
        return 0
    return services["quantities"]["account"].get("devices", {}).get("sip_device", 0)


async def test_a_store_locked_by_another_process_dead_letters_nothing(service, settings,
                                                                     channel, caplog):
    caplog.set_level(logging.WARNING, logger="svc.notices")
    account = uuid.uuid4().hex
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LOCK_HOLDER, settings.store_url.removeprefix("sqlite:///"),
        stdout=asyncio.subprocess.PIPE)
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), 10) == b"locked\n"
        for n in range(NOTICES):
            await publish(channel, *doc_change({"_id": f"d{n}", "pvt_type": "device"},
                                               account, 1))
        await asyncio.sleep(HOLD_S)
        assert await devices(service, account) == 0  # nothing got past the lock
        assert "store cannot take writes" in caplog.text  # the store refused: they wait
    finally:
        holder.kill()  # the lock goes with the process
        await holder.wait()

    async def all_applied():  # the counter moves after the commit, as each notice is acked
        return sample(service, "svc_doc_changes_total", type="device",
                      outcome="applied") == NOTICES

    await eventually(all_applied, timeout=30)
    assert await devices(service, account) == NOTICES
    assert sample(service, "svc_doc_changes_total", type="other", outcome="dead_lettered") == 0
    dead = await channel.declare_queue("services_dead_letters", passive=True)
    assert dead.declaration_result.message_count == 0


# --- in-process: the same hold for every error that means "not now", plans included -------


class Delivery:
    def __init__(self, routing_key: str, body: dict) -> None:
        self.body, self.routing_key = dumps(body), routing_key
        self.acked = self.requeued = False

    async def ack(self) -> None:
        self.acked = True

    async def nack(self, requeue: bool = True) -> None:
        self.requeued = requeue


class Publisher:
    def __init__(self) -> None:
        self.dead: list[str] = []

    async def dead_letter(self, body: bytes, routing_key: str, reason: str, *, code: str,
                          headers: dict | None = None) -> None:
        self.dead.append(reason)


@pytest.mark.parametrize("refusal", [
    StoreBusy("SQLite database is locked"),
    StoreUnavailable("MongoDB unreachable"),
    Conflict("the unit kept losing its compare-and-set"),
], ids=type)
async def test_notices_wait_unacked_while_the_store_refuses_them(repo, monkeypatch, refusal):
    monkeypatch.setattr(consumer_module, "RETRY_BASE_S", 0.01)
    refusals = 3
    transaction = repo.store.transaction

    def refusing():
        nonlocal refusals
        if refusals:
            refusals -= 1
            raise refusal
        return transaction()

    monkeypatch.setattr(repo.store, "transaction", refusing)
    vendor = uuid.uuid4().hex
    plan = {"_id": "gold", "pvt_type": "service_plan", "plan": {"devices": {"_all": {}}}}
    deliveries = [Delivery(*doc_change(plan, vendor, 1))] + [
        Delivery(*doc_change({"_id": f"d{n}", "pvt_type": "device"}, vendor, 1))
        for n in range(3)]
    publisher = Publisher()
    consumer = NoticeConsumer(repo, publisher, DEFAULT_CLASSIFIERS)
    for delivery in deliveries:
        await consumer.on_message(delivery)

    async def settled():
        return all(delivery.acked for delivery in deliveries)

    await eventually(settled)
    assert refusals == 0 and publisher.dead == []
    assert not any(delivery.requeued for delivery in deliveries)
    assert (await repo.get_plan(vendor, "gold")).doc["doc"]["plan"] == plan["plan"]
    services = await repo.services(vendor)
    assert services["quantities"]["account"]["devices"] == {"sip_device": 3}
