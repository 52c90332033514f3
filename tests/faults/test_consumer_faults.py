"""The fault paths of the doc-change consumer and the RPC server, in-process and
deterministic (the broker tests beside this file hit them only when the timing is right):
a delivery whose channel died with the broker, a publisher that cannot publish, and input
that breaks the JSON parser or encoder rather than the schema. Where a delivery must really
come again, the broker is the real one."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aio_pika
import pytest
from aiormq.exceptions import ChannelInvalidStateError
from waiting import eventually

from svc.amqp.kazoo_notices import doc_change
from svc.amqp.notices import NoticeConsumer
from svc.amqp.publisher import Replies
from svc.amqp.rpc import RpcServer, answer
from svc.handlers import HANDLERS
from svc.jsonio import dumps, loads
from svc.quantities import DEFAULT_CLASSIFIERS
from svc.store import Repository

ACCOUNT = "0123456789abcdef0123456789abcdef"


class Delivery:
    def __init__(self, body: bytes, channel_open: bool = True) -> None:
        self.body = body
        self.routing_key = "doc_created.x.device.d"
        self.channel_open = channel_open
        self.acked = self.requeued = False

    async def ack(self) -> None:
        if not self.channel_open:
            raise ChannelInvalidStateError("the channel closed with the broker")
        self.acked = True

    async def nack(self, requeue: bool = True) -> None:
        if not self.channel_open:
            raise ChannelInvalidStateError("the channel closed with the broker")
        self.requeued = requeue


class Publisher:
    def __init__(self, up: bool = True) -> None:
        self.up = up
        self.dead: list[tuple[bytes, str]] = []

    async def dead_letter(self, body: bytes, routing_key: str, reason: str, *, code: str,
                          headers: dict[str, Any] | None = None) -> None:
        if not self.up:
            raise ChannelInvalidStateError("publisher channel not restored yet")
        self.dead.append((body, reason))


def device(n: int) -> bytes:
    return dumps(doc_change({"_id": f"d{n}", "pvt_type": "device"}, ACCOUNT, 1)[1])


async def devices(repo: Repository) -> int:
    services = await repo.services(ACCOUNT)
    return services["quantities"]["account"].get("devices", {}).get("sip_device", 0)


async def test_a_lost_ack_leaves_the_rest_of_the_batch_acked(repo):
    """A batch holding a delivery of the channel that died with the broker and deliveries
    of the new one: the new ones are acked, the old one comes again and is ignored."""
    publisher = Publisher(up=False)  # and dead letters cannot be published either
    consumer = NoticeConsumer(repo, publisher, DEFAULT_CLASSIFIERS, batch=3)
    old, *new = [Delivery(device(0), channel_open=False), Delivery(device(1)),
                 Delivery(device(2))]
    for delivery in (old, *new):
        await consumer.on_message(delivery)  # the third one writes the batch
    await asyncio.sleep(0.05)  # the linger task finds nothing left
    assert all(delivery.acked for delivery in new) and not old.acked
    assert await devices(repo) == 3

    again = Delivery(old.body)  # the broker's redelivery on the new channel
    await consumer.on_message(again)
    await consumer.flush()
    assert again.acked and await devices(repo) == 3


async def test_a_dead_letter_that_cannot_be_published_is_requeued(repo):
    consumer = NoticeConsumer(repo, Publisher(up=False), DEFAULT_CLASSIFIERS)
    poison = Delivery(b'{"Event-Name": "doc_frobbed"}')
    await consumer.on_message(poison)  # no exception, no delivery left hanging
    assert poison.requeued and not poison.acked


@pytest.mark.parametrize(("body", "reason"), [
    (b"[" * 1_500 + b"]" * 1_500, "RecursionError: maximum recursion depth exceeded"),
    (dumps({**doc_change({"_id": "d1", "pvt_type": "device"}, ACCOUNT, 1)[1],
            "Type": {"nested": "object"}}), "Type: must be a string"),
    (dumps(doc_change({"_id": "d1", "pvt_type": "device", "pad": "x" * 5_000}, ACCOUNT, 1)[1]),
     "exceeds SVC_MAX_MESSAGE_BYTES (4096)"),
])
async def test_notices_that_break_the_parser_or_the_limits_are_dead_lettered(repo, body, reason):
    publisher = Publisher()
    consumer = NoticeConsumer(repo, publisher, DEFAULT_CLASSIFIERS, max_bytes=4096)
    delivery = Delivery(body)
    await consumer.on_message(delivery)
    assert delivery.acked and len(publisher.dead) == 1
    assert reason in publisher.dead[0][1]
    assert await repo.services(ACCOUNT) is None


def request(**fields: Any) -> dict[str, Any]:
    return {"Event-Category": "services", "Event-Name": "summary_req", "App-Name": "t",
            "App-Version": "1", "Msg-ID": "m1", "Server-ID": "q", **fields}


async def test_requests_too_deep_to_parse_or_to_echo_still_get_an_error_reply():
    too_deep = b"[" * 5_000 + b"]" * 5_000
    reply = await answer(HANDLERS, None, too_deep, "n", 1 << 20)  # type: ignore[arg-type]
    assert reply.outcome == "invalid" and "not valid JSON" in reply.message["Error-Message"]
    dumps(reply.message)

    nested: Any = "x"
    for _ in range(300):  # parses; deeper than orjson writes, so it cannot be echoed
        nested = [nested]
    body = json.dumps(request(**{"Account-ID": nested})).encode()
    reply = await answer(HANDLERS, None, body, "n", 1 << 20)  # type: ignore[arg-type]
    assert reply.outcome == "invalid" and reply.server_id == "q"
    assert "Account-ID: Input should be a valid string" in reply.message["Error-Message"]
    assert reply.message["Msg-ID"] == "m1" and "Request" not in reply.message
    dumps(reply.message)


async def test_a_request_whose_dead_letter_cannot_be_published_comes_again(repo, amqp_url):
    """A request with no reply address is dead-lettered on the outbound connection; while
    that one is down, the RPC channel gives the request back (no reply, no ack), and the
    broker delivers it again until the dead letter goes out."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=False)  # as svc's RPC channel
        queue = await channel.declare_queue("requests", auto_delete=True)
        dead_letters = Publisher(up=False)
        server = RpcServer(HANDLERS, repo, Replies(channel), dead_letters,  # type: ignore[arg-type]
                           "services@test", 1 << 20)
        deliveries: list[bool] = []

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            deliveries.append(message.redelivered)
            if len(deliveries) == 3:
                dead_letters.up = True  # the outbound connection is back
            await server.on_message(message)

        await queue.consume(on_message)
        unanswerable = {k: v for k, v in request().items() if k != "Server-ID"}
        await channel.default_exchange.publish(aio_pika.Message(dumps(unanswerable)),
                                               routing_key=queue.name)

        async def dead_lettered() -> bool:
            return bool(dead_letters.dead)

        await eventually(dead_lettered)
        await server.drain()
        assert deliveries == [False, True, True]
        assert len(dead_letters.dead) == 1 and "no reply address" in dead_letters.dead[0][1]
        assert (await channel.declare_queue(queue.name, passive=True)
                ).declaration_result.message_count == 0  # acked: not delivered again
    finally:
        await connection.close()


