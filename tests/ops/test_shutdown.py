"""SIGTERM stops consuming, finishes in-flight work and exits cleanly, with JSON
log lines, against a real ``svc serve`` process."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import aio_pika
import pytest
from processes import SVC, child, exited, free_port
from waiting import eventually

from svc.amqp import topology
from svc.amqp.envelope import envelope, new_msg_id
from svc.jsonio import dumps, loads
from svc.settings import Settings

REQUESTS = 5_000
PLAN = {"devices": {"_all": {"rate": 2, "activation_charge": 5}}}


def quote_request(n: int) -> bytes:
    return dumps(envelope("services", "quote_req", "test@shutdown", new_msg_id(),
                          **{"Quote-Request": {
                              "plans": [{"id": "p", "vendor_id": "r", "doc": PLAN}],
                              "quantities": {"account": {"devices": {"sip_device": n}}}}}))


@pytest.mark.timeout(120)
async def test_sigterm_answers_what_it_took_and_leaves_the_rest_queued(amqp_url, tmp_path):
    port, log = free_port(), tmp_path / "svc.log"
    env = {**os.environ, "SVC_AMQP_URL": amqp_url, "SVC_STORE_URL": f"sqlite:///{tmp_path}/s.db",
           "SVC_HTTP_HOST": "127.0.0.1", "SVC_HTTP_PORT": str(port), "SVC_LOG_FORMAT": "json",
           "SVC_LOG_LEVEL": "INFO", "SVC_RPC_PREFETCH": "50", "SVC_NODE": "services@shutdown"}
    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel()
    replies = await channel.declare_queue(exclusive=True)
    # the requests wait in svc's queue before it starts, so it is busy when SIGTERM comes
    services = (await topology.declare_exchanges(channel))["services"]
    waiting = await topology.declare_rpc_queue(
        channel, Settings.model_fields["delivery_limit"].default)
    for n in range(REQUESTS):
        await services.publish(aio_pika.Message(quote_request(n), reply_to=replies.name,
                                                correlation_id=str(n)),
                               routing_key="services.quote.request")
    with child([str(SVC), "serve"], env, log) as service:
        async def answering():
            assert service.poll() is None, exited(service, log)
            return (await replies.declare()).message_count >= 10

        await eventually(answering, timeout=30)
        service.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(service.wait, 30) == 0, exited(service, log)

    answered = []
    while (message := await replies.get(no_ack=True, fail=False)) is not None:
        reply = loads(message.body)
        assert reply["Status"] == "success", reply
        answered.append(message.correlation_id)
    assert len(set(answered)) == len(answered)
    await waiting.declare()
    # every request is answered exactly once or still queued for another replica
    assert 0 < len(answered) < REQUESTS
    assert len(answered) + waiting.declaration_result.message_count == REQUESTS
    await connection.close()

    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert {line["level"] for line in lines} <= {"INFO", "WARNING"}
    assert [line["event"] for line in lines if "event" in line][-1] == "stopped"
