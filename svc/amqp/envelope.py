"""Kazoo's message envelope (docs/amqp-api.md): building and stripping."""

from __future__ import annotations

import uuid
from typing import Any

from .. import __version__

APP_NAME = "services"
CONTENT_TYPE = "application/json"


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
