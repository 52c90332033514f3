"""``/metrics``, ``/healthz`` and ``/readyz``, served by aiohttp inside the
service's own event loop, so a stuck loop shows as a failing liveness probe. The same server
takes the routes of the HTTP API (one host and port for both)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from .http_metrics import http_metrics
from .metrics import Metrics

log = logging.getLogger("svc.http")
HEARTBEAT_S = 1.0


@dataclass(frozen=True)
class Readiness:
    ready: bool
    body: dict[str, Any]  # what is down, and each bookkeeper's last result


class ProbeServer:
    def __init__(self, metrics: Metrics, readiness: Callable[[], Awaitable[Readiness]],
                 refresh: Callable[[], Awaitable[None]], host: str, port: int,
                 stuck_after_s: float = 10.0,
                 routes: Iterable[web.AbstractRouteDef] = ()) -> None:
        self.metrics = metrics
        self.readiness = readiness
        self.refresh = refresh  # gauges read from the store at scrape time
        self.host = host
        self.requested_port = port
        self.stuck_after_s = stuck_after_s
        self.routes = list(routes)
        self._runner: web.AppRunner | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._beat = 0.0

    @property
    def port(self) -> int:
        """The bound port (``SVC_HTTP_PORT=0`` picks a free one)."""
        assert self._runner is not None
        return self._runner.addresses[0][1]

    async def start(self) -> None:
        app = web.Application(middlewares=[http_metrics(self.metrics)])
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.add_routes(self.routes)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.requested_port).start()
        self._beat = asyncio.get_running_loop().time()
        self._heartbeat = asyncio.create_task(self._beating())

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        if self._runner is not None:
            await self._runner.cleanup()

    async def _beating(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._beat = loop.time()
            await asyncio.sleep(HEARTBEAT_S)

    async def _healthz(self, _: web.Request) -> web.Response:
        # the heartbeat task runs only when the loop does: a long silence means it was stuck
        silent = asyncio.get_running_loop().time() - self._beat
        stuck = silent > self.stuck_after_s
        return web.json_response({"status": "stuck" if stuck else "ok",
                                  "heartbeat_age_s": round(silent, 3)},
                                 status=503 if stuck else 200)

    async def _readyz(self, _: web.Request) -> web.Response:
        readiness = await self.readiness()
        return web.json_response(readiness.body, status=200 if readiness.ready else 503)

    async def _metrics(self, _: web.Request) -> web.Response:
        try:
            await self.refresh()
        except Exception:  # noqa: BLE001 - a scrape still shows every other metric
            log.warning("metrics refresh failed", exc_info=True)
        return web.Response(body=self.metrics.exposition(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})
