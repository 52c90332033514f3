"""Draining a pre-filled doc-change queue into a fresh ``svc.app.Service``: the timing and
the exactness checks the ingest benchmarks share."""

from __future__ import annotations

import asyncio
import time

import aio_pika

from svc.amqp import topology
from svc.app import Service
from svc.settings import Settings


async def depth(channel: aio_pika.abc.AbstractChannel, name: str) -> int:
    queue = await channel.declare_queue(name, passive=True)
    return queue.declaration_result.message_count


async def drain(amqp_url: str, settings: Settings, prefill: list[tuple[str, bytes]],
                master: str, expected: dict[str, int]) -> tuple[float, float]:
    """The queue pre-filled, then the service started and timed until the master's cascade
    counts every device; exact counts, the queue empty and nothing dead-lettered after its
    stop. (seconds to drain, notices published per second)."""
    count = sum(expected.values())
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(on_return_raises=True)  # confirmed and routed
        exchanges = await topology.declare_exchanges(channel)
        await topology.declare_dead_letters(channel)
        await topology.declare_doc_changes_queue(channel, settings.delivery_limit)
        assert await depth(channel, topology.DOC_CHANGES_QUEUE) == 0
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
            assert cascade == {"devices": {"sip_device": count}}, cascade
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
    return elapsed, published
