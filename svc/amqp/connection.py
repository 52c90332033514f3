"""Connections to a list of brokers (the nodes of one RabbitMQ cluster, as KAZOO lists its
``amqp_uri``): connect to the first that answers, move to the next when the broker in use is
lost, and go round the list with back-off until one answers.

aio-pika's robust connection reconnects to one URL and restores channels, queues, bindings
and consumers; ``FailoverConnection`` keeps all of that and only chooses the URL of each
attempt. aio-pika reports every lost connection and every failed attempt through
``_on_connection_close``, which is where the next URL is chosen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aio_pika
import aiormq.exceptions
from aio_pika.abc import AbstractIncomingMessage
from yarl import URL

log = logging.getLogger("svc.amqp")
CONNECT_TIMEOUT_S = 5.0  # a node that does not answer at all is given up this soon
RETRY_FIRST_S = 0.5  # after a whole round of the list failed; doubled each round
RETRY_MAX_S = 5.0


# what a publish or an ack raises when its connection went away under it
CONNECTION_LOST = (aiormq.exceptions.AMQPConnectionError,
                   aiormq.exceptions.ChannelInvalidStateError, ConnectionError)
Consumer = Callable[[AbstractIncomingMessage], Awaitable[None]]


def split_urls(value: str) -> list[str]:
    """``SVC_AMQP_URL``: one broker URL, or several separated by commas."""
    return [url.strip() for url in value.split(",") if url.strip()]


def host_of(url: str | URL) -> str:
    """``host:port`` of a broker URL: what may be logged (never its credentials)."""
    parsed = URL(str(url))
    port = parsed.port or (5671 if parsed.scheme == "amqps" else 5672)
    return f"{parsed.host}:{port}"


class FailoverConnection(aio_pika.RobustConnection):
    """A robust connection over a list of broker URLs. Each failed attempt moves on to the
    next URL at once; a whole round of failures waits ``RETRY_FIRST_S``, doubling up to
    ``RETRY_MAX_S``. A connection that was up and is lost tries the next URL at once."""

    def __init__(self, urls: Sequence[str], *, keep_trying: bool = True,
                 on_change: Callable[[FailoverConnection], None] | None = None,
                 **kwargs: Any) -> None:
        if not urls:
            raise ValueError("no broker URL")
        self.urls = [URL(url) for url in urls]
        self._index = 0
        self._failures = 0  # attempts failed since the connection was last up
        self.keep_trying = keep_trying
        self.on_change = on_change  # told when ``up`` changes, or an attempt fails
        self.up = False  # connected, with every channel, queue and consumer restored
        self.ever_up = False
        self.host = host_of(self.urls[0])  # of the last connection or attempt
        self.reason = ""  # why the last connection or attempt ended
        super().__init__(self.urls[0], fail_fast=False, **kwargs)
        self.reconnect_interval = 0.0
        # without keep_trying: set once every URL failed before the first connection
        self._gave_up: asyncio.Future[None] = self.loop.create_future()

    @property
    def hosts(self) -> list[str]:
        return [host_of(url) for url in self.urls]

    async def connect(self, timeout: float | None = CONNECT_TIMEOUT_S) -> None:
        """Until connected (``keep_trying``), else until one round of the list failed:
        then ``ConnectionError``."""
        connecting = asyncio.ensure_future(super().connect(timeout))
        try:
            await asyncio.wait({connecting, self._gave_up},
                               return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when this wait is cancelled (a stop during the start)
            if not connecting.done():
                connecting.cancel()
                await asyncio.gather(connecting, return_exceptions=True)
        if not connecting.cancelled():
            return connecting.result()
        await self.close()
        raise ConnectionError(f"no broker answered: {', '.join(self.hosts)}")

    async def _on_connected(self) -> None:
        await super()._on_connected()  # channels restored; raises if they could not be
        self._failures = 0
        self.reconnect_interval = 0.0
        self.up = self.ever_up = True
        self.host = host_of(self.url)
        self._notify()

    async def _on_connection_close(self, closing: asyncio.Future) -> None:
        was_up, self.up = self.up, False
        self.host = host_of(self.url)
        if not closing.cancelled() and closing.exception() is not None:
            self.reason = str(closing.exception()) or type(closing.exception()).__name__
        if not was_up:
            self._failures += 1
        self._index = (self._index + 1) % len(self.urls)
        self.url = self.urls[self._index]
        rounds, within = divmod(self._failures, len(self.urls))
        self.reconnect_interval = (0.0 if was_up or within or not rounds
                                   else min(RETRY_FIRST_S * 2 ** (rounds - 1), RETRY_MAX_S))
        if (not self.keep_trying and not self.ever_up and rounds
                and not self._gave_up.done()):
            self._gave_up.set_result(None)
        await super()._on_connection_close(closing)
        if not self.close_called:
            self._notify()

    def _notify(self) -> None:
        if self.on_change is not None:
            self.on_change(self)


async def connect_once(urls: Sequence[str], **kwargs: Any) -> FailoverConnection:
    """For a client: the first broker of ``urls`` that answers, else ``ConnectionError``."""
    connection = FailoverConnection(urls, keep_trying=False, **kwargs)
    await connection.connect()
    return connection


class BrokerLink:
    """svc's connections to the brokers (one per role), seen as one link for readiness and
    for the log: one line when the link goes down, one when every connection is back."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.urls = list(urls)
        self.connections: list[FailoverConnection] = []
        self._state = "starting"  # starting | unreachable | up | lost
        self._up = asyncio.Event()

    @property
    def is_up(self) -> bool:
        return self._up.is_set()

    async def wait_up(self) -> None:
        await self._up.wait()

    async def connect(self, name: str) -> FailoverConnection:
        """A connection named ``name`` (shown by ``rabbitmqctl list_connections``), once
        it is up: this waits, trying the brokers, for as long as none answers."""
        connection = FailoverConnection(self.urls, on_change=self._changed,
                                        client_properties={"connection_name": name})
        self.connections.append(connection)  # before connecting: closed at stop whatever
        await connection.connect()
        return connection

    def _changed(self, _: FailoverConnection) -> None:
        state = self._state
        if all(connection.up for connection in self.connections):
            self._up.set()
            self._state = "up"
            if state in ("unreachable", "lost"):
                log.warning("broker %s: %s", "reconnected" if state == "lost" else "connected",
                            self._hosts(up=True), extra={"event": "broker_up"})
            return
        self._up.clear()
        if state == "starting" and not any(c.ever_up for c in self.connections):
            self._state = "unreachable"
            log.warning("broker unreachable: %s; retrying with back-off (%s)",
                        ", ".join(host_of(url) for url in self.urls), self._reasons(),
                        extra={"event": "broker_down"})
        elif state == "up":
            self._state = "lost"
            log.warning("broker connection lost: %s (%s)", self._hosts(up=False),
                        self._reasons(), extra={"event": "broker_down"})

    def _reasons(self) -> str:
        return "; ".join(sorted({c.reason for c in self.connections if not c.up and c.reason}))

    def _hosts(self, *, up: bool) -> str:
        return ", ".join(sorted({c.host for c in self.connections if c.up == up}))

    async def close(self) -> None:
        for connection in self.connections:
            try:
                await asyncio.wait_for(connection.close(), CONNECT_TIMEOUT_S)
            except Exception:  # noqa: BLE001, S112 - gone already, or its broker is
                continue


def redelivered_if_lost(consume: Consumer) -> Consumer:
    """A consumer whose reply or ack may go with its connection: the broker then delivers the
    message again (it was never acked), so there is nothing to report beyond the link's own
    line about the lost broker."""
    async def consuming(message: AbstractIncomingMessage) -> None:
        try:
            await consume(message)
        except CONNECTION_LOST as error:
            log.debug("delivery left to the broker to redeliver: %r", error)
    return consuming
