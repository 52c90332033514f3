"""What the HTTP API answers, as pydantic models: KAZOO's envelope around each route's
``data`` (SPEC §15). They describe the answers for the OpenAPI document; the answers are
built from the handlers' reply fields (``routes.Data``).

Where ``data`` is several reply fields, its model's fields are aliased by the RPC reply field
each one is taken from (``Reseller-ID`` → ``reseller_id``), so one model says both.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from ..amqp.schemas import NonNegative, Omitted, PlanAssignment, Quote, SyncResult, Violation

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


class PlanChange(BaseModel):
    plans: dict[str, PlanAssignment] = Field(alias="Plans",
                                             description="the plans assigned after the change")
    quote: Omitted[Quote] = Field(None, alias="Quote",
                                  description="a dry run only: the change's activation "
                                              "charges and differences; nothing is changed")


class Reseller(BaseModel):
    reseller_id: str | None = Field(alias="Reseller-ID",
                                    description="the account's reseller (null for the master)")
    is_reseller: bool = Field(alias="Is-Reseller")


class QuoteAnswer(BaseModel):
    quote: Quote = Field(alias="Quote")


class SyncAnswer(BaseModel):
    results: list[SyncResult] = Field(alias="Results",
                                      description="one per invoice handed to a bookkeeper")
    account_status: str = Field(alias="Account-Status")


class Overrides(BaseModel):
    overrides: dict[str, Any] = Field(description="the account's global overrides")
