"""The broker stops and comes back while 10,000 doc-change notices flow: afterwards the stored
quantities equal an exact recount, nothing lost and
nothing counted twice, though the outage made notices be redelivered and published again.

The broker is a private RabbitMQ node (``private_broker``): stopping the shared one would
break the other runs on it.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from faultkit import (
    ResilientPublisher,
    check_store,
    drain_dead_letters,
    free_port,
    normal,
    notice_outcomes,
    queue_state,
    wait_for,
    wait_until_consuming,
    workload,
)

from svc.amqp import topology
from svc.amqp.client import ServicesClient

NOTICES = 10_000
# notices published per second: the stream lasts 16 s and the outage strikes in it, though
# ``rabbitmqctl stop_app`` takes seconds to act on a busy machine
RATE = 600
STOP_AFTER = 2_000  # notices published when the broker is told to stop
OUTAGE_S = 3.0  # how long the broker stays down (a fault's duration, not a wait for work)


@pytest.mark.timeout(180)
async def test_broker_restart_mid_stream_keeps_quantities_exact(private_broker, svc_processes,
                                                                tmp_path):
    work = workload(NOTICES, seed=1)
    db = tmp_path / "svc.db"
    port = free_port()
    svc = svc_processes(private_broker.url, db, tmp_path / "svc.log", "services@fault-a",
                        http_port=str(port))
    svc.start()
    await wait_until_consuming(private_broker.url)

    publisher = ResilientPublisher(private_broker.url)
    publishing = asyncio.create_task(
        publisher.publish([(n.routing_key, n.body) for n in work.notices], deadline_s=120,
                          rate=RATE))
    await wait_for(lambda: _published(publisher, STOP_AFTER), 60, "publishing under way",
                   interval=0.01)
    began = time.monotonic()
    await asyncio.to_thread(private_broker.ctl, "stop_app")
    await asyncio.sleep(OUTAGE_S)
    await asyncio.to_thread(private_broker.ctl, "start_app")
    await asyncio.to_thread(private_broker.await_startup)
    async with asyncio.timeout(120):
        await publishing
    assert publisher.first_failure_at is not None, "the outage did not interrupt publishing"
    assert svc.running, svc.tail()

    # svc reconnects, re-declares its topology and consumes again
    await wait_until_consuming(private_broker.url, timeout=60)
    expected = work.expected()
    async with ServicesClient(private_broker.url) as client:
        async def settled():
            for account_id, quantities in expected.items():
                reply = await client.call("summary", {"Account-ID": account_id}, timeout=5)
                if reply.get("Status") != "success":
                    return False
                got = reply["Summary"]["quantities"]
                if (normal(got["account"]), normal(got["cascade"])) != (
                        quantities["account"], quantities["cascade"]):
                    return False
            return True

        await wait_for(settled, 90, "quantities settled after the restart", interval=0.25)
    recovered_in = time.monotonic() - began

    async def all_acked() -> bool:  # no delivery left hanging on svc's new channel
        return await asyncio.to_thread(_counts, private_broker) == (0, 0)

    await wait_for(all_acked, 30, "the doc-change queue empty with nothing unacked", 0.5)
    # every notice was read at least once and none applied twice; what came again
    # (redelivered after lost acks, published twice after lost confirms) or came after a
    # newer revision (a batch re-published after some of it was returned unroutable while
    # svc had not re-bound its queue) was ignored by revision
    outcomes = await notice_outcomes(port)
    applied, ignored = outcomes.get("applied", 0), outcomes.get("ignored", 0)
    assert applied <= NOTICES <= applied + ignored, outcomes
    assert svc.terminate() == 0, svc.tail()

    assert (await queue_state(private_broker.url, topology.DOC_CHANGES_QUEUE))[0] == 0
    assert await drain_dead_letters(private_broker.url, expected=0, settle_s=0.2) == []
    await check_store(db, work)
    print(f"\nbroker restart: {NOTICES:,} notices; publishing failed after "
          f"{publisher.first_failure_at:,} confirmed, {publisher.retries} retries; quantities "
          f"settled {recovered_in:.1f} s after the stop began; {applied:,} notices applied, "
          f"{ignored} deliveries ignored by revision")


def _counts(broker) -> tuple[int, int]:
    """(ready, unacknowledged) of the doc-change queue."""
    out = broker.ctl("list_queues", "-q", "--no-table-headers", "name", "messages_ready",
                     "messages_unacknowledged")
    for line in out.splitlines():
        name, ready, unacked = line.split()
        if name == topology.DOC_CHANGES_QUEUE:
            return int(ready), int(unacked)
    raise AssertionError(f"no {topology.DOC_CHANGES_QUEUE}: {out!r}")


async def _published(publisher: ResilientPublisher, count: int) -> bool:
    return publisher.published >= count


@pytest.mark.timeout(150)
async def test_a_lost_and_regained_broker_logs_one_line_each_way(private_broker, svc_processes,
                                                                 tmp_path):
    """And SIGTERM stops svc within its drain deadline while the broker is gone."""
    port, drain_s = free_port(), 5.0
    log = tmp_path / "svc.log"
    svc = svc_processes(private_broker.url, tmp_path / "svc.db", log, "services@relog",
                        http_port=str(port), log_level="INFO", log_format="text",
                        drain_timeout_s=str(drain_s)).start()
    await wait_until_consuming(private_broker.url)

    def lines(text: str) -> list[str]:
        return [line for line in log.read_text().splitlines() if text in line]

    async def logged(text: str, count: int = 1) -> bool:
        assert svc.running, svc.tail()
        return len(lines(text)) >= count

    await asyncio.to_thread(private_broker.ctl, "stop_app")
    await wait_for(lambda: logged("broker connection lost"), 30, "the loss logged")
    status, down = await _readyz(port)
    assert status == 503 and "amqp" in down, down
    await asyncio.sleep(2)  # several attempts to reconnect: none of them logs a line
    await asyncio.to_thread(private_broker.ctl, "start_app")
    await asyncio.to_thread(private_broker.await_startup)
    await wait_for(lambda: logged("broker reconnected"), 30, "the return logged")
    await wait_for(lambda: _ready(port), 30, "ready again")
    assert len(lines("broker connection lost")) == len(lines("broker reconnected")) == 1, \
        svc.tail()
    host = f"127.0.0.1:{private_broker.port}"
    assert host in lines("broker connection lost")[0] and host in lines("broker reconnected")[0]

    await asyncio.to_thread(private_broker.ctl, "stop_app")
    await wait_for(lambda: logged("broker connection lost", 2), 30, "the second loss logged")
    stopping = time.monotonic()
    assert svc.terminate(timeout=drain_s + 10) == 0, svc.tail()
    stopped_in = time.monotonic() - stopping
    assert stopped_in <= drain_s, f"stopped {stopped_in:.1f} s after SIGTERM\n{svc.tail()}"
    output = log.read_text()
    assert "Traceback" not in output and "guest:guest" not in output, output
    assert lines("svc stopped"), output


async def _readyz(port: int) -> tuple[int, list[str]]:
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{port}/readyz", timeout=aiohttp.ClientTimeout(total=5)) as got:
        return got.status, (await got.json())["down"]


async def _ready(port: int) -> bool:
    return (await _readyz(port))[0] == 200
