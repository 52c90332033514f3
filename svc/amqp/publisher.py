"""Everything svc publishes: replies, events, dead letters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange

from ..jsonio import dumps
from ..store.outbox import OutboxEntry
from .envelope import CONTENT_TYPE, envelope
from .topology import DEAD_LETTER_EXCHANGE

DEAD_LETTER_REASON = "x-svc-dead-letter-reason"


class Publisher:
    def __init__(self, channel: AbstractChannel, exchanges: dict[str, AbstractExchange],
                 node: str, on_dead_letter: Callable[[str], None] | None = None) -> None:
        self.channel = channel
        self.exchanges = exchanges
        self.node = node
        self.on_dead_letter = on_dead_letter  # metrics hook: the reason code

    async def reply(self, message: dict[str, Any], server_id: str | None,
                    reply_to: str | None, correlation_id: str | None) -> bool:
        """Kazoo's way (``targeted``/``Server-ID``) first, else plain AMQP ``reply_to``;
        False when the request can be answered nowhere."""
        body = aio_pika.Message(dumps(message), content_type=CONTENT_TYPE,
                                correlation_id=correlation_id)
        if server_id:
            await self.exchanges["targeted"].publish(body, routing_key=server_id)
        elif reply_to:
            await self.channel.default_exchange.publish(body, routing_key=reply_to)
        else:
            return False
        return True

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
