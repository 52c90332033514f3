"""Wiring: settings → store → repository → broker → consumers; and a clean stop."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import aio_pika
from aio_pika.abc import AbstractRobustConnection

from .amqp import topology
from .amqp.notices import NoticeConsumer
from .amqp.publisher import Publisher
from .amqp.rpc import RpcServer
from .settings import Settings
from .store import DocumentStore, Repository, store_from_url

log = logging.getLogger("svc")


@dataclass
class Service:
    settings: Settings
    store: DocumentStore | None = None
    repo: Repository | None = None
    connection: AbstractRobustConnection | None = None
    consumers: list[tuple[aio_pika.abc.AbstractQueue, str]] = field(default_factory=list)
    notices: NoticeConsumer | None = None

    async def start(self) -> None:
        settings = self.settings
        self.store = store_from_url(settings.store_url)
        await self.store.open()
        self.repo = Repository(self.store, master_account_id=settings.master_account_id,
                               sync_buffer_s=settings.sync_buffer_s)
        self.connection = await aio_pika.connect_robust(settings.amqp_url,
                                                        client_properties={
                                                            "connection_name": settings.node})
        rpc_channel = await self.connection.channel()
        await rpc_channel.set_qos(prefetch_count=settings.rpc_prefetch)
        exchanges = await topology.declare_exchanges(rpc_channel)
        await topology.declare_dead_letters(rpc_channel)
        publisher = Publisher(rpc_channel, exchanges, settings.node)
        rpc_queue = await topology.declare_rpc_queue(rpc_channel)
        rpc = RpcServer(self.repo, publisher, settings.node, settings.max_message_bytes)
        self.consumers.append((rpc_queue, await rpc_queue.consume(rpc.on_message)))

        notice_channel = await self.connection.channel()
        await notice_channel.set_qos(prefetch_count=max(settings.rpc_prefetch, 400))
        notice_queue = await topology.declare_doc_changes_queue(notice_channel,
                                                                 settings.delivery_limit)
        self.notices = NoticeConsumer(self.repo, publisher, settings.number_classifiers)
        self.consumers.append((notice_queue,
                               await notice_queue.consume(self.notices.on_message)))
        log.info("svc serving", extra={"event": "started"})

    async def stop(self) -> None:
        """Stop consuming, finish what is in flight, close (SIGTERM, SPEC §9)."""
        for queue, tag in self.consumers:
            await queue.cancel(tag)
        self.consumers.clear()
        if self.notices is not None:
            await self.notices.flush()
        if self.connection is not None:
            await self.connection.close()
        if self.store is not None:
            await self.store.close()
        log.info("svc stopped", extra={"event": "stopped"})


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    service = Service(settings)
    await service.start()
    try:
        await stop.wait()
    finally:
        await service.stop()
