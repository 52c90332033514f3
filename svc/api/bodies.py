"""Request bodies as KAZOO's clients send them: ``{"data": {…}, "accept_charges": …}``.

Monster UI adds ``ui_metadata`` to every write inside ``data`` (monster-ui 4.3
``src/js/lib/jquery.kazoosdk.js``); other clients put it beside ``data``. It is ignored
wherever it comes, as is ``accept_charges`` (svc never asks for charges to be accepted: a
dry run answers with its quote). A top-level ``merge`` is KAZOO's (``cb_services``) and is
read as the route's ``merge``. Any other key inside ``data`` is still refused, by name."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ..handlers import Rejected
from ..jsonio import NumberOutOfBounds, dumps, loads

IGNORED = frozenset({"ui_metadata", "accept_charges"})


async def read_json(request: web.Request, max_bytes: int) -> Any:
    """The JSON body, read no further than ``max_bytes`` (before any parsing); no body is
    ``None``."""
    too_large = Rejected("too_large", f"the body exceeds SVC_MAX_MESSAGE_BYTES "
                                      f"({max_bytes} bytes)")
    if (request.content_length or 0) > max_bytes:
        raise too_large
    try:
        await request.content.readexactly(max_bytes + 1)
    except asyncio.IncompleteReadError as complete:  # the whole body, within the limit
        raw = complete.partial
    else:
        raise too_large
    if not raw.strip():
        return None
    try:
        body = loads(raw)
    except NumberOutOfBounds as error:
        raise Rejected("invalid", str(error), [{"path": error.path, "rule": error.rule}]
                       ) from None
    except (ValueError, RecursionError) as error:  # RecursionError: nested too deep
        raise Rejected("invalid", f"the body is not valid JSON: {error}") from None
    try:  # JSON allows what svc's encoder (orjson) refuses; the handlers encode their input
        dumps(body)
    except TypeError as error:  # an unpaired surrogate in a string
        raise Rejected("invalid", f"the body holds a value svc cannot encode: {error}"
                       ) from None
    return body


def request_data(body: Any, merge_allowed: bool) -> dict[str, Any]:
    """The route's input from a body: KAZOO's ``data`` (or the body itself when it is not
    wrapped), without what KAZOO's clients add for themselves."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise Rejected("invalid", "the body must be a JSON object")
    wrapped = isinstance(body.get("data"), dict)
    data = body["data"] if wrapped else body
    found = {key: value for key, value in data.items() if key not in IGNORED}
    if wrapped and merge_allowed and "merge" in body and "merge" not in found:
        found["merge"] = body["merge"]
    return found
