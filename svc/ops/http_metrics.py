"""Every HTTP request counted and timed (``svc_http_requests_total``,
``svc_http_request_duration_seconds``), the API's 400s and 401s as much as the probes.

Labels come from closed sets: the route is the template it matched
(``/v2/accounts/{account_id}/services``), never the raw path, which holds ids; a request no
route matched is ``unmatched``. Methods are a closed set already: aiohttp's parser answers
400 to a method it does not know, before any route."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from .metrics import Metrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNMATCHED = "unmatched"


def route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return UNMATCHED if resource is None else resource.canonical


def http_metrics(metrics: Metrics) -> Callable[[web.Request, Handler],
                                               Awaitable[web.StreamResponse]]:
    @web.middleware
    async def observed(request: web.Request, handler: Handler) -> web.StreamResponse:
        started, status = time.perf_counter(), 500  # what escapes as an exception is a 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as raised:  # the router's own 404 and 405
            status = raised.status
            raise
        finally:
            metrics.http(route_of(request), request.method, status,
                         time.perf_counter() - started)

    return observed
