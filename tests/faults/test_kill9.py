"""``svc serve`` is killed with SIGKILL twice while it drains doc-change notices, and
restarted each time: afterwards the stored
quantities equal an exact recount.

After the first kill the store is examined before the restart: what it holds must be exactly
the effect of a prefix of the stream (a micro-batch is one transaction: all of it or none),
and every notice the broker saw acked must lie in that prefix (acks follow the write). The
notices of the prefix that were written but not acked are delivered again after the restart,
and the revision check must ignore them.
"""

from __future__ import annotations

import asyncio
import time

import aio_pika
import pytest
from faultkit import (
    check_store,
    drain_dead_letters,
    free_port,
    ledger_revisions,
    normal,
    notice_outcomes,
    queue_state,
    stored,
    wait_for,
    wait_until_consuming,
    wait_until_idle,
    workload,
)

from svc.amqp import topology
from svc.amqp.client import ServicesClient
from svc.settings import Settings

NOTICES = 8_000
KILL_AT = (0.7, 0.35)  # kill when this share of the notices is still waiting in the queue


async def prefill(url: str, messages: list[tuple[str, bytes]]) -> None:
    """svc's topology, and every notice queued (publisher confirms) before svc runs."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(on_return_raises=True)
        exchanges = await topology.declare_exchanges(channel)
        await topology.declare_dead_letters(channel)
        await topology.declare_doc_changes_queue(channel, Settings().delivery_limit)
        for start in range(0, len(messages), 500):
            await asyncio.gather(*(
                exchanges["configuration"].publish(
                    aio_pika.Message(body, content_type="application/json"),
                    routing_key=routing_key, mandatory=True)
                for routing_key, body in messages[start:start + 500]))
    finally:
        await connection.close()


async def waiting(url: str) -> int:
    return (await queue_state(url, topology.DOC_CHANGES_QUEUE))[0]


@pytest.mark.timeout(150)
async def test_kill9_mid_stream_keeps_quantities_exact(amqp_url, svc_processes, tmp_path):
    work = workload(NOTICES, seed=2)
    db = tmp_path / "svc.db"
    async with asyncio.timeout(60):
        await prefill(amqp_url, [(n.routing_key, n.body) for n in work.notices])
    assert await waiting(amqp_url) == NOTICES
    began = time.monotonic()

    def svc(n: int, **settings: str):
        return svc_processes(amqp_url, db, tmp_path / "svc.log", f"services@fault-b{n}",
                             **settings)

    redelivered = 0
    for n, share in enumerate(KILL_AT):
        process = svc(n).start()

        async def drained_to(share=share, process=process):
            assert process.running, process.tail()
            return await waiting(amqp_url) <= NOTICES * share

        await wait_for(drained_to, 60, f"svc draining to {share:.0%} of the queue",
                       interval=0.02)
        process.kill9()
        ready = await wait_until_idle(amqp_url)  # the broker saw it go: its unacked are back
        if n == 0:
            redelivered = await check_first_kill(work, db, acked=NOTICES - ready)

    port = free_port()
    last = svc(len(KILL_AT), http_port=str(port)).start()
    await wait_until_consuming(amqp_url)
    expected = work.expected()
    async with ServicesClient(amqp_url) as client:
        async def settled():
            for account_id, quantities in expected.items():
                reply = await client.call("summary", {"Account-ID": account_id}, timeout=5)
                got = reply.get("Summary", {}).get("quantities")
                if not got or (normal(got["account"]), normal(got["cascade"])) != (
                        quantities["account"], quantities["cascade"]):
                    return False
            return await waiting(amqp_url) == 0

        await wait_for(settled, 90, "quantities settled after the restarts", interval=0.25)
    elapsed = time.monotonic() - began
    outcomes = await notice_outcomes(port)
    assert last.terminate() == 0, last.tail()

    assert await waiting(amqp_url) == 0
    assert await drain_dead_letters(amqp_url, expected=0, settle_s=0.2) == []
    await check_store(db, work)
    print(f"\nkill -9: {NOTICES:,} notices, killed twice mid-stream; after the first kill "
          f"{redelivered} notices were stored but not acked; after the last restart "
          f"{outcomes.get('ignored', 0)} deliveries were ignored as already applied; "
          f"{elapsed:.1f} s in all")


async def check_first_kill(work, db, acked: int) -> int:
    """The store holds exactly a prefix of the stream, and it covers every acked notice;
    returns how many notices of the prefix were not acked (they come again)."""
    revisions = await ledger_revisions(db)
    position = work.position()
    prefix = 1 + max(position[(account, doc, rev)] for (account, doc), rev in revisions.items())
    assert revisions == work.revisions(prefix), "the store is not the effect of a prefix"
    expected = work.expected(prefix)
    assert await stored(db, work.trees) == expected, "stored counts differ from the prefix's"
    assert acked <= prefix, f"{acked} notices acked but only {prefix} are in the store"
    return prefix - acked
