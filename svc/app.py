"""Wiring: settings → store → repository → broker → consumers and the sync loop; and a
clean stop (stop consuming, finish in-flight work, close)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aio_pika.abc import AbstractChannel, AbstractQueue

from .amqp import topology
from .amqp.client import RpcClient
from .amqp.connection import BrokerLink, FailoverConnection, redelivered_if_lost
from .amqp.notices import NoticeConsumer
from .amqp.publisher import Publisher, Replies
from .amqp.rpc import RpcServer
from .api import HttpApi
from .auth.setup import authenticator
from .bookkeepers.http import HttpBookkeeper
from .bookkeepers.kazoo import KazooBookkeeper
from .bookkeepers.local import LocalBookkeeper
from .bookkeepers.router import BookkeeperRouter
from .delivery_actions import delivery_actions
from .handlers import HANDLERS, editable_handler, reconcile_handler, sync_handler
from .ingest.importer import Importer
from .ingest.rereads import PendingRereads, Rereader
from .ops import Metrics, ProbeServer, Readiness
from .ops.memory import trim_memory
from .ops.startup import serving
from .outbox import OutboxRelay
from .settings import Settings, SettingsError
from .sources import DocumentSource
from .sources.couch import CouchSource
from .store import DocumentStore, Repository, StoreError, store_from_url
from .store.leases import adopt_legacy_schedules
from .sync.loop import SyncLoop
from .sync.stuck import stuck_deliveries

log = logging.getLogger("svc")
READINESS_PROBE_TIMEOUT_S = 2.0
LAST_RELAY_S = 5.0
TRIM_MEMORY_S = 30.0  # freed memory goes back to the system at most this late
BROKER_STEP_S = 2.0  # a step of the stop that needs the broker, when it is there


@dataclass
class Service:
    settings: Settings
    store: DocumentStore | None = None
    repo: Repository | None = None
    broker: BrokerLink | None = None
    http: aiohttp.ClientSession | None = None
    metrics: Metrics = field(default_factory=Metrics)
    probes: ProbeServer | None = None
    rpc: RpcServer | None = None
    channels: list[AbstractChannel] = field(default_factory=list)
    bookkeepers: BookkeeperRouter | None = None
    sync: SyncLoop | None = None
    notices: NoticeConsumer | None = None
    source: DocumentSource | None = None
    rereads: PendingRereads | None = None
    relay: OutboxRelay | None = None
    _relaying: asyncio.Task[None] | None = None
    _relay_stop: asyncio.Event = field(default_factory=asyncio.Event)
    consumers: list[tuple[AbstractQueue, str]] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        settings = self.settings
        self.store = store_from_url(settings.store_url)
        try:
            await self.store.open()
        except (OSError, sqlite3.Error, StoreError) as error:  # a path it cannot write, …
            raise SettingsError(f"SVC_STORE_URL: cannot open the store: {error}") from None
        await adopt_legacy_schedules(self.store)
        self.repo = Repository(self.store, master_account_id=settings.master_account_id,
                               sync_buffer_s=settings.sync_buffer_s)
        await self.repo.repoint_pending()  # what a stopped process left half-way
        self.rereads = PendingRereads(self.store, settings.couch_reread_s,
                                      settings.couch_reread_max_s)
        # The HTTP API runs the RPC server's own handlers, which exist once the
        # broker is up: until then, and once stopping, it answers 503.
        if settings.couch_url is not None:
            self.source = CouchSource(settings.couch_url.get_secret_value(),
                                      settings.couch_timeout_s)
        api = HttpApi(self.repo, authenticator(settings, self.source),
                      settings.max_message_bytes,
                      lambda: None if self.rpc is None or self.stopping.is_set()
                      else self.rpc.handlers, settings.node, settings.cors_origins)
        self.probes = ProbeServer(self.metrics, self.readiness, self.refresh_metrics,
                                  settings.http_host, settings.http_port, routes=api.routes())
        try:
            await self.probes.start()
        except OSError as error:  # taken, or not an address of this host: nothing to serve
            await self.probes.stop()
            await self.store.close()
            raise SettingsError(f"SVC_HTTP_PORT: cannot listen on {settings.http_host}:"
                                f"{settings.http_port}: {os.strerror(error.errno or 0)}"
                                ) from None
        described = serving(settings.http_host, self.probes.port, settings.store_url,
                            settings.amqp_url, settings.node)
        log.info(described.line(), extra={"event": "started", **described.fields()})
        # the HTTP port answers from here on (/readyz names amqp until the broker is up);
        # what follows waits, trying the brokers with back-off, for as long as none answers
        self.broker = BrokerLink(settings.amqp_urls)
        # One connection per role, so that a fault in one (a connection closed by the broker,
        # a channel error) never stops the others: outbound publishing and
        # bookkeeper RPC, RPC requests, document-change ingest.
        outbound = await self._connect("outbound")
        channel = await outbound.channel()
        exchanges = await topology.declare_exchanges(channel)
        await topology.declare_dead_letters(channel)
        publisher = Publisher(exchanges, settings.node,
                              on_dead_letter=self.metrics.dead_letter)
        self.sync = self._sync_loop(await self._bookkeeper_rpc(outbound))
        self.relay = OutboxRelay(self.store, publisher.event, broker=self.broker)

        # no publisher confirms: replies only (svc/amqp/publisher.py, Replies)
        rpc_channel = await (await self._connect("rpc")).channel(publisher_confirms=False)
        await rpc_channel.set_qos(prefetch_count=settings.rpc_prefetch)
        # After a broker restart aio-pika restores channels in no fixed order: each consuming
        # channel re-declares the exchanges too, so that its consumer never runs (and has
        # events, replies or dead letters published) before the exchanges exist again.
        await topology.declare_exchanges(rpc_channel)
        importer = (Importer(self.repo, self.source, settings.number_classifiers)
                    if self.source else None)
        handlers = {**HANDLERS, ("sync", "sync_req"): sync_handler(self.sync.sync_now),
                    ("plans", "editable_req"): editable_handler(
                        tuple(c.name for c in settings.number_classifiers)),
                    **delivery_actions(self.sync),
                    ("reconcile", "reconcile_req"): reconcile_handler(importer)}
        # replies go out on the channel the requests came in on: a request svc could take
        # can be answered, and one whose connection is lost unanswered is delivered again
        # (replies on another connection, lost alone, would leave it unacked and unanswered)
        self.rpc = RpcServer(handlers, self.repo, Replies(rpc_channel), publisher, settings.node,
                             settings.max_message_bytes, observe=self.metrics.rpc)
        rpc_queue = await topology.declare_rpc_queue(rpc_channel, settings.delivery_limit)
        self.consumers.append((rpc_queue, await rpc_queue.consume(
            redelivered_if_lost(self.rpc.on_message))))

        notice_channel = await (await self._connect("ingest")).channel()
        await notice_channel.set_qos(prefetch_count=max(settings.rpc_prefetch, 400))
        await topology.declare_exchanges(notice_channel)
        notice_queue = await topology.declare_doc_changes_queue(notice_channel,
                                                                 settings.delivery_limit)
        self.channels = [channel, rpc_channel, notice_channel]
        self.notices = NoticeConsumer(self.repo, publisher, settings.number_classifiers,
                                      observe=self.metrics.doc_change,
                                      max_bytes=settings.max_message_bytes,
                                      source=self.source, rereads=self.rereads,
                                      lag_budget_s=settings.couch_lag_budget_s)
        self.consumers.append((notice_queue,
                               await notice_queue.consume(self.notices.on_message)))
        self.tasks.append(asyncio.create_task(
            self.sync.run(settings.sync_interval_s, self.stopping)))
        if self.source is not None:  # documents a lagging replica had at an older revision
            rereader = Rereader(self.rereads, self.source, self.notices.resubmit)
            self.tasks.append(asyncio.create_task(
                rereader.run(settings.couch_reread_s, self.stopping)))
        self._relaying = asyncio.create_task(self.relay.run(self._relay_stop))
        self.tasks.append(asyncio.create_task(trim_memory(TRIM_MEMORY_S, self.stopping)))
        # what the start made (modules, models, schemas) lives as long as the process: out of
        # the collector's generations, a full collection no longer walks it (under load each
        # one stopped the loop for about 100 ms)
        gc.freeze()

    async def _last_relay(self) -> None:
        """What the last changes wrote to the outbox goes out before the connections close,
        if the broker takes it in time; the rest waits in the store for the next start."""
        self._relay_stop.set()
        if self._relaying is not None:
            await self._relaying
        if self.relay is not None and self._broker_up():  # else nothing would take it
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.relay.relay_once(), LAST_RELAY_S)

    async def _connect(self, role: str) -> FailoverConnection:
        assert self.broker is not None
        return await self.broker.connect(f"{self.settings.node} {role}")

    @property
    def connections(self) -> list[FailoverConnection]:
        return self.broker.connections if self.broker else []

    async def _bookkeeper_rpc(self, connection: FailoverConnection) -> RpcClient:
        rpc = RpcClient(self.settings.node)
        await rpc.open(connection)
        return rpc

    def _sync_loop(self, rpc: RpcClient) -> SyncLoop:
        settings = self.settings
        assert self.repo is not None
        self.http = aiohttp.ClientSession()
        http = {bookkeeper_id: HttpBookkeeper(entry.url or "", entry.secrets[0],
                                              entry.timeout_s or settings.bookkeeper_timeout_s,
                                              self.http)
                for bookkeeper_id, entry in settings.bookkeepers.items()
                if entry.adapter == "http"}
        self.bookkeepers = BookkeeperRouter(LocalBookkeeper(self.repo), http,
                                            KazooBookkeeper(rpc, settings.bookkeeper_timeout_s),
                                            observe=self.metrics.sync_attempt,
                                            configured=settings.bookkeepers)
        return SyncLoop(self.repo, self.bookkeepers.adapter_for,
                        owner=settings.node, batch=settings.sync_batch,
                        lease_s=settings.sync_lease_s, retry_base_s=settings.sync_retry_base_s,
                        concurrency=settings.sync_concurrency,
                        retry_max_s=settings.sync_retry_max_s,
                        delinquent_recheck_s=settings.delinquent_recheck_s)

    def _broker_up(self) -> bool:
        return self.broker is not None and self.broker.is_up

    async def readiness(self) -> Readiness:
        down = []
        if not self._broker_up():
            down.append("amqp")
        try:
            assert self.store is not None
            await asyncio.wait_for(self.store.get("accounts", "svc-readiness"),
                                   READINESS_PROBE_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - whatever the failure, the store is not usable
            down.append("store")
        if self.source is not None:
            try:
                await asyncio.wait_for(self.source.ping(), READINESS_PROBE_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - down, timing out or refusing us
                down.append("couch")
        if self.stopping.is_set() or not self.consumers or any(
                channel.is_closed for channel in self.channels):
            down.append("consumers")
        return Readiness(not down, {"status": "not_ready" if down else "ready", "down": down,
                                    "bookkeepers": self._bookkeepers_report(),
                                    "deliveries": await self._stuck_report(),
                                    "pending_rereads": await self._pending_rereads()})

    async def _stuck_report(self) -> dict[str, Any] | None:
        """Stuck deliveries are shown, not counted as unreadiness: another replica could do
        no better, and taking every replica out of service would stop all billing."""
        try:
            assert self.store is not None and self.repo is not None
            stuck = await asyncio.wait_for(stuck_deliveries(
                self.store, self.repo.clock(), self.settings.stuck_delivery_s),
                READINESS_PROBE_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - the store's own entry says it is down
            return None
        return stuck.as_json(self.settings.stuck_delivery_s)

    async def _pending_rereads(self) -> int | None:
        """Information only: documents waiting for a lagging replica are no failure (None:
        the store did not answer)."""
        try:
            assert self.rereads is not None
            return await asyncio.wait_for(self.rereads.count(), READINESS_PROBE_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - the store is named down already
            return None

    def _bookkeepers_report(self) -> list[dict[str, Any]]:
        """Each configured bookkeeper (and each cluster bookkeeper seen) with its last
        result: the seed's "is the bookkeeper loaded and running?"."""
        adapters = {"default_bookkeeper": "local",
                    **{key: entry.adapter for key, entry in self.settings.bookkeepers.items()}}
        last = self.bookkeepers.last if self.bookkeepers else {}
        report = []
        for bookkeeper_id in sorted({*adapters, *last}):
            result = last.get(bookkeeper_id)
            report.append({"id": bookkeeper_id, "adapter": adapters.get(bookkeeper_id, "kazoo"),
                           "last_result": None if result is None else {
                               "outcome": result["outcome"], "reason": result["reason"],
                               "type": result["type"],
                               "at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                   time.gmtime(result["at"]))}})
        return report

    async def refresh_metrics(self) -> None:
        """The gauges that are read rather than counted, at scrape time."""
        self.metrics.broker_connected.set(1 if self._broker_up() else 0)
        assert self.store is not None
        count, oldest_change = await self.store.dirty_stats()
        assert self.repo is not None
        self.metrics.set_dirty(count, oldest_change, self.repo.clock())
        stuck = await stuck_deliveries(self.store, self.repo.clock(),
                                       self.settings.stuck_delivery_s)
        self.metrics.stuck_deliveries.set(stuck.count)
        self.metrics.oldest_unsettled_delivery_age.set(stuck.oldest_age_s)
        assert self.rereads is not None
        self.metrics.pending_rereads.set(await self.rereads.count())

    async def stop(self) -> None:
        self.stopping.set()  # /readyz turns 503 first, so no new work is routed here
        for queue, tag in self.consumers:
            # a channel whose broker is gone would wait for it to come back: its consumers
            # went with it anyway
            if self._broker_up():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(queue.cancel(tag), BROKER_STEP_S)
        self.consumers.clear()
        # requests being answered and syncs in flight share one deadline; a sync still
        # waiting for its bookkeeper then is abandoned (its delivery record keeps the retry
        # safe), so a bookkeeper that never answers cannot hold the stop
        draining = []
        if self.rpc is not None:
            draining.append(asyncio.wait_for(self.rpc.drain(), self.settings.drain_timeout_s))
        if self.sync is not None:
            draining.append(self.sync.abandon(self.settings.drain_timeout_s))
        await asyncio.gather(*draining, return_exceptions=True)
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.notices is not None:
            await self.notices.flush()
        await self._last_relay()
        if self.http is not None:
            await self.http.close()
        if self.source is not None:
            await self.source.close()
        if self.broker is not None:
            await self.broker.close()
        if self.store is not None:
            await self.store.close()
        if self.probes is not None:
            await self.probes.stop()
        log.info("svc stopped", extra={"event": "stopped"})


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    service = Service(settings)
    # the start waits for a broker for as long as none answers: a stop ends that wait too
    starting = asyncio.create_task(service.start())
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # a failed start raises here
            await stopped
    except topology.QueueMismatch as error:  # a broker-side fix, not a fault to retry
        log.error("%s", error, extra={"event": "start_failed"})
        raise SystemExit(2) from None
    except SettingsError:  # refused before serving, having undone what it opened
        starting = None
        raise
    finally:
        for task in (starting, stopped):
            if task is not None:
                task.cancel()
        await asyncio.gather(stopped, *([starting] if starting else []),
                             return_exceptions=True)
        if starting is not None:
            await service.stop()
