"""crossbar's HTTP envelope around each route's ``data``, as pydantic models for the OpenAPI
document; ``data`` is the reply model of the route's request, or a field of it
(``routes.Data``). Every answer carries the envelope's fields (``api_util.erl``
``do_create_resp_envelope``)."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from ..models.fields import NonNegative

T = TypeVar("T")


class Envelope(BaseModel):
    auth_token: str = Field(description="the KAZOO token of the request, as crossbar echoes "
                                        "it; empty for svc's own static tokens")
    request_id: str = Field(description="the request's X-Request-ID, or one svc made")
    node: str = Field(description="the svc node that answered")
    version: str = Field(description="svc's version")
    timestamp: str = Field(description="when the answer was made (ISO 8601, UTC)")


class Success(Envelope, Generic[T]):
    data: T
    status: Literal["success"]
    revision: str = Field(description="a digest of `data`: it changes when `data` does")


class Page(Envelope, Generic[T]):
    """A list route's answer, with KAZOO's paging fields beside the list."""

    data: list[T]
    status: Literal["success"]
    revision: str = Field(description="a digest of `data`: it changes when `data` does")
    page_size: NonNegative = Field(description="how many entries `data` holds")
    next_start_key: str | None = Field(description="the `start_key` of the next page; null "
                                                   "on the last one")


class Failure(Envelope):
    status: Literal["error"]
    error: str = Field(description="the HTTP status, as a string (crossbar's form)")
    message: str = Field(description="KAZOO's error where KAZOO has one for the case "
                                     "(invalid_data, invalid_credentials, forbidden, "
                                     "bad_identifier, account_has_descendants, …), else "
                                     "svc's Reason code (conflict, store_unavailable, …)")
    data: dict[str, Any] = Field(description="`{message}`; for invalid input KAZOO's "
                                             "per-field form `{<field>: {<rule>: {message}}}`")


class Overrides(BaseModel):
    overrides: dict[str, Any] = Field(description="the account's global overrides")
