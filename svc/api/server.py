"""The HTTP API's aiohttp handlers: one per route of ``routes.ROUTES``, each running the RPC
handler of its request with that request's model, on the same server as ``/metrics``
(``ProbeServer(routes=…)``). Who may call (``svc.auth``, ``access``), the bodies KAZOO's
clients send (``bodies``), crossbar's envelope (``envelope``) and CORS (``cors``) are
modules of their own."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from .. import __version__
from ..amqp.envelope import APP_NAME, new_msg_id
from ..amqp.schemas import render
from ..auth import Authenticator, Principal, Unauthenticated
from ..auth.identity import IdentityUnavailable
from ..handlers import Handler, Rejected, rejection
from ..jsonio import dumps
from ..models.replies import ReplyFields
from ..store import InvalidInput, PlanNotFound, PlanNotOffered, Repository
from ..store.audit import Actor, acting, reason_of
from .access import authorize
from .bodies import read_json, request_data
from .cors import cors_headers, methods_of, preflight_headers
from .envelope import Meta, failure, per_field, success
from .openapi import openapi
from .routes import EDITABLE_PATH, PREFIX, ROUTES, Doc, Route

log = logging.getLogger("svc.api")
Handlers = Mapping[tuple[str, str], Handler]
# the request id a client sends is echoed as it is, within reason
MAX_REQUEST_ID = 128
EDITABLE = next(route for route in ROUTES if route.request == ("plans", "editable_req"))


class HttpApi:
    def __init__(self, repo: Repository, auth: Authenticator, max_bytes: int,
                 handlers: Callable[[], Handlers | None], node: str = "svc",
                 cors_origins: tuple[str, ...] = ("*",)) -> None:
        self.repo = repo
        self.auth = auth
        self.max_bytes = max_bytes  # SVC_MAX_MESSAGE_BYTES, as for AMQP messages
        # the RPC server's own handlers (one implementation, two doors); None while svc is
        # starting (they need the broker) or stopping
        self.handlers = handlers
        self.node = node
        self.cors_origins = cors_origins

    def routes(self) -> list[web.RouteDef]:
        document = render(openapi())

        async def openapi_json(_: web.Request) -> web.Response:
            return web.Response(body=document, content_type="application/json")

        served = [web.get("/openapi.json", openapi_json),
                  *(web.post(PREFIX + "/services/topup" + slash, self._topup)
                    for slash in ("", "/"))]
        served += [web.get(EDITABLE_PATH + slash, self._endpoint(EDITABLE, anyone=True))
                   for slash in ("", "/")]
        for route in ROUTES:  # with and without a trailing slash, as crossbar
            served += [web.route(route.method, PREFIX + route.path + slash,
                                 self._endpoint(route)) for slash in ("", "/")]
        # last: every other method or path under /v2 (preflights, 404, 405)
        served.append(web.route("*", "/v2/{tail:.*}", self._elsewhere))
        return served

    def _meta(self, request: web.Request, principal: Principal | None = None) -> Meta:
        given = request.headers.get("X-Request-ID", "").strip()
        request_id = given if 0 < len(given) <= MAX_REQUEST_ID else new_msg_id()
        return Meta(request_id, self.node, principal.token or "" if principal else "")

    def _endpoint(self, route: Route, *, anyone: bool = False) -> Callable[[web.Request], Any]:
        """``anyone``: served without a token and outside an account (KAZOO's
        ``/v2/services/editable``)."""
        async def endpoint(request: web.Request) -> web.Response:
            meta = self._meta(request)
            account_id = request.match_info.get("account_id", "")
            try:
                principal = None if anyone else await self.auth.principal(request.headers,
                                                                          request.query)
                meta = self._meta(request, principal)
                handlers = self.handlers()
                if handlers is None:
                    raise Rejected("not_ready", "svc is starting or stopping")
                assert route.access is not None
                if principal is not None:
                    await authorize(self.repo, principal, account_id, route.access,
                                    route.method)
                parsed = await self._request(route, request, meta.request_id)
                with acting(Actor("token", principal.name if principal else "anyone",
                                  reason_of(parsed))):
                    reply = await handlers[route.request](self.repo, parsed)
            except Exception as error:  # noqa: BLE001 - every failure gets an answer
                return self._failure(request, route, error, meta, account_id)
            # the reply only: the events of a change leave through the outbox
            if route.csv is not None and wants_csv(request):
                return web.Response(text=route.csv(reply), content_type="text/csv", headers={
                    "X-Request-ID": meta.request_id, **cors_headers(
                        self.cors_origins, request.headers.get("Origin"))})
            return self._json(request, 200, _success(route, reply, meta), meta)

        return endpoint

    async def _topup(self, request: web.Request) -> web.Response:
        """KAZOO's credit top-up (``cb_services`` TOPUP): svc keeps no credit ledgers yet."""
        meta = self._meta(request)
        try:
            meta = self._meta(request, await self.auth.principal(request.headers,
                                                                 request.query))
        except Unauthenticated as error:
            status, answer = failure(meta, "unauthorized", {"message": str(error)})
        else:
            status, answer = failure(meta, "not_implemented", {
                "message": "svc keeps no credit ledgers: top up in KAZOO"})
        return self._json(request, status, answer, meta)

    async def _elsewhere(self, request: web.Request) -> web.Response:
        methods = methods_of(request.path)
        meta = self._meta(request)
        if request.method == "OPTIONS":
            return web.Response(status=200, headers={
                **preflight_headers(self.cors_origins, request.headers, methods),
                "X-Request-ID": meta.request_id})
        if methods:
            status, answer = failure(meta, "method_not_allowed", {
                "message": f"{request.method} is not allowed here; allowed: "
                           f"{', '.join(methods)}"})
            response = self._json(request, status, answer, meta)
            response.headers["Allow"] = ", ".join(["OPTIONS", *methods])
            return response
        status, answer = failure(meta, "not_found", {"message": f"no route {request.path}"})
        return self._json(request, status, answer, meta)

    async def _request(self, route: Route, request: web.Request, msg_id: str) -> Any:
        """The request model, from the path, the query string and the body, each validated
        with the request model's own rules; every bad field is named."""
        violations: list[Doc] = []
        query = _validated(route.query_model, route.query_input(request.query), violations,
                           _query_path)
        body = None
        if route.body_model is not None:
            given = request_data(await read_json(request, self.max_bytes),
                                 "merge" in route.body_model.model_fields)
            body = _validated(route.body_model, route.body_input(given), violations,
                              _body_path)
        if violations:
            raise Rejected("invalid", "; ".join(f"{v['path']}: {v['rule']}"
                                                for v in violations), violations)
        return route.model.model_validate({
            "App-Name": APP_NAME, "App-Version": __version__, "Event-Category": "services",
            "Event-Name": route.request[1], "Msg-ID": msg_id,
            **route.request_fields(dict(request.match_info), query, body, request.query)})

    def _failure(self, request: web.Request, route: Route, error: Exception, meta: Meta,
                 account_id: str) -> web.Response:
        rejected = self._rejected(route, error, meta.request_id, account_id,
                                  request.match_info.get("plan_id"))
        log.info("HTTP request answered with an error: %s", rejected.reason, extra={
            "msg_id": meta.request_id, "account_id": account_id, "event": route.request[1]})
        message = route.http_paths(rejected.message)
        details = [{**v, "path": route.http_paths(v["path"])} for v in rejected.details]
        data = per_field(details) if details else {"message": message}
        status, answer = failure(meta, rejected.reason, data)
        response = self._json(request, status, answer, meta)
        if rejected.reason == "unauthorized":
            response.headers["WWW-Authenticate"] = 'Bearer realm="svc"'
        return response

    def _rejected(self, route: Route, error: Exception, msg_id: str, account_id: str,
                  plan_id: str | None) -> Rejected:
        # another reseller's plan is answered as one that does not exist (KAZOO: 404
        # bad_identifier), in the same words
        if isinstance(error, PlanNotOffered):
            return Rejected("plan_not_found", f"plan {error.plan_id} is not known")
        if plan_id is not None and isinstance(error, PlanNotFound):
            return Rejected("plan_not_found", f"plan {plan_id} is not known")
        if isinstance(error, Unauthenticated):
            return Rejected("unauthorized", str(error))
        if isinstance(error, IdentityUnavailable):
            return Rejected("store_unavailable", str(error))
        if isinstance(error, InvalidInput):  # the store's own check names the field
            return Rejected("invalid", str(error), [{"path": error.path, "rule": error.rule}])
        try:
            return rejection(error)
        except Exception:  # noqa: BLE001 - not a domain error: a bug, logged
            log.exception("HTTP request failed", extra={
                "msg_id": msg_id, "account_id": account_id, "event": route.request[1]})
            return Rejected("internal_error", f"internal error; request {msg_id} is in the "
                                              "logs")

    def _json(self, request: web.Request, status: int, answer: Doc,
              meta: Meta) -> web.Response:
        return web.Response(body=dumps(answer), status=status, content_type="application/json",
                            headers={"X-Request-ID": meta.request_id, **cors_headers(
                                self.cors_origins, request.headers.get("Origin"))})


def wants_csv(request: web.Request) -> bool:
    return request.query.get("accept") == "csv" or "text/csv" in request.headers.get(
        "Accept", "")


def _validated(model: type[BaseModel] | None, given: Any, violations: list[Doc],
               path: Callable[[tuple[int | str, ...]], str]) -> BaseModel | None:
    if model is None:
        return None
    try:
        return model.model_validate(given)
    except ValidationError as error:
        violations.extend({"path": path(e["loc"]), "kind": e["type"],
                           "rule": e["msg"].removeprefix("Value error, ")}
                          for e in error.errors())
        return None


def _body_path(loc: tuple[int | str, ...]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def _query_path(loc: tuple[int | str, ...]) -> str:
    return f"?{loc[0]}"


def _success(route: Route, reply: ReplyFields, meta: Meta) -> Doc:
    data = route.data.pick(reply)
    if route.data.paged:  # without a next_start_key, this page is the last
        return success(meta, data, page_size=len(data),
                       next_start_key=getattr(reply, "next_start_key", None))
    return success(meta, data)
