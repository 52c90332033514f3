"""A genuine KAZOO message (Gregorian-microseconds timestamp) is delivered and the connection
lives. Without ``svc.amqp.wire_tolerance`` the first test loses its
connection at the first message, as svc did in a real cluster."""

from __future__ import annotations

import asyncio
import json
import struct
from pathlib import Path

import aio_pika
import pytest
from kazoo_publish import body_of, publish_captured
from pamqp import commands, header

from svc.amqp.wire_tolerance import decode_timestamp

TRAFFIC = Path(__file__).parent.parent / "fixtures" / "kazoo_wire" / "traffic.json"


@pytest.fixture(scope="module")
def kazoo_notice() -> dict:
    return next(record for record in json.loads(TRAFFIC.read_text())
                if record["routing_key"].startswith("doc_created."))


async def test_kazoo_timestamp_is_delivered_and_the_connection_stays(amqp_url, kazoo_notice):
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await publish_captured(channel, kazoo_notice, exchange="", routing_key=queue.name)
        await channel.default_exchange.publish(aio_pika.Message(b"after"), queue.name)
        received = []
        async with queue.iterator(timeout=10) as deliveries:
            async for message in deliveries:
                received.append(message)
                await message.ack()
                if len(received) == 2:
                    break
        assert received[0].body == body_of(kazoo_notice)
        assert received[0].content_type == "application/json"
        assert received[0].timestamp is None  # Gregorian µs: no datetime holds it
        assert received[1].body == b"after"
        assert not connection.is_closed
        await asyncio.wait_for(channel.declare_queue(exclusive=True), 5)  # still usable


def test_timestamps_beyond_datetime_decode_to_none():
    assert decode_timestamp(struct.pack(">Q", 63963330924018297)) == (8, None)
    consumed, stamp = decode_timestamp(struct.pack(">Q", 1_700_000_000))
    assert consumed == 8 and stamp is not None and stamp.year == 2023
    with pytest.raises(ValueError, match="timestamp"):
        decode_timestamp(b"\x00\x01")


def test_undecodable_properties_keep_the_frame_and_what_was_decoded():
    properties = commands.Basic.Properties(content_type="application/json",
                                           headers={"x": 1}, message_id="m1")
    frame = header.ContentHeader(body_size=42, properties=properties).marshal()
    # the header table's one field type becomes 'Z', which no AMQP decoder knows
    broken = frame.replace(b"\x01xb", b"\x01xZ", 1)
    assert broken != frame
    decoded = header.ContentHeader()
    decoded.unmarshal(broken)
    assert decoded.body_size == 42
    assert decoded.properties.content_type == "application/json"
    assert decoded.properties.message_id is None  # after the bad table: left unset
