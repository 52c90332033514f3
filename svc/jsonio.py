"""JSON in and out with exact money: numbers parse to ``Decimal``/``int`` and ``Decimal``
serialises as a plain JSON number (never a string, never ``1E+2``; SPEC §12).

Parsing is bounded before any arithmetic (SPEC §14): a fraction or exponent form with more
than ``MAX_DIGITS`` significant digits or an exponent beyond ±``MAX_EXPONENT`` is refused
with its JSON path (``1e200000`` as a Decimal would cost the event loop seconds later on).
Integers are bounded where they are used (quantities, plan fields): a hook on every integer
would halve the parsing speed of every stored document.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

import orjson

MAX_DIGITS = 30
MAX_EXPONENT = 30
BOUNDS_RULE = (f"must be finite, with at most {MAX_DIGITS} significant digits and an "
               f"exponent within ±{MAX_EXPONENT}")


class NumberOutOfBounds(ValueError):
    def __init__(self, path: str, text: str) -> None:
        super().__init__(f"{path}: {text[:40]} {BOUNDS_RULE}")
        self.path, self.rule = path, BOUNDS_RULE


class _Unbounded(Exception):
    def __init__(self, text: str) -> None:
        self.text = text


def in_bounds(value: Decimal) -> bool:
    if not value.is_finite():
        return False
    significant = len("".join(map(str, value.as_tuple().digits)).rstrip("0"))
    return significant <= MAX_DIGITS and -MAX_EXPONENT <= value.adjusted() <= MAX_EXPONENT


def _bounded_decimal(text: str) -> Decimal:
    if len(text) <= MAX_DIGITS and "e" not in text and "E" not in text:
        return Decimal(text)  # so few digits, no exponent: within bounds, nothing to check
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise _Unbounded(text) from None
    if not in_bounds(value):
        raise _Unbounded(text)
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


def loads(data: str | bytes) -> Any:
    try:
        return json.loads(data, parse_float=_bounded_decimal, parse_constant=_reject_constant)
    except _Unbounded as error:
        raise NumberOutOfBounds(_path_of_unbounded(data), error.text) from None


def _path_of_unbounded(data: str | bytes) -> str:
    """Parse again, the bad numbers as markers, and find the first one (only on failure)."""
    marker = object()

    def mark(text: str) -> Any:
        try:
            return _bounded_decimal(text)
        except _Unbounded:
            return marker

    def find(value: Any, path: str) -> str | None:
        if value is marker:
            return path
        items = (value.items() if isinstance(value, dict)
                 else enumerate(value) if isinstance(value, list) else ())
        for key, child in items:
            found = find(child, f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}")
            if found:
                return found
        return None

    return find(json.loads(data, parse_float=mark, parse_constant=_reject_constant), "$") or "$"


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
    try:
        return orjson.dumps(value, default=_default, option=option)
    except orjson.JSONEncodeError:
        # orjson stops at 64-bit integers, which JSON (and our parser) do not; the slow
        # way only for such a value
        return orjson.dumps(_big_ints_as_decimals(value), default=_default, option=option)


def _big_ints_as_decimals(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _big_ints_as_decimals(child) for key, child in value.items()}
    if isinstance(value, list | tuple):
        return [_big_ints_as_decimals(child) for child in value]
    if isinstance(value, int) and not isinstance(value, bool) and not (
            -2**63 <= value < 2**64):
        return Decimal(value)
    return value


def fingerprint(value: Any) -> str:
    """A stable content hash: equal JSON (whatever the key order) gives the same digest."""
    return hashlib.sha256(dumps(value, sort_keys=True)).hexdigest()
