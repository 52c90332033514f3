"""Field types the models share: how money, counts, omitted values and Kazoo time look on
the wire. Kazoo's time lives here, below the models and the wire that both use it."""

from __future__ import annotations

import datetime
import time
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import AwareDatetime, BeforeValidator, Field, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from ..rating.coerce import MAX_QUANTITY

T = TypeVar("T")
GREGORIAN_OFFSET = 62_167_219_200  # seconds from 0000-01-01 to the Unix epoch (kz_types.hrl)


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be an integer, not a boolean")
    return value


# Left out when empty, never sent as null: the sub-fields of an item are omitted when zero
#, so the schema allows no null and a dump leaves the field out.
Omitted = Annotated[T | SkipJsonSchema[None],
                    Field(json_schema_extra=_no_default, exclude_if=lambda v: v is None)]
# Money is a plain JSON number on the wire (jsonio), never a string; pydantic
# would render a Decimal as number-or-string.
Money = Annotated[Decimal, WithJsonSchema({"type": "number"})]
NonNegative = Annotated[int, Field(ge=0)]
Counts = dict[str, dict[str, NonNegative]]
Gregorian = Annotated[int, Field(ge=GREGORIAN_OFFSET,
                                 description="Gregorian seconds (Unix + 62167219200)")]
Delta = Annotated[int, Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY), BeforeValidator(_not_bool)]
# Free text kept in the audit entry of a change; bounded, as it is stored with every entry.
REASON_MAX_CHARS = 1024
Reason = Annotated[str, Field(max_length=REASON_MAX_CHARS,
                              description="why: free text, kept in the audit entry")]
IsoTime = Annotated[str, Field(description="the same moment in ISO 8601 UTC")]


def gregorian_of(unix_seconds: float) -> int:
    """KAZOO's time: whole seconds since 0000-01-01 (the HTTP API's one time format)."""
    return int(unix_seconds) + GREGORIAN_OFFSET


def gregorian_now() -> int:
    return gregorian_of(time.time())


def iso_of(unix_seconds: float) -> str:
    """Truncated to the microsecond, never rounded up: the moment named is never later than
    the one stored, so a period starting at it includes it."""
    whole, micros = divmod(int(unix_seconds * 1_000_000), 1_000_000)
    at = datetime.datetime.fromtimestamp(whole, tz=datetime.UTC).replace(microsecond=micros)
    return at.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _gregorian_to_datetime(value: Any) -> Any:
    """Gregorian seconds (a number, or digits as a query string carries them) to a moment;
    anything else is left for ISO 8601 parsing."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if not GREGORIAN_OFFSET <= value <= GREGORIAN_MAX:
            raise ValueError(f"Gregorian seconds from {GREGORIAN_OFFSET} (1970-01-01) to "
                             f"{GREGORIAN_MAX} (9999-12-31)")
        return datetime.datetime.fromtimestamp(value - GREGORIAN_OFFSET, tz=datetime.UTC)
    return value


GREGORIAN_MAX = GREGORIAN_OFFSET + 253_402_300_799  # 9999-12-31T23:59:59Z, Python's last year
# A moment given by a caller: Gregorian seconds (KAZOO's), or ISO 8601 with a time zone.
Moment = Annotated[AwareDatetime, BeforeValidator(_gregorian_to_datetime), WithJsonSchema({
    "anyOf": [{"type": "integer", "minimum": GREGORIAN_OFFSET, "maximum": GREGORIAN_MAX},
              {"type": "string", "format": "date-time"}],
    "description": "Gregorian seconds, or ISO 8601 with a time zone"})]
