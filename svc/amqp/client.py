"""Kazoo-style RPC clients: svc's own (``ServicesClient``, for the CLI and for other Python
apps to import) and the one the ``kazoo`` bookkeeper adapter uses.

Replies come back on a private queue bound to ``targeted`` under its own name, which goes in
``Server-ID``, and are matched by ``Msg-ID`` (docs/amqp-api.md).
"""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from ..jsonio import dumps, loads
from ..models.requests import REQUESTS
from .connection import connect_once, split_urls
from .envelope import CONTENT_TYPE, envelope, new_msg_id

CATEGORY_OF = {name: category for category, name in REQUESTS}


def request_name(name: str) -> str:
    """``summary`` and ``summary_req`` both name the summary request."""
    return name if name.endswith("_req") else f"{name}_req"


class RpcClient:
    """Requests on one channel of an open connection, replies matched by ``Msg-ID``."""

    def __init__(self, node: str) -> None:
        self.node = node
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}

    async def open(self, connection: AbstractConnection) -> None:
        self.channel: AbstractChannel = await connection.channel()
        targeted = await self.channel.declare_exchange(
            "targeted", aio_pika.ExchangeType.DIRECT, durable=False, auto_delete=False)
        self.queue = await self.channel.declare_queue(
            f"{self.node.split('@')[0]}-replies-{new_msg_id()[:12]}", exclusive=True,
            auto_delete=True)
        await self.queue.bind(targeted, routing_key=self.queue.name)
        await self.queue.consume(self._on_reply, no_ack=True)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        try:
            reply = loads(message.body)
        except ValueError:
            return
        future = self._pending.pop(reply.get("Msg-ID"), None) if isinstance(reply, dict) else None
        if future is not None and not future.done():
            future.set_result(reply)

    async def request(self, exchange: str, routing_key: str, category: str, name: str,
                      fields: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Publish one request and wait for its reply; ``TimeoutError`` if none comes."""
        msg_id = new_msg_id()
        message = envelope(category, name, self.node, msg_id,
                           **{"Server-ID": self.queue.name, **fields})
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        try:
            target = self._exchanges.get(exchange)
            if target is None:  # declared once: a declare is a broker round trip
                target = self._exchanges[exchange] = await self.channel.declare_exchange(
                    exchange, aio_pika.ExchangeType.TOPIC, durable=False, auto_delete=False)
            # the request is stale once this caller gives up: the broker drops it
            # at that age, and svc skips one it receives later (sent at + expiration)
            await target.publish(aio_pika.Message(
                dumps(message), content_type=CONTENT_TYPE, expiration=timeout,
                timestamp=datetime.now(UTC)), routing_key=routing_key)
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(msg_id, None)


class ServicesClient:
    """``async with ServicesClient(url) as client: await client.call("summary", {...})``;
    ``url`` may list several brokers, comma-separated (``SVC_AMQP_URL``): the first that
    answers is used, and the next ones when it is lost."""

    def __init__(self, amqp_url: str, node: str | None = None) -> None:
        self.amqp_url = amqp_url
        self.rpc = RpcClient(node or f"svc-client@{socket.gethostname()}")

    async def __aenter__(self) -> ServicesClient:
        self.connection = await connect_once(split_urls(self.amqp_url))
        await self.rpc.open(self.connection)
        self.channel, self.queue = self.rpc.channel, self.rpc.queue
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.connection.close()

    async def call(self, name: str, fields: dict[str, Any] | None = None,
                   category: str | None = None, timeout: float = 10) -> dict[str, Any]:
        event = request_name(name)
        category = category or CATEGORY_OF.get(event, event.removesuffix("_req"))
        return await self.rpc.request("services", f"services.{category}.request", "services",
                                      event, fields or {}, timeout)
