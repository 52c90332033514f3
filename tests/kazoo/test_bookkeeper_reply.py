"""KAZOO's own ``update_resp`` (braintree, as ``braintree_update_req:reply/2`` builds it and
``kapi_bookkeepers:publish_update_resp/2`` publishes it) answers svc's ``kazoo`` bookkeeper
call: the captured body and properties, Gregorian-microseconds timestamp included; only its
``Msg-ID`` becomes the request's, as braintree copies it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import aio_pika
import pytest
from kazoo_publish import publish_captured

from svc.amqp.client import RpcClient
from svc.bookkeepers.abc import InvoiceDelivery
from svc.bookkeepers.kazoo import KazooBookkeeper
from svc.rating import Bookkeeper

EXAMPLES = Path(__file__).parent.parent / "fixtures" / "kazoo_wire" / "examples"
INVOICE = {"items": [], "activation_charges": [], "summary": {"recurring": 0, "today": 0}}


def captured(name: str) -> dict:
    return json.loads((EXAMPLES / f"bookkeepers_update_resp_{name}.json").read_text())


async def braintree(channel: aio_pika.abc.AbstractChannel, record: dict) -> None:
    """A bookkeeper app that answers every ``update_req`` with the captured reply."""
    bookkeepers = await channel.declare_exchange("bookkeepers", aio_pika.ExchangeType.TOPIC,
                                                 durable=False, auto_delete=False)
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(bookkeepers, routing_key="bookkeepers.update.request")
    captured_id = json.loads(record["body"])["Msg-ID"]

    async def answer(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        request = json.loads(message.body)
        assert request["Event-Name"] == "update_req"
        assert request["Bookkeeper-Type"] == "braintree"
        body = record["body"].replace(f'"Msg-ID":"{captured_id}"',
                                      f'"Msg-ID":"{request["Msg-ID"]}"')
        reply = {**record, "body_b64": base64.b64encode(body.encode()).decode()}
        await publish_captured(channel, reply, exchange="targeted",
                               routing_key=request["Server-ID"])
        await message.ack()

    await queue.consume(answer)


@pytest.mark.parametrize(("name", "outcome", "reason"), [
    ("success", "good_standing", None), ("error", "delinquent", "action_required")])
async def test_a_genuine_update_resp_answers_the_kazoo_bookkeeper(amqp_url, name, outcome,
                                                                  reason):
    async with await aio_pika.connect(amqp_url) as connection:
        await braintree(await connection.channel(), captured(name))
        rpc = RpcClient("services@test")
        await rpc.open(connection)
        bookkeeper = KazooBookkeeper(rpc, timeout_s=5)
        answer = await bookkeeper.deliver(InvoiceDelivery(
            "0123456789abcdef0123456789abcdef", "1", "key-1",
            Bookkeeper("braintree", "braintree", "r1"), INVOICE))
        assert (answer.outcome, answer.reason) == (outcome, reason)
        assert not connection.is_closed
