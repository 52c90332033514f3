"""Doc-change ingest end to end with SQLite (SPEC §11, §12 "Benchmarks").

In a virtual host of its own, svc's topology is declared and ``services_doc_changes`` is
pre-filled with Kazoo doc_edited notices (a master, four accounts under it, then N devices
spread over the four), before any consumer runs. The service (``svc.app.Service`` with a fresh
SQLite file) then starts and the clock runs until the store counts every device; the counts
must be exact (each account's own and the master's cascade), the queue empty and nothing
dead-lettered. N = 20,000 at full size, 1,000 at smoke size. Target: >= 1,000 notices/s.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aio_pika

from svc.amqp import topology
from svc.amqp.kazoo_notices import doc_change
from svc.app import Service
from svc.jsonio import dumps
from svc.settings import Settings

ACCOUNTS = 4
TARGET = 1_000




def notice(doc: dict[str, Any], account_id: str) -> tuple[str, bytes]:
    """A Kazoo doc_edited notice that includes its ``Doc``, as bytes ready to publish."""
    routing_key, body = doc_change(doc, account_id)
    return routing_key, dumps(body)


async def depth(channel: aio_pika.abc.AbstractChannel, name: str) -> int:
    queue = await channel.declare_queue(name, passive=True)
    return queue.declaration_result.message_count


async def test_ingest_rate(full_size, amqp_url, tmp_path):
    count = 20_000 if full_size else 1_000
    settings = Settings(amqp_url=amqp_url, store_url=f"sqlite:///{tmp_path}/svc.db",
                        node="services@bench", http_host="127.0.0.1", http_port=0)
    master = uuid.uuid4().hex
    accounts = [uuid.uuid4().hex for _ in range(ACCOUNTS)]
    prefill = [notice({"_id": account_id, "pvt_type": "account", "name": account_id[:6],
                       "pvt_tree": [] if account_id == master else [master]}, account_id)
               for account_id in (master, *accounts)]
    prefill += [notice({"_id": f"dev{n}", "pvt_type": "device", "device_type": "sip_device"},
                       accounts[n % ACCOUNTS]) for n in range(count)]
    expected = {account_id: len(range(n, count, ACCOUNTS))
                for n, account_id in enumerate(accounts)}

    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(on_return_raises=True)  # confirmed and routed
        exchanges = await topology.declare_exchanges(channel)
        await topology.declare_dead_letters(channel)
        await topology.declare_doc_changes_queue(channel, settings.delivery_limit)
        configuration = exchanges["configuration"]
        began = time.perf_counter()
        async with asyncio.timeout(300):
            for start in range(0, len(prefill), 500):
                await asyncio.gather(*(
                    configuration.publish(aio_pika.Message(body, content_type="application/json"),
                                          routing_key=routing_key, mandatory=True)
                    for routing_key, body in prefill[start:start + 500]))
        published = len(prefill) / (time.perf_counter() - began)
        assert await depth(channel, topology.DOC_CHANGES_QUEUE) == len(prefill)

        service = Service(settings)
        started = time.perf_counter()
        await service.start()
        try:
            deadline = started + max(120.0, count / 100)
            while True:  # the master's cascade sums every account's devices
                services = await service.repo.services(master)
                cascade = services["quantities"]["cascade"] if services else {}
                counted = cascade.get("devices", {}).get("sip_device", 0)
                if counted >= count:
                    break
                assert time.perf_counter() < deadline, f"{counted} of {count} counted in time"
                await asyncio.sleep(0.02)
            elapsed = time.perf_counter() - started
            assert counted == count, f"counted {counted}, published {count}"
            for account_id, devices in expected.items():
                own = (await service.repo.services(account_id))["quantities"]["account"]
                assert own == {"devices": {"sip_device": devices}}, (account_id, own)
        finally:
            await service.stop()
        # stopped: whatever was delivered and not acked is back in the queue
        assert await depth(channel, topology.DOC_CHANGES_QUEUE) == 0
        assert await depth(channel, topology.DEAD_LETTER_QUEUE) == 0
    finally:
        await connection.close()

    rate = count / elapsed
    print(f"\ningest: {count:,} device notices (+{len(prefill) - count} accounts) pre-filled "
          f"into {topology.DOC_CHANGES_QUEUE}, drained and applied to SQLite in "
          f"{elapsed:.2f} s: {rate:,.0f} notices/s ({rate / TARGET:.2f}x the 1,000/s target; "
          f"publishing ran at {published:,.0f}/s)")
    if full_size:
        assert rate >= TARGET, f"target: >= {TARGET:,} notices/s end to end: {rate:,.0f}"
