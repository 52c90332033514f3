"""Wiring: settings → store → repository → broker → consumers and the sync loop; and a
clean stop (SPEC §9: stop consuming, finish in-flight work, close)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import aio_pika
import aiohttp
from aio_pika.abc import AbstractQueue, AbstractRobustConnection

from .amqp import topology
from .amqp.client import RpcClient
from .amqp.notices import NoticeConsumer
from .amqp.publisher import Publisher
from .amqp.rpc import RpcServer
from .bookkeepers.http import HttpBookkeeper
from .bookkeepers.kazoo import KazooBookkeeper
from .bookkeepers.local import LocalBookkeeper
from .bookkeepers.router import BookkeeperRouter
from .handlers import HANDLERS, sync_handler
from .settings import Settings
from .store import DocumentStore, Repository, store_from_url
from .sync.loop import SyncLoop

log = logging.getLogger("svc")


@dataclass
class Service:
    settings: Settings
    store: DocumentStore | None = None
    repo: Repository | None = None
    connection: AbstractRobustConnection | None = None
    http: aiohttp.ClientSession | None = None
    bookkeepers: BookkeeperRouter | None = None
    sync: SyncLoop | None = None
    notices: NoticeConsumer | None = None
    consumers: list[tuple[AbstractQueue, str]] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        settings = self.settings
        self.store = store_from_url(settings.store_url)
        await self.store.open()
        self.repo = Repository(self.store, master_account_id=settings.master_account_id,
                               sync_buffer_s=settings.sync_buffer_s)
        self.connection = await aio_pika.connect_robust(
            settings.amqp_url, client_properties={"connection_name": settings.node})
        channel = await self.connection.channel()
        await channel.set_qos(prefetch_count=settings.rpc_prefetch)
        exchanges = await topology.declare_exchanges(channel)
        await topology.declare_dead_letters(channel)
        publisher = Publisher(channel, exchanges, settings.node)

        self.sync = self._sync_loop(publisher, await self._bookkeeper_rpc())
        handlers = {**HANDLERS, ("sync", "sync_req"): sync_handler(self.sync.sync_now)}
        rpc = RpcServer(handlers, self.repo, publisher, settings.node,
                        settings.max_message_bytes)
        rpc_queue = await topology.declare_rpc_queue(channel)
        self.consumers.append((rpc_queue, await rpc_queue.consume(rpc.on_message)))

        notice_channel = await self.connection.channel()
        await notice_channel.set_qos(prefetch_count=max(settings.rpc_prefetch, 400))
        notice_queue = await topology.declare_doc_changes_queue(notice_channel,
                                                                 settings.delivery_limit)
        self.notices = NoticeConsumer(self.repo, publisher, settings.number_classifiers)
        self.consumers.append((notice_queue,
                               await notice_queue.consume(self.notices.on_message)))
        self.tasks.append(asyncio.create_task(
            self.sync.run(settings.sync_interval_s, self.stopping)))
        log.info("svc serving", extra={"event": "started"})

    async def _bookkeeper_rpc(self) -> RpcClient:
        assert self.connection is not None
        rpc = RpcClient(self.settings.node)
        await rpc.open(self.connection)
        return rpc

    def _sync_loop(self, publisher: Publisher, rpc: RpcClient) -> SyncLoop:
        settings = self.settings
        assert self.repo is not None
        self.http = aiohttp.ClientSession()
        http = {bookkeeper_id: HttpBookkeeper(entry.url or "", entry.secret or "",
                                              entry.timeout_s or settings.bookkeeper_timeout_s,
                                              self.http)
                for bookkeeper_id, entry in settings.bookkeepers.items()
                if entry.adapter == "http"}
        self.bookkeepers = BookkeeperRouter(LocalBookkeeper(self.repo), http,
                                            KazooBookkeeper(rpc, settings.bookkeeper_timeout_s))
        return SyncLoop(self.repo, self.bookkeepers.adapter_for, publisher.event,
                        owner=settings.node, batch=settings.sync_batch,
                        lease_s=settings.sync_lease_s, retry_base_s=settings.sync_retry_base_s,
                        retry_max_s=settings.sync_retry_max_s,
                        delinquent_recheck_s=settings.delinquent_recheck_s)

    async def stop(self) -> None:
        for queue, tag in self.consumers:
            with contextlib.suppress(Exception):  # the broker may be gone already
                await queue.cancel(tag)
        self.consumers.clear()
        self.stopping.set()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.notices is not None:
            await self.notices.flush()
        if self.http is not None:
            await self.http.close()
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
