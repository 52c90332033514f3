"""Stale requests: a request whose caller has given up (sent at + expiration is
past) is neither executed nor answered, only counted; a fresh one is answered as usual."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import aio_pika
from waiting import eventually

from svc.amqp.envelope import envelope
from svc.amqp.kazoo_notices import doc_change, publish
from svc.jsonio import dumps
from svc.ops import Metrics


def expired_count(metrics: Metrics) -> float:
    return sum(sample.value for family in metrics.rpc_requests.collect()
               for sample in family.samples
               if sample.name.endswith("_total") and sample.labels["status"] == "expired")


async def test_an_expired_mutation_is_not_executed(service, client, channel):
    account = uuid.uuid4().hex
    await publish(channel, *doc_change({"_id": account, "pvt_type": "account",
                                        "pvt_tree": []}, account))
    async def known():
        return (await client.call("summary", {"Account-ID": account}))["Status"] == "success"

    await eventually(known)
    replies = await channel.declare_queue(exclusive=True)
    services = await channel.declare_exchange("services", aio_pika.ExchangeType.TOPIC,
                                              durable=False, auto_delete=False)
    request = envelope("services", "manual_set_req", "caller@test", uuid.uuid4().hex, **{
        "Server-ID": replies.name, "Account-ID": account,
        "Quantities": {"devices": {"sip_device": 9}}})
    # its caller waited 2 s, and gave up 8 s ago (a backlog after an outage)
    await services.publish(aio_pika.Message(
        dumps(request), content_type="application/json", expiration=2,
        timestamp=datetime.now(UTC) - timedelta(seconds=10)),
        routing_key="services.overrides.request")
    async def counted():
        return expired_count(service.metrics) == 1

    await eventually(counted)
    summary = (await client.call("summary", {"Account-ID": account}))["Summary"]
    assert summary["quantities"]["manual"] == {}  # not executed
    assert await replies.get(fail=False) is None  # not answered

    fresh = await client.call("manual_set", {"Account-ID": account,
                                             "Quantities": {"devices": {"sip_device": 9}}})
    assert fresh["Status"] == "success"
    assert fresh["Summary"]["quantities"]["manual"] == {"devices": {"sip_device": 9}}
