"""The RPC server: every request gets an answer, never silence.

``answer`` is the whole decision (decode, size, envelope, schema, dispatch, reply shape) with
no AMQP in it; ``RpcServer`` feeds it deliveries, publishes the reply, and acks after it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError

from ..handlers import Handler, Rejected, rejection
from ..jsonio import dumps, loads
from ..models.requests import REQUESTS, response_name
from ..store import Repository, StoreUnavailable
from ..store.audit import Actor, acting, reason_of
from .acks import AnsweredAcks
from .connection import CONNECTION_LOST
from .envelope import envelope
from .publisher import Publisher, Replies

log = logging.getLogger("svc.rpc")
BY_NAME = {name: (category, model) for (category, name), model in REQUESTS.items()}


@dataclass(frozen=True)
class Answer:
    message: dict[str, Any]
    server_id: str | None
    outcome: str  # success | error (domain) | invalid (generic error reply)
    category: str
    event: str  # a known request name, else "unknown"


def _invalid(node: str, request: Any, name: str, problem: str, *, echo: bool = True) -> Answer:
    fields: dict[str, Any] = {"Error-Message": problem}
    if echo:
        fields["Request"] = request
    msg_id = request.get("Msg-ID") if isinstance(request, dict) else None
    server_id = request.get("Server-ID") if isinstance(request, dict) else None
    category, event = (BY_NAME[name][0], name) if name in BY_NAME else ("unknown", "unknown")
    message = envelope("error", response_name(name), node, msg_id, **fields)
    if not _encodable(message):  # e.g. nested deeper than the JSON encoder goes: no echo
        message = envelope("error", response_name(name), node,
                           msg_id if isinstance(msg_id, str) else None, **{
                               "Error-Message": problem})
    return Answer(message, server_id if isinstance(server_id, str) else None, "invalid",
                  category, event)


def _encodable(message: dict[str, Any]) -> bool:
    try:
        dumps(message)
    except TypeError:  # orjson.JSONEncodeError
        return False
    return True


def _field_errors(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '$'}: {e['msg']}"
                     for e in error.errors())


# What a reply needs, read from a body that is too large to parse or does not parse: the
# reply still reaches its caller, and nothing is parsed.
_ENVELOPE_FIELD = re.compile(rb'"(Msg-ID|Server-ID|Event-Name)"\s*:\s*"([^"\\]{1,255})"')


def _envelope_of(body: bytes) -> dict[str, str]:
    found: dict[str, str] = {}
    for match in _ENVELOPE_FIELD.finditer(body):
        found.setdefault(match.group(1).decode(), match.group(2).decode(errors="replace"))
    return found


async def answer(handlers: dict[tuple[str, str], Handler], repo: Repository, body: bytes,
                 node: str, max_bytes: int) -> Answer:
    if len(body) > max_bytes:  # before parsing: a large body costs nothing
        fields = _envelope_of(body)
        return _invalid(node, fields, fields.get("Event-Name") or "unknown_req",
                        f"body of {len(body)} bytes exceeds SVC_MAX_MESSAGE_BYTES "
                        f"({max_bytes})", echo=False)
    try:
        request = loads(body)
    except (ValueError, RecursionError) as error:  # RecursionError: nested too deep
        fields = _envelope_of(body)
        return _invalid(node, fields, fields.get("Event-Name") or "unknown_req",
                        f"body is not valid JSON: {error}", echo=False)
    if not isinstance(request, dict):
        return _invalid(node, request, "unknown_req", "body must be a JSON object")
    name = request.get("Event-Name") if isinstance(request.get("Event-Name"), str) else ""
    if request.get("Event-Category") != "services":
        return _invalid(node, request, name or "unknown_req",
                        "Event-Category: must be \"services\"")
    if name not in BY_NAME:
        return _invalid(node, request, name or "unknown_req",
                        f"Event-Name: unknown request {name!r}; known: {', '.join(BY_NAME)}")
    category, model = BY_NAME[name]
    try:
        parsed = model.model_validate(request)
    except ValidationError as error:
        return _invalid(node, request, name, _field_errors(error))
    fields: dict[str, Any]
    try:
        with acting(Actor("amqp", "/".join(filter(None, (parsed.app_name, parsed.node))),
                          reason_of(parsed))):
            reply = await handlers[(category, name)](repo, parsed)
        fields, outcome = {"Status": "success", **reply.wire()}, "success"
    except StoreUnavailable as error:
        fields, outcome = {"Status": "error", "Reason": "store_unavailable",
                           "Message": str(error)}, "error"
    except Exception as error:  # noqa: BLE001 - any failure still gets an answer
        try:
            rejected = rejection(error)
        except Exception:
            log.exception("request failed", extra={"msg_id": parsed.msg_id, "event": name})
            rejected = Rejected("internal_error", f"{type(error).__name__}: {error}")
        fields = {"Status": "error", "Reason": rejected.reason, "Message": rejected.message,
                  "Details": rejected.details or None}
        outcome = "error"
    if outcome == "error":
        log.info("request answered with an error: %s", fields["Reason"], extra={
            "msg_id": parsed.msg_id, "account_id": getattr(parsed, "account_id", None),
            "event": name})
    message = envelope("services", response_name(name), node, parsed.msg_id, **fields)
    return Answer(message, parsed.server_id, outcome, category, name)


Observe = Callable[[str, str, str, float], None]  # category, event, outcome, seconds
CATEGORIES = frozenset(category for category, _ in REQUESTS)
# AMQP timestamps are whole seconds: a request is stale one second after its caller's deadline
TIMESTAMP_GRACE_S = 1.0


def expired(message: AbstractIncomingMessage, now: float) -> bool:
    """Sent with an ``expiration`` (the caller's timeout) and a ``timestamp``, and older."""
    if message.expiration is None or message.timestamp is None:
        return False
    sent = message.timestamp.timestamp()
    return now > sent + float(message.expiration) + TIMESTAMP_GRACE_S


def category_of(routing_key: str | None) -> str:
    """``services.<category>.request`` → the category, if it is one (a closed label set)."""
    parts = (routing_key or "").split(".")
    return parts[1] if len(parts) == 3 and parts[1] in CATEGORIES else "unknown"


class RpcServer:
    def __init__(self, handlers: dict[tuple[str, str], Handler], repo: Repository,
                 replies: Replies, dead_letters: Publisher, node: str, max_bytes: int,
                 observe: Observe | None = None) -> None:
        self.handlers = handlers
        self.repo = repo
        self.replies = replies
        self.dead_letters = dead_letters
        self.node = node
        self.max_bytes = max_bytes
        self.observe = observe
        self._acks = AnsweredAcks()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def drain(self) -> None:
        """Wait for the requests being answered (after the consumer is cancelled)."""
        await self._idle.wait()
        await self._acks.drain()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self._in_flight += 1
        self._idle.clear()
        try:
            await self._answer(message)
        except CONNECTION_LOST:
            raise  # the broker delivers it again (redelivered_if_lost)
        except Exception:  # noqa: BLE001 - never left unacked, holding a prefetch slot
            log.exception("request not answered: given back to the broker, which "
                          "dead-letters it after SVC_DELIVERY_LIMIT deliveries")
            await self._acks.requeue(message)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def _answer(self, message: AbstractIncomingMessage) -> None:
        started = time.perf_counter()
        if expired(message, time.time()):
            self._acks.answered(message)  # its caller has given up: not executed, not answered
            if self.observe:
                self.observe(category_of(message.routing_key), "unknown", "expired",
                             time.perf_counter() - started)
            return
        result = await answer(self.handlers, self.repo, message.body, self.node,
                              self.max_bytes)
        delivered = await self.replies.send(result.message, result.server_id,
                                            message.reply_to, message.correlation_id)
        if not delivered:
            log.warning("request can be answered nowhere: dead-lettered",
                        extra={"msg_id": result.message.get("Msg-ID")})
            try:  # confirmed, on the outbound connection
                await self.dead_letters.dead_letter(
                    message.body, message.routing_key or "",
                    "no reply address (Server-ID or reply_to)", code="no_reply_address")
            except CONNECTION_LOST:  # that connection is down, this one is not: try again
                await self._acks.requeue(message)  # (the delivery limit ends the retries)
                return
        self._acks.answered(message)  # after the reply, with the others of this turn
        if self.observe:
            self.observe(result.category, result.event, result.outcome,
                         time.perf_counter() - started)
