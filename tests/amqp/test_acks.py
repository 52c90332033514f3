"""Acks of answered requests, a run of them in one frame (``svc/amqp/acks.py``), against the
real broker: what is acked stays acked once the channel is gone, what is not comes back."""

from __future__ import annotations

import uuid

import aio_pika
import pytest
from waiting import eventually

from svc.amqp.acks import AnsweredAcks


@pytest.fixture
async def deliveries(amqp_url):
    """(channel, queue name, the first n deliveries of n published) on a connection of their
    own; each basic.ack the channel sends is counted in ``channel.acks_sent``."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=100)
    queue = await channel.declare_queue(f"acks-{uuid.uuid4().hex[:8]}", auto_delete=False)
    received: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def receive(n: int) -> list[aio_pika.abc.AbstractIncomingMessage]:
        for i in range(n):
            await channel.default_exchange.publish(aio_pika.Message(str(i).encode()),
                                                   routing_key=queue.name)
        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            received.append(message)

        await queue.consume(on_message)

        async def all_received() -> bool:
            return len(received) == n

        await eventually(all_received)
        underlay = received[0].channel
        sent = underlay.basic_ack
        underlay.acks_sent = []

        async def counted(tag, multiple=False, wait=True):
            underlay.acks_sent.append((tag, multiple))
            return await sent(tag, multiple=multiple, wait=wait)

        underlay.basic_ack = counted
        return received

    try:
        yield connection, queue.name, receive
    finally:
        await connection.close()


async def left_in_queue(amqp_url, name: str) -> int:
    """After the consuming connection closed: what it did not ack is back in the queue."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        count = queue.declaration_result.message_count
        await queue.delete(if_unused=False, if_empty=False)
        return count
    finally:
        await connection.close()


async def test_the_answers_of_one_turn_go_in_one_ack(amqp_url, deliveries):
    connection, name, receive = deliveries
    messages = await receive(20)
    acks = AnsweredAcks()
    for message in messages[:15]:
        acks.answered(message)
    await acks.drain()
    assert messages[0].channel.acks_sent == [(15, True)]
    await connection.close()
    assert await left_in_queue(amqp_url, name) == 5  # the 5 not answered come back


async def test_an_answer_above_one_still_in_progress_is_acked_at_once(amqp_url, deliveries):
    """A slow request holds back no other ack (nor, through the prefetch, deliveries); the
    broker never sees a tag twice (it would close the channel)."""
    connection, name, receive = deliveries
    messages = await receive(6)
    channel = messages[0].channel
    acks = AnsweredAcks()
    for message in (messages[1], messages[2], messages[4]):  # tag 1 still being answered
        acks.answered(message)
    await acks.drain()
    assert sorted(channel.acks_sent) == [(2, False), (3, False), (5, False)]
    acks.answered(messages[0])
    await acks.drain()
    acks.answered(messages[3])
    await acks.drain()
    assert channel.acks_sent[3:] == [(1, True), (4, True)]
    assert not channel.is_closed
    await connection.close()
    assert await left_in_queue(amqp_url, name) == 1  # tag 6, never answered


async def test_a_closed_channel_takes_its_unsent_acks_with_it(amqp_url, deliveries):
    connection, name, receive = deliveries
    messages = await receive(3)
    acks = AnsweredAcks()
    await messages[0].channel.close()
    acks.answered(messages[0])
    await acks.drain()  # no error: the broker redelivers them
    await connection.close()
    assert await left_in_queue(amqp_url, name) == 3


async def test_a_delivery_given_back_is_delivered_again_and_the_runs_go_on_past_it(
        amqp_url, deliveries):
    connection, name, receive = deliveries
    messages = await receive(4)  # the consumer keeps appending to this list
    channel = messages[0].channel
    acks = AnsweredAcks()
    await acks.requeue(messages[0])  # tag 1 given back: it comes again, as tag 5
    acks.answered(messages[1])
    acks.answered(messages[2])
    await acks.drain()
    assert channel.acks_sent == [(3, True)]  # one run from tag 2, past the tag given back

    async def came_again() -> bool:
        return len(messages) == 5

    await eventually(came_again)
    again = messages[4]
    assert (again.body, again.delivery_tag, again.redelivered) == (b"0", 5, True)
    acks.answered(messages[3])
    acks.answered(again)
    await acks.drain()
    assert channel.acks_sent[1:] == [(5, True)] and not channel.is_closed
    await connection.close()
    assert await left_in_queue(amqp_url, name) == 0


async def test_an_answered_delivery_is_never_given_back_as_well(amqp_url, deliveries):
    """A failure after the answer (a metric, say) must not settle the tag a second time."""
    connection, name, receive = deliveries
    messages = await receive(2)
    channel = messages[0].channel
    acks = AnsweredAcks()
    acks.answered(messages[0])
    await acks.requeue(messages[0])  # still to be acked this turn
    await acks.drain()
    await acks.requeue(messages[0])  # acked
    acks.answered(messages[1])
    await acks.drain()
    assert channel.acks_sent == [(1, True), (2, True)] and not channel.is_closed
    await connection.close()
    assert await left_in_queue(amqp_url, name) == 0
