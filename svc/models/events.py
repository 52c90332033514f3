"""The events svc publishes on ``services`` as ``services.<name>.<account_id>``:
each is made with the change that causes it and written with it to the outbox
(``store.outbox.emit``); the relay publishes its fields inside svc's envelope."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from .documents import ActivationCharge, InvoiceItem, InvoiceSummary, PlanAssignment, QuantityChange
from .fields import Gregorian, gregorian_now


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True)
    name: ClassVar[str]  # its Event-Name

    account_id: str = Field(alias="Account-ID")
    timestamp: Gregorian = Field(default_factory=gregorian_now, alias="Timestamp")

    def wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


class BookkeeperSync(Event):
    """The outcome of handing one invoice to its bookkeeper: one per invoice and attempt."""

    name = "bookkeeper_sync"
    bookkeeper_id: str = Field(alias="Bookkeeper-ID")
    bookkeeper_type: str = Field(alias="Bookkeeper-Type")
    vendor_id: str = Field(alias="Vendor-ID")
    status: Literal["completed", "failed"] = Field(alias="Status")
    reason: str | None = Field(None, alias="Reason")
    message: str | None = Field(None, alias="Message")
    items: list[InvoiceItem] = Field(alias="Items")
    activation_charges: list[ActivationCharge] = Field(alias="Activation-Charges")
    summary: InvoiceSummary = Field(alias="Summary")
    attempt: int = Field(alias="Attempt", ge=1, description="from 1 per generation")


class StatusChange(Event):
    """An account's standing changed (the worst of its invoices after a sync)."""

    name = "status_change"
    previous_status: str = Field(alias="Previous-Status")
    status: str = Field(alias="Status")
    reason: str | None = Field(None, alias="Reason")


class QuantitiesChange(Event):
    """An account's quantities changed (only sent when something did)."""

    name = "quantities_change"
    changes: list[QuantityChange] = Field(alias="Changes", min_length=1)


class PlansChange(Event):
    """Plans were assigned to or removed from an account."""

    name = "plans_change"
    added: list[str] = Field(alias="Added")
    removed: list[str] = Field(alias="Removed")
    plans: dict[str, PlanAssignment] = Field(alias="Plans")


EVENTS: dict[str, type[Event]] = {
    event.name: event for event in (BookkeeperSync, StatusChange, PlansChange, QuantitiesChange)}
