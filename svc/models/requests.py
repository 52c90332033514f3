"""Every request svc answers, as pydantic models of Kazoo-style messages.

Top-level fields are Title-Case-With-Hyphens as on the wire; unknown fields are accepted.
Each request's reply is in ``replies``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from ..rating.quote import Count, QuoteDocument
from .fields import Delta, Moment, Reason


class Envelope(BaseModel):
    """Kazoo's default headers (docs/amqp-api.md)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    app_name: str = Field(alias="App-Name")
    app_version: str = Field(alias="App-Version")
    event_category: str = Field(alias="Event-Category")
    event_name: str = Field(alias="Event-Name")
    msg_id: str = Field(alias="Msg-ID")
    node: str | None = Field(None, alias="Node")
    server_id: str | None = Field(None, alias="Server-ID")
    reason: Reason | None = Field(None, alias="Reason")


class AccountRequest(Envelope):
    account_id: str = Field(alias="Account-ID", min_length=1)


class ReconcileReq(AccountRequest):
    """``Account-ID`` or ``"all"``; ``Source: couch`` rebuilds from CouchDB."""

    source: Literal["ledger", "couch"] = Field(
        "ledger", alias="Source",
        description="ledger: recount from svc's own ledger; couch: re-read the documents")


class PlanRef(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    vendor_id: str | None = None
    overrides: dict[str, Any] | None = None


def _id_alone(value: Any) -> Any:
    """A plan id alone stands for ``{"id": …}`` (KAZOO takes both)."""
    return {"id": value} if isinstance(value, str) else value


class QuoteReq(Envelope):
    """Either a whole quote document, or an account's state with what-if changes."""

    quote_request: QuoteDocument | None = Field(None, alias="Quote-Request")
    account_id: str | None = Field(None, alias="Account-ID", min_length=1)
    plans: list[Annotated[PlanRef, BeforeValidator(_id_alone)]] | None = Field(
        None, alias="Plans", description="the plans instead of those assigned: ids, or "
                                         "{id, vendor_id, overrides} (KAZOO takes both)")
    add: list[Annotated[PlanRef, BeforeValidator(_id_alone)]] | None = Field(
        None, alias="Add", description="KAZOO's name of `Plans`, when it is not given")
    delete: list[str] = Field([], alias="Delete", description="plan ids left out of `Plans`")
    overrides: dict[str, Any] | None = Field(None, alias="Overrides")
    changes: dict[str, dict[str, Delta]] | None = Field(None, alias="Changes")

    def quoted_plans(self) -> list[PlanRef] | None:
        """The plans to quote (KAZOO: all removed, ``add`` assigned, ``delete`` unassigned);
        ``None``: those assigned."""
        plans = self.plans if self.plans is not None else self.add
        if plans is None:
            return None
        return [plan for plan in plans if plan.id not in self.delete]

    @model_validator(mode="after")
    def _one_form(self) -> QuoteReq:
        by_account = (self.account_id, self.plans, self.add, self.overrides, self.changes)
        if self.quote_request is not None and any(v is not None for v in by_account):
            raise ValueError("Quote-Request excludes Account-ID, Plans, Overrides and Changes")
        if self.quote_request is None and self.account_id is None:
            raise ValueError("either Quote-Request or Account-ID is required")
        return self


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str | None = None
    version: int | None = None
    doc: dict[str, Any]


class PlanPutReq(AccountRequest):
    plan: PlanIn = Field(alias="Plan")


class PlanIdRequest(AccountRequest):
    plan_id: str = Field(alias="Plan-ID", min_length=1)


class DefaultPlanSetReq(AccountRequest):
    plan_id: str | None = Field(None, alias="Plan-ID")


class BookkeeperSetReq(AccountRequest):
    bookkeeper: dict[str, str] = Field(alias="Bookkeeper")


class AssignReq(PlanIdRequest):
    overrides: dict[str, Any] | None = Field(None, alias="Overrides")
    merge: bool = Field(False, alias="Merge")
    dry_run: bool = Field(False, alias="Dry-Run")


class RemoveReq(PlanIdRequest):
    dry_run: bool = Field(False, alias="Dry-Run")


class PlanAddition(BaseModel):
    """A plan to assign, with its own overrides (KAZOO also takes a plan object here; its
    other keys are KAZOO's and ignored: the vendor is always the account's reseller)."""

    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1)
    overrides: dict[str, Any] | None = None


Addition = Annotated[PlanAddition, BeforeValidator(_id_alone)]


class PlansChangeReq(AccountRequest):
    """Several plans assigned and removed, and the global overrides set, in one change (KAZOO's
    ``POST /services``): the additions first, then the removals, then the overrides."""

    add: list[Addition] = Field([], alias="Add", description="plan ids or {id, overrides}; "
                                                             "KAZOO's `plans` is the same list")
    plans: list[Addition] = Field([], alias="Plans", description="`add`, when it is not given")
    delete: list[Annotated[str, Field(min_length=1)]] = Field(
        [], alias="Delete", description="plan ids, each assigned")
    overrides: dict[str, Any] | None = Field(None, alias="Overrides")
    merge: bool = Field(False, alias="Merge", description="overrides deep-merged into those "
                                                           "in place")

    def additions(self) -> list[PlanAddition]:
        return self.add or self.plans


