"""Decoding that no delivery can break (aiormq issue 186).

KAZOO stamps every message with ``timestamp`` = Gregorian *microseconds* (about 6.4e16).
pamqp turns the property into a ``datetime``, raises on a value ``datetime`` cannot hold, and
aiormq then closes the whole connection: one genuine KAZOO message stopped RPC, ingest and
publishing at once, and the broker redelivered it into a crash loop.

Two small patches, installed once on import of ``svc.amqp``, each fit to go upstream:
- a timestamp outside ``datetime``'s range decodes to ``None`` (pamqp's own milliseconds
  guess is kept for what it can represent); svc never reads the property;
- a content header whose properties still fail to decode keeps the properties decoded so far
  and leaves the rest unset. ``body_size`` is read before them, so the frame stream stays
  aligned and the message is delivered and processed as usual.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from pamqp import commands, common, decode

log = logging.getLogger("svc.amqp")
_pamqp_unmarshal = commands.Basic.Properties.unmarshal


def decode_timestamp(value: bytes) -> tuple[int, datetime.datetime | None]:
    """pamqp's ``decode.timestamp``, total: 8 bytes always decode."""
    try:
        (seconds,) = common.Struct.timestamp.unpack(value[0:8])
    except Exception as error:  # noqa: BLE001 - truncated data, as pamqp reports it
        raise ValueError("Could not unpack timestamp value") from error
    if seconds > 0xFFFFFFFF:  # pamqp's rule: above the year 2106 it is likely milliseconds
        seconds /= 1000.0
    try:
        return 8, datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return 8, None


def _unmarshal_properties(self: commands.Basic.Properties, flags: int, data: bytes) -> None:
    try:
        _pamqp_unmarshal(self, flags, data)
    except Exception as error:  # noqa: BLE001 - whatever a peer sends, keep the connection
        log.warning("AMQP properties partly undecodable, the rest left unset: %r", error)


def install() -> None:
    decode.timestamp = decode_timestamp
    decode.METHODS["timestamp"] = decode_timestamp
    decode.TABLE_MAPPING[b"T"] = decode_timestamp
    patched: Any = _unmarshal_properties
    commands.Basic.Properties.unmarshal = patched
