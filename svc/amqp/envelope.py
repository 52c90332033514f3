"""Kazoo's message envelope (docs/amqp-api.md): building, stripping, Gregorian time."""

from __future__ import annotations

import time
import uuid
from typing import Any

from .. import __version__

APP_NAME = "services"
GREGORIAN_OFFSET = 62_167_219_200  # seconds from 0000-01-01 to the Unix epoch (kz_types.hrl)
CONTENT_TYPE = "application/json"


def gregorian_now() -> int:
    return int(time.time()) + GREGORIAN_OFFSET


def new_msg_id() -> str:
    return uuid.uuid4().hex


def strip_empty(message: dict[str, Any]) -> dict[str, Any]:
    """Top-level null or "" values are dropped on publish; nested nulls are kept, since in
    overrides they mean "delete"."""
    return {k: v for k, v in message.items() if v is not None and v != ""}


def envelope(category: str, name: str, node: str, msg_id: str | None = None,
             **fields: Any) -> dict[str, Any]:
    return strip_empty({
        "Event-Category": category,
        "Event-Name": name,
        "App-Name": APP_NAME,
        "App-Version": __version__,
        "Node": node,
        "Msg-ID": msg_id or new_msg_id(),
        **fields,
    })
