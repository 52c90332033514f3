"""Everything svc publishes: events and dead letters (confirmed), RPC replies (not)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange
from pamqp.commands import Basic

from ..jsonio import dumps
from ..store.outbox import OutboxEntry
from .envelope import CONTENT_TYPE, envelope
from .topology import DEAD_LETTER_EXCHANGE

DEAD_LETTER_REASON = "x-svc-dead-letter-reason"
MAX_QUEUE_NAME_BYTES = 255  # AMQP's short string: no queue has a longer name


class Publisher:
    """On a channel with publisher confirms: each publish returns once the broker has it."""

    def __init__(self, exchanges: dict[str, AbstractExchange], node: str,
                 on_dead_letter: Callable[[str], None] | None = None) -> None:
        self.exchanges = exchanges
        self.node = node
        self.on_dead_letter = on_dead_letter  # metrics hook: the reason code

    async def event(self, event: OutboxEntry, msg_id: str) -> None:
        """An outbox entry; its key is the ``Msg-ID``, the same on every relay of it."""
        message = envelope("services", event.name, self.node, msg_id, **event.fields)
        await self.exchanges["services"].publish(
            aio_pika.Message(dumps(message), content_type=CONTENT_TYPE),
            routing_key=f"services.{event.name}.{event.account_id}")

    async def dead_letter(self, body: bytes, routing_key: str, reason: str, *, code: str,
                          headers: dict[str, Any] | None = None) -> None:
        """``reason`` (free text) travels in the header; ``code`` (from a closed set) is
        what gets counted."""
        if self.on_dead_letter:
            self.on_dead_letter(code)
        await self.exchanges[DEAD_LETTER_EXCHANGE].publish(
            aio_pika.Message(body, content_type=CONTENT_TYPE,
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                             headers={**(headers or {}), DEAD_LETTER_REASON: reason}),
            routing_key=routing_key)


class Replies:
    """RPC replies, on the channel the requests come in on, which has no publisher confirms.

    A reply is a transient message to its caller's own queue: a broker that loses it loses
    it whether it confirmed it or not, and the caller's timeout covers both. What a confirm
    would add is a wait for a frame per reply, which cost svc (and the broker) more than
    answering the request did. The reply is written before the request's ack, on the same
    channel, so the broker has the reply before it forgets the request; a connection lost
    before that takes both, and the request is delivered again.
    """

    def __init__(self, channel: AbstractChannel) -> None:
        self.channel = channel

    async def send(self, message: dict[str, Any], server_id: str | None, reply_to: str | None,
                   correlation_id: str | None) -> bool:
        """Kazoo's way (``targeted``/``Server-ID``) first, else plain AMQP ``reply_to``;
        False when the request can be answered nowhere (a ``Server-ID`` too long to name a
        queue names none)."""
        if server_id and len(server_id.encode()) <= MAX_QUEUE_NAME_BYTES:
            exchange, routing_key = "targeted", server_id
        elif reply_to:
            exchange, routing_key = "", reply_to
        else:
            return False
        channel = await self.channel.get_underlay_channel()
        await channel.basic_publish(
            dumps(message), exchange=exchange, routing_key=routing_key, wait=False,
            properties=Basic.Properties(content_type=CONTENT_TYPE, delivery_mode=1,
                                        correlation_id=correlation_id))
        return True