async def test_a_request_whose_reply_fails_unexpectedly_is_given_back(repo, amqp_url):
    """A failure no rule foresaw (here the reply's publish, once) leaves no delivery unacked
    holding a prefetch slot: the request is given back and answered when it comes again."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=False)
        requests = await channel.declare_queue("requests", auto_delete=True)
        replies = await channel.declare_queue("q", auto_delete=True)  # the Server-ID's queue
        await replies.bind(await channel.declare_exchange(
            "targeted", aio_pika.ExchangeType.DIRECT, durable=False, auto_delete=False), "q")
        send, failures = Replies(channel), []

        class FailingOnce(Replies):
            async def send(self, *args: Any) -> bool:
                if not failures:
                    failures.append(args)
                    raise TypeError("str required, received <class 'int'>")
                return await send.send(*args)

        server = RpcServer(HANDLERS, repo, FailingOnce(channel), Publisher(),  # type: ignore[arg-type]
                           "services@test", 1 << 20)
        await requests.consume(server.on_message)
        await channel.default_exchange.publish(
            aio_pika.Message(dumps(request(**{"Account-ID": ACCOUNT}))), routing_key=requests.name)

        reply = await eventually(lambda: replies.get(fail=False))
        await server.drain()
        assert len(failures) == 1 and loads(reply.body)["Reason"] == "account_not_found"
        assert (await channel.declare_queue(requests.name, passive=True)
                ).declaration_result.message_count == 0  # answered and acked
    finally:
        await connection.close()
