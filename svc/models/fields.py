"""Field types the models share: how money, counts, omitted values and Kazoo time look on
the wire (SPEC §12)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, Field, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from ..amqp.envelope import GREGORIAN_OFFSET
from ..rating.coerce import MAX_QUANTITY

T = TypeVar("T")


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be an integer, not a boolean")
    return value


# Left out when empty, never sent as null: the sub-fields of an item are omitted when zero
# (ref §2.9), so the schema allows no null and a dump leaves the field out.
Omitted = Annotated[T | SkipJsonSchema[None],
                    Field(json_schema_extra=_no_default, exclude_if=lambda v: v is None)]
# Money is a plain JSON number on the wire (jsonio), never a string (SPEC §12); pydantic
# would render a Decimal as number-or-string.
Money = Annotated[Decimal, WithJsonSchema({"type": "number"})]
NonNegative = Annotated[int, Field(ge=0)]
Counts = dict[str, dict[str, NonNegative]]
Gregorian = Annotated[int, Field(ge=GREGORIAN_OFFSET,
                                 description="Gregorian seconds (Unix + 62167219200)")]
Delta = Annotated[int, Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY), BeforeValidator(_not_bool)]
