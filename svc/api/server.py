"""The HTTP API's aiohttp handlers (SPEC §15): one per route of ``routes.ROUTES``, each
running the RPC handler of its request with that request's model, on the same server as
``/metrics`` (``ProbeServer(routes=…)``).

Every answer is KAZOO's envelope: ``{"data": …, "status": "success"}``, or ``{"status":
"error", "error": <Reason>, "message": …, "data": {"details": [{path, rule}]}}``, with the
Reason codes of the RPCs and an HTTP status for each (``STATUS``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from .. import __version__
from ..amqp.envelope import APP_NAME, new_msg_id
from ..amqp.schemas import render
from ..handlers import Handler, Rejected, rejection
from ..jsonio import NumberOutOfBounds, dumps, loads
from ..models.replies import ReplyFields
from ..settings import ApiToken
from ..store import InvalidInput, Repository
from ..store.audit import Actor, acting, reason_of
from .openapi import openapi
from .routes import PREFIX, ROUTES, Doc, Route
from .tokens import Tokens, admit

log = logging.getLogger("svc.api")
Handlers = Mapping[tuple[str, str], Handler]

# Reason -> HTTP status; any other Reason is input that breaks a rule: 400 (SPEC §15). 402 is
# never an error: a dry run answers 200 with its quote.
STATUS = {
    "unauthorized": 401,
    "forbidden": 403,  # a plan that is not the account's reseller's
    "master_account": 403,  # the master is always a reseller
    "account_not_found": 404,  # also every account outside the caller's tree
    "plan_not_found": 404,
    "delivery_not_found": 404,  # also a delivery of another account
    "not_assigned": 404,  # DELETE /services/{plan_id} of a plan the account does not have
    "conflict": 409,
    "too_large": 413,
    "store_unavailable": 503,
    "not_ready": 503,
    "internal_error": 500,
}


class HttpApi:
    def __init__(self, repo: Repository, tokens: Mapping[str, ApiToken], max_bytes: int,
                 handlers: Callable[[], Handlers | None]) -> None:
        self.repo = repo
        self.tokens = Tokens(tokens)
        self.max_bytes = max_bytes  # SVC_MAX_MESSAGE_BYTES, as for AMQP messages
        # the RPC server's own handlers (one implementation, two doors); None while svc is
        # starting (they need the broker) or stopping
        self.handlers = handlers

    def routes(self) -> list[web.RouteDef]:
        document = render(openapi())

        async def openapi_json(_: web.Request) -> web.Response:
            return web.Response(body=document, content_type="application/json")

        return [web.get("/openapi.json", openapi_json),
                *(web.route(route.method, PREFIX + route.path, self._endpoint(route))
                  for route in ROUTES)]

    def _endpoint(self, route: Route) -> Callable[[web.Request], Any]:
        async def endpoint(request: web.Request) -> web.Response:
            msg_id = new_msg_id()
            account_id = request.match_info["account_id"]
            try:
                caller = self.tokens.caller(request.headers)
                handlers = self.handlers()
                if handlers is None:
                    raise Rejected("not_ready", "svc is starting or stopping")
                await admit(self.repo, caller, account_id)
                parsed = await self._request(route, request, msg_id)
                with acting(Actor("token", caller.name, reason_of(parsed))):
                    reply = await handlers[route.request](self.repo, parsed)
            except Exception as error:  # noqa: BLE001 - every failure gets an answer
                return self._failure(route, error, msg_id, account_id)
            # the reply only: the events of a change leave through the outbox
            if route.csv is not None and wants_csv(request):
                return web.Response(text=route.csv(reply), content_type="text/csv",
                                    headers={"X-Request-ID": msg_id})
            return _json(200, _success(route, reply), msg_id)

        return endpoint

    async def _request(self, route: Route, request: web.Request, msg_id: str) -> Any:
        """The request model, from the path, the query string and the body, each validated
        with the request model's own rules; every bad field is named."""
        violations: list[Doc] = []
        query = _validated(route.query_model, dict(request.query), violations, _query_path)
        body = None
        if route.body_model is not None:
            body = _validated(route.body_model, await self._body(request), violations,
                              _body_path)
        if violations:
            raise Rejected("invalid", "; ".join(f"{v['path']}: {v['rule']}"
                                                for v in violations), violations)
        return route.model.model_validate({
            "App-Name": APP_NAME, "App-Version": __version__, "Event-Category": "services",
            "Event-Name": route.request[1], "Msg-ID": msg_id,
            **route.request_fields(dict(request.match_info), query, body)})

    async def _body(self, request: web.Request) -> Any:
        """The JSON body, read no further than SVC_MAX_MESSAGE_BYTES (before any parsing);
        no body is ``{}``; KAZOO's ``{"data": {…}}`` is unwrapped (its other keys, such as
        ``accept_charges``, are KAZOO's request envelope)."""
        too_large = Rejected("too_large", f"the body exceeds SVC_MAX_MESSAGE_BYTES "
                                          f"({self.max_bytes} bytes)")
        if (request.content_length or 0) > self.max_bytes:
            raise too_large
        try:
            await request.content.readexactly(self.max_bytes + 1)
        except asyncio.IncompleteReadError as complete:  # the whole body, within the limit
            raw = complete.partial
        else:
            raise too_large
        if not raw.strip():
            return {}
        try:
            body = loads(raw)
        except NumberOutOfBounds as error:
            raise Rejected("invalid", str(error), [{"path": error.path, "rule": error.rule}]
                           ) from None
        except (ValueError, RecursionError) as error:  # RecursionError: nested too deep
            raise Rejected("invalid", f"the body is not valid JSON: {error}") from None
        if not isinstance(body, dict):
            raise Rejected("invalid", "the body must be a JSON object")
        try:  # JSON allows what svc's encoder (orjson) refuses; the handlers encode their input
            dumps(body)
        except TypeError as error:  # an unpaired surrogate in a string
            raise Rejected("invalid", f"the body holds a value svc cannot encode: {error}"
                           ) from None
        return body["data"] if isinstance(body.get("data"), dict) else body

    def _failure(self, route: Route, error: Exception, msg_id: str,
                 account_id: str) -> web.Response:
        if isinstance(error, InvalidInput):  # the store's own check names the field
            rejected = Rejected("invalid", str(error), [{"path": error.path,
                                                         "rule": error.rule}])
        else:
            try:
                rejected = rejection(error)
            except Exception:  # noqa: BLE001 - not a domain error: a bug, logged
                log.exception("HTTP request failed", extra={
                    "msg_id": msg_id, "account_id": account_id, "event": route.request[1]})
                rejected = Rejected("internal_error", f"internal error; request {msg_id} "
                                                      "is in the logs")
        log.info("HTTP request answered with an error: %s", rejected.reason, extra={
            "msg_id": msg_id, "account_id": account_id, "event": route.request[1]})
        details = [{**v, "path": route.http_paths(v["path"])} for v in rejected.details]
        answer = {"status": "error", "error": rejected.reason,
                  "message": route.http_paths(rejected.message),
                  "data": {"details": details} if details else {}}
        response = _json(STATUS.get(rejected.reason, 400), answer, msg_id)
        if rejected.reason == "unauthorized":
            response.headers["WWW-Authenticate"] = 'Bearer realm="svc"'
        return response


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
        violations.extend({"path": path(e["loc"]),
                           "rule": e["msg"].removeprefix("Value error, ")}
                          for e in error.errors())
        return None


def _body_path(loc: tuple[int | str, ...]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def _query_path(loc: tuple[int | str, ...]) -> str:
    return f"?{loc[0]}"


def _success(route: Route, reply: ReplyFields) -> Doc:
    data = route.data.pick(reply)
    if route.data.paged:  # without a next_start_key, this page is the last
        return {"data": data, "status": "success", "page_size": len(data),
                "next_start_key": getattr(reply, "next_start_key", None)}
    return {"data": data, "status": "success"}


def _json(status: int, answer: Doc, msg_id: str) -> web.Response:
    # X-Request-ID: the Msg-ID of the request, as the log lines about it carry it
    return web.Response(body=dumps(answer), status=status, content_type="application/json",
                        headers={"X-Request-ID": msg_id})
