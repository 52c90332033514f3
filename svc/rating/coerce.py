"""KAZOO's numeric and boolean coercions, exact.

Numbers may arrive as JSON numbers (parsed as ``Decimal``/``int``) or as plain numeric
strings; integer fields given as fractions round half away from zero like Erlang's
``round/1`` (2.5 -> 3), not like Python's banker's ``round``.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from ..jsonio import BOUNDS_RULE, in_bounds

# No account uses a billion of anything; a larger count is a mistake or an attack.
MAX_QUANTITY = 10**9
_PLAIN_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


class CoercionError(ValueError):
    """The value cannot be read as the wanted kind; ``rule`` says what was expected."""

    def __init__(self, rule: str) -> None:
        super().__init__(rule)
        self.rule = rule


def to_decimal(value: object) -> Decimal:
    """Bounded before any arithmetic, whatever the number came as."""
    number = _as_decimal(value)
    if not in_bounds(number):
        raise CoercionError(BOUNDS_RULE)
    return number


def _as_decimal(value: object) -> Decimal:
    if isinstance(value, bool):  # bool is an int in Python; KAZOO never reads it as a number
        raise CoercionError("must be a number")
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str) and len(value) <= 64 and _PLAIN_NUMBER.match(value):
        return Decimal(value)
    raise CoercionError("must be a number or a plain numeric string")


def round_half_away(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def to_int(value: object) -> int:
    return round_half_away(to_decimal(value))


def to_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if value == "true":
        return True
    if value == "false":
        return False
    raise CoercionError('must be true, false, "true" or "false"')

