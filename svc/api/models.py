"""KAZOO's HTTP envelope around each route's ``data`` (SPEC §15), as pydantic models for the
OpenAPI document; ``data`` is the reply model of the route's request, or a field of it
(``routes.Data``)."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from ..models.documents import Violation
from ..models.fields import NonNegative, Omitted

T = TypeVar("T")


class Success(BaseModel, Generic[T]):
    data: T
    status: Literal["success"]


class Page(BaseModel, Generic[T]):
    """A list route's answer, with KAZOO's paging fields beside the list."""

    data: list[T]
    status: Literal["success"]
    page_size: NonNegative = Field(description="how many entries `data` holds")
    next_start_key: str | None = Field(description="the `start_key` of the next page; null "
                                                   "on the last one")


class ErrorData(BaseModel):
    details: Omitted[list[Violation]] = Field(None, description="each bad field and its rule")


class Failure(BaseModel):
    status: Literal["error"]
    error: str = Field(description="the Reason code, as over AMQP (account_not_found, "
                                   "plan_not_found, conflict, invalid, …)")
    message: str
    data: ErrorData


class Overrides(BaseModel):
    overrides: dict[str, Any] = Field(description="the account's global overrides")
