"""The shapes inside replies and events: invoices as rating renders them (``rating.invoice``,
``rating.item``), and what svc keeps about an account (summary, plans, deliveries,
audit entries, quantity changes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .fields import Counts, Gregorian, IsoTime, Money, NonNegative, Omitted

# --- invoices --------------------------------------------------------------------------------


class Bookkeeper(BaseModel):
    id: str
    type: str
    vendor_id: str


class Difference(BaseModel):
    """proposed − current, zeros omitted."""

    quantity: Omitted[int] = None
    billable: Omitted[int] = None
    rate: Omitted[Money] = None
    total: Omitted[Money] = None


class ItemChanges(BaseModel):
    type: Literal["modified", "removed"]
    difference: Difference


class SingleDiscount(BaseModel):
    rate: Omitted[Money] = None


class CumulativeDiscount(BaseModel):
    rate: Omitted[Money] = None
    quantity: Omitted[NonNegative] = None


class Discounts(BaseModel):
    total: Omitted[Money] = None
    single: Omitted[SingleDiscount] = None
    cumulative: Omitted[CumulativeDiscount] = None


class Prorate(BaseModel):
    additions: bool
    removals: bool


class InvoiceItem(BaseModel):
    category: str
    item: str
    name: str
    quantity: NonNegative
    billable: NonNegative
    rate: Money
    discounts: Omitted[Discounts] = None
    minimum: Omitted[NonNegative] = None
    maximum: Omitted[NonNegative] = None
    prorate: Prorate
    total: Money
    changes: Omitted[ItemChanges] = None


class ActivationCharge(BaseModel):
    category: str
    item: str = Field(description="the raw plan key")
    name: str
    billable: NonNegative
    rate: Money
    total: Money


class InvoiceSummary(BaseModel):
    recurring: Money
    today: Money


class Invoice(BaseModel):
    """One bookkeeper's invoice, as ``rating.Invoice.as_json`` renders it."""

    bookkeeper: Bookkeeper
    items: list[InvoiceItem]
    activation_charges: list[ActivationCharge]
    summary: InvoiceSummary


class InvoiceWithPlan(Invoice):
    """An invoice of an account (its summary, a quote by account), with what KAZOO's summary
    shows beside it."""

    plan: dict[str, Any] = Field(description="the plan it is rated with: its bookkeeper's "
                                             "plans merged, by category and item (empty for "
                                             "a bookkeeper that only bills removals)")
    taxes: list[Any] = Field(description="KAZOO's; svc computes no taxes: always empty")


class Quote(BaseModel):
    invoices: list[InvoiceWithPlan | Invoice] = Field(
        description="by account, each with its plan; from a quote document, without")


# --- what svc keeps about an account ---------------------------------------------------------


class PlanAssignment(BaseModel):
    vendor_id: str
    overrides: dict[str, Any]


class SyncResult(BaseModel):
    bookkeeper: Bookkeeper
    status: Literal["completed", "failed", "abandoned"] = Field(
        description="abandoned: an operator gave the delivery up")
    reason: str | None = None
    message: str | None = None


class LastSync(BaseModel):
    timestamp: Gregorian
    results: list[SyncResult]


class SummaryQuantities(BaseModel):
    account: Counts
    cascade: Counts
    manual: Counts


class Summary(BaseModel):
    account_id: str
    reseller_id: str | None
    is_reseller: bool
    status: str = Field(description="good_standing | delinquent | …")
    plans: dict[str, PlanAssignment]
    overrides: dict[str, Any]
    quantities: SummaryQuantities
    invoices: list[InvoiceWithPlan] = Field(
        description="live, compared with the last synced state")
    dirty: bool = Field(description="changes not billed yet, or an invoice a bookkeeper has "
                                    "not answered yet")
    last_sync: LastSync | None


class Plan(BaseModel):
    id: str
    vendor_id: str
    name: str | None
    description: str | None
    version: int
    doc: dict[str, Any]


class AvailablePlan(BaseModel):
    id: str
    vendor_id: str
    name: str | None
    description: str | None
    category: str | None
    doc: Omitted[dict[str, Any]] = Field(None, description="the plan's document, with "
                                                           "Details (KAZOO's details=true)")


class QuantityChange(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # from ``store.records.QuantityChange``

    account_id: str
    scope: Literal["account", "cascade"]
    category: str
    item: str
    previous: NonNegative
    current: NonNegative


class Violation(BaseModel):
    path: str
    rule: str


class DeliveryAttempt(BaseModel):
    attempt: int = Field(ge=1)
    outcome: Literal["good_standing", "delinquent", "failed"]
    reason: str | None = None
    message: str | None = None
    at: Gregorian


class Delivery(BaseModel):
    """One invoice handed to one bookkeeper for one billed snapshot, with every attempt
   : a retry carries the same idempotency key while the content is the same."""

    id: str = Field(description="the record's key: <account>|<bookkeeper>|<snapshot seq>")
    bookkeeper: Bookkeeper
    snapshot_seq: int = Field(ge=1)
    idempotency_key: str
    content: str = Field(description="the hash of the invoice sent")
    invoice: Invoice = Field(description="the invoice sent: items, activation charges and "
                                         "totals, as the bookkeeper received them")
    attempts: int = Field(ge=1)
    state: Literal["sending", "answered", "failed", "rerouted", "abandoned"] = Field(
        description="rerouted: its bookkeeper retired, what it was owed went to the present "
                    "one; abandoned: an operator gave it up")
    results: list[DeliveryAttempt]
    updated_at: Gregorian
    updated_at_iso: IsoTime


class Who(BaseModel):
    kind: Literal["token", "amqp", "notice", "sync"]
    name: str = Field(description="the token's name, the RPC's App-Name/Node, the notice "
                                  "consumer, or the node that synced")


class AuditEntry(BaseModel):
    """One change of an account, written with it; a ``quantities_daily`` entry
    sums a UTC day's document-driven changes: units added and removed per item."""

    id: str
    account_id: str
    at: Gregorian
    at_iso: IsoTime
    who: Who | None = Field(description="null for svc's own tools (an import from the CLI)")
    action: Literal["plan_assigned", "plan_removed", "plans_changed", "overrides_set", "manual_set",
                    "reseller_promoted", "reseller_demoted", "bookkeeper_set",
                    "status_changed", "plan_edited", "delivery", "delivery_rerouted",
                    "delivery_abandoned", "quantities_daily"]
    reason: str | None
    before: Any
    after: Any


class DaySummary(BaseModel):
    """One item on one day: what its bookkeepers were billed (KAZOO's audit summary)."""

    addition: NonNegative = Field(description="billable units added")
    removal: NonNegative = Field(description="billable units removed")
    quantity: NonNegative = Field(description="the billable quantity of the day's last invoice")
    last_timestamp: Gregorian = Field(description="when the day's last invoice was answered")
    sum_quantity: bool = Field(description="KAZOO's: false (usage is not summed here)")


class LedgerEntry(BaseModel):
    """One invoice the local bookkeeper took (``default_bookkeeper``): what svc itself billed,
    for an operator with no billing system of its own to bill its clients from."""

    idempotency_key: str = Field(description="the delivery's key: one entry per invoice")
    account_id: str
    sync_id: str = Field(description="the billed snapshot's sequence number")
    at: Gregorian = Field(description="when it was written, in Gregorian seconds")
    at_iso: IsoTime
    invoice: Invoice = Field(description="items, activation charges and totals, as billed")
