"""Publishing captured KAZOO messages exactly as KAZOO sent them: the same body bytes and
AMQP properties, the raw Gregorian-microseconds ``timestamp`` included.

pamqp only encodes datetimes, so this module's timestamp encoder writes a ``RawTimestamp``'s
captured 64-bit integer as it is and leaves every other value to pamqp (test side only:
frames are packed later, by the connection's writer, so the encoder stays installed).
"""

from __future__ import annotations

import base64
import datetime
from typing import Any

from aio_pika.abc import AbstractChannel
from pamqp import commands, common, encode


class RawTimestamp(datetime.datetime):
    """A datetime that carries the integer KAZOO put on the wire."""

    raw: int

    @classmethod
    def of(cls, raw: int) -> RawTimestamp:
        stamp = cls.fromtimestamp(0, tz=datetime.UTC)
        stamp.raw = raw
        return stamp


_encode_timestamp = encode.timestamp


def _timestamp(value: Any) -> bytes:
    if isinstance(value, RawTimestamp):
        return common.Struct.timestamp.pack(value.raw)
    return _encode_timestamp(value)


encode.METHODS["timestamp"] = _timestamp


def properties_of(record: dict[str, Any]) -> commands.Basic.Properties:
    """The captured properties (traffic.json fields) as pamqp sends them."""
    optional = {key: record.get(key) for key in (
        "content_type", "content_encoding", "correlation_id", "reply_to", "message_id",
        "app_id", "user_id")}
    return commands.Basic.Properties(
        **{key: value for key, value in optional.items() if value is not None},
        message_type=record.get("type"),
        headers=record.get("headers") or None,
        delivery_mode=record.get("delivery_mode"),
        priority=record.get("priority"),
        expiration=None if record.get("expiration") in (None, "None") else record["expiration"],
        timestamp=RawTimestamp.of(record["raw_timestamp"])
        if record.get("raw_timestamp") is not None else None)


def body_of(record: dict[str, Any]) -> bytes:
    return base64.b64decode(record["body_b64"])


async def publish_captured(channel: AbstractChannel, record: dict[str, Any], *,
                           exchange: str | None = None, routing_key: str | None = None
                           ) -> None:
    """One traffic.json delivery, byte for byte, to its exchange and routing key."""
    underlay = await channel.get_underlay_channel()
    await underlay.basic_publish(
        body_of(record), exchange=record["exchange"] if exchange is None else exchange,
        routing_key=record["routing_key"] if routing_key is None else routing_key,
        properties=properties_of(record), mandatory=True)
