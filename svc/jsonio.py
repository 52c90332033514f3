"""JSON in and out with exact money: numbers parse to ``Decimal``/``int`` and ``Decimal``
serialises as a plain JSON number (never a string, never ``1E+2``; SPEC §12)."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

import orjson


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


def loads(data: str | bytes) -> Any:
    return json.loads(data, parse_float=Decimal, parse_constant=_reject_constant)


def plain_number(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text == "-0" else text


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(plain_number(value).encode())
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any, *, indent: bool = False, sort_keys: bool = False) -> bytes:
    option = (orjson.OPT_INDENT_2 if indent else 0) | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    return orjson.dumps(value, default=_default, option=option)


def fingerprint(value: Any) -> str:
    """A stable content hash: equal JSON (whatever the key order) gives the same digest."""
    return hashlib.sha256(dumps(value, sort_keys=True)).hexdigest()