class AvailablePlansReq(AccountRequest):
    details: bool = Field(False, alias="Details", description="each plan with its document")
    filters: dict[str, str] = Field(
        {}, alias="Filters", description="crossbar's filters on the plans' documents "
        "(filter_<path>, filter_not_<path>, has_key, key_missing, has_value): over HTTP, "
        "the query string's")


class OverridesSetReq(AccountRequest):
    overrides: dict[str, Any] = Field(alias="Overrides")
    merge: bool = Field(False, alias="Merge")


class ManualSetReq(AccountRequest):
    quantities: dict[str, dict[str, Count]] = Field(alias="Quantities")
    merge: bool = Field(False, alias="Merge")


class PagedRequest(AccountRequest):
    """A page of a list, newest first: from ``Start-Key`` (the first of the page)."""

    page_size: int = Field(50, alias="Page-Size", ge=1, le=1000)
    start_key: str | None = Field(None, alias="Start-Key", min_length=1,
                                  description="the Next-Start-Key of the previous page")


class DeliveriesReq(PagedRequest):
    """The account's delivery records."""


class AuditReq(PagedRequest):
    """The account's audit trail, from ``Since`` up to ``Until``."""

    since: Moment | None = Field(None, alias="Since")
    until: Moment | None = Field(None, alias="Until")


class AuditEntryReq(AccountRequest):
    entry_id: str = Field(alias="Entry-ID", min_length=1, description="an entry's id")


class EditableReq(Envelope):
    """What a plan may price, item by item (KAZOO's ``editable``); for an account, its
    reseller's plans, without one (KAZOO's unauthenticated ``/v2/services/editable``), the
    master's: svc answers the same for both."""

    account_id: str | None = Field(None, alias="Account-ID", min_length=1)


class AuditSummaryReq(AccountRequest):
    """What was billed per item and per day, from ``Since`` up to ``Until`` (KAZOO's
    ``audit_summary``); ``Item``: only that item (KAZOO's ``audit_summary/{source}``)."""

    since: Moment | None = Field(None, alias="Since")
    until: Moment | None = Field(None, alias="Until")
    item: str | None = Field(None, alias="Item", min_length=1,
                             description="an item's key, such as sip_device")


class LedgerReq(AccountRequest):
    """The local bookkeeper's ledger of the account, oldest first: the invoices written from
    ``From`` (included) up to ``To`` (excluded)."""

    from_: Moment | None = Field(None, alias="From")
    to: Moment | None = Field(None, alias="To")


class DeliveryRetryReq(AccountRequest):
    delivery_id: str = Field(alias="Delivery-ID", min_length=1,
                             description="the delivery record's key, as deliveries_req lists it")


class DeliveryAbandonReq(DeliveryRetryReq):
    """An operator gives up a stuck delivery: its bookkeeper will never be sent it."""

    reason: Reason = Field(alias="Reason", min_length=1,  # required here
                           description="why it is abandoned: kept in the audit trail")


# (category, request Event-Name) -> model; the reply's Event-Name swaps _req for _resp
REQUESTS: dict[tuple[str, str], type[Envelope]] = {
    ("quote", "quote_req"): QuoteReq,
    ("summary", "summary_req"): AccountRequest,
    ("plans", "plan_put_req"): PlanPutReq,
    ("plans", "plan_get_req"): PlanIdRequest,
    ("plans", "plan_delete_req"): PlanIdRequest,
    ("plans", "available_plans_req"): AvailablePlansReq,
    ("plans", "default_plan_set_req"): DefaultPlanSetReq,
    ("plans", "default_plan_get_req"): AccountRequest,
    ("plans", "bookkeeper_set_req"): BookkeeperSetReq,
    ("assign", "assign_plan_req"): AssignReq,
    ("assign", "remove_plan_req"): RemoveReq,
    ("assign", "plans_change_req"): PlansChangeReq,
    ("overrides", "overrides_set_req"): OverridesSetReq,
    ("overrides", "manual_set_req"): ManualSetReq,
    ("reseller", "reseller_promote_req"): AccountRequest,
    ("reseller", "reseller_demote_req"): AccountRequest,
    ("reseller", "reseller_get_req"): AccountRequest,
    ("reconcile", "reconcile_req"): ReconcileReq,
    ("sync", "sync_req"): AccountRequest,
    ("sync", "deliveries_req"): DeliveriesReq,
    ("sync", "delivery_retry_req"): DeliveryRetryReq,
    ("sync", "delivery_reroute_req"): DeliveryRetryReq,
    ("sync", "delivery_abandon_req"): DeliveryAbandonReq,
    ("sync", "ledger_req"): LedgerReq,
    ("audit", "audit_req"): AuditReq,
    ("audit", "audit_entry_req"): AuditEntryReq,
    ("audit", "audit_summary_req"): AuditSummaryReq,
    ("plans", "editable_req"): EditableReq,
    ("standing", "standing_req"): AccountRequest,
}


def response_name(request_name: str) -> str:
    return request_name.removesuffix("_req") + "_resp"
