"""What each request answers: the handlers build these, the RPC server
sends one as ``<name>_resp`` with ``Status: success`` and svc's envelope, and the HTTP API
answers its fields as ``data``. The error replies' fields are here too.

A reply's fields are named as on the wire (``Reseller-ID``) and in Python (``reseller_id``,
which is also the HTTP ``data`` key). A top-level ``None`` is not sent over AMQP (the envelope
strips it); over HTTP it is ``null``.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from ..jsonio import dumps
from .documents import (
    AuditEntry,
    AvailablePlan,
    DaySummary,
    Delivery,
    LedgerEntry,
    Plan,
    PlanAssignment,
    QuantityChange,
    Quote,
    Summary,
    SyncResult,
    Violation,
)
from .fields import NonNegative, Omitted


class ReplyFields(BaseModel):
    """The fields of a successful reply. Frozen: a memoized reply is shared by requests."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True)
    _encoded: dict[str, Any] | None = PrivateAttr(None)

    def wire(self) -> dict[str, Any]:
        """By wire name; once ``encode``d, each value is its JSON already."""
        if self._encoded is not None:
            return self._encoded
        return self.model_dump(by_alias=True)

    def data(self) -> dict[str, Any]:
        """By Python name: the HTTP answer's ``data``."""
        wire = self.wire()
        return {name: wire[info.alias or name] for name, info in type(self).model_fields.items()
                if (info.alias or name) in wire}

    def encode(self) -> None:
        """Keep the JSON of every field, so that sending the reply again costs no encoding."""
        self._encoded = {key: None if value is None else orjson.Fragment(dumps(value))
                         for key, value in self.model_dump(by_alias=True).items()}


class QuoteReply(ReplyFields):
    quote: Quote = Field(alias="Quote")


class SummaryReply(ReplyFields):
    summary: Summary = Field(alias="Summary")


class PlanReply(ReplyFields):
    plan: Plan = Field(alias="Plan")


class PlanPutReply(PlanReply):
    """The plan stored, and what ``svc plans lint`` warns about it (left out when nothing)."""

    warnings: Omitted[list[Violation]] = Field(None, alias="Warnings")


class PlanIdReply(ReplyFields):
    plan_id: str | None = Field(alias="Plan-ID", description="none: no default plan")


class AvailablePlansReply(ReplyFields):
    plans: list[AvailablePlan] = Field(alias="Plans")


class BookkeeperReply(ReplyFields):
    bookkeeper: dict[str, str] = Field(alias="Bookkeeper")


class PlanChangeReply(ReplyFields):
    plans: dict[str, PlanAssignment] = Field(alias="Plans",
                                             description="the plans assigned after the change")
    quote: Omitted[Quote] = Field(None, alias="Quote",
                                  description="a dry run only: the change's activation "
                                              "charges and differences; nothing is changed")


class ResellerReply(ReplyFields):
    reseller_id: str | None = Field(alias="Reseller-ID",
                                    description="the account's reseller (none for the master)")
    is_reseller: bool = Field(alias="Is-Reseller")


class ReconcileReply(ReplyFields):
    """``Changes`` is truncated for ``all``; ``Changes-Total`` counts them all."""

    changed: bool = Field(alias="Changed")
    changes: list[QuantityChange] = Field(alias="Changes")
    changes_total: NonNegative = Field(alias="Changes-Total")


class SyncReply(ReplyFields):
    """One result per invoice handed to a bookkeeper, and the account's status after."""

    results: list[SyncResult] = Field(alias="Results",
                                      description="one per invoice handed to a bookkeeper")
    account_status: str = Field(alias="Account-Status")


class PageReply(ReplyFields):
    """A page of a list, newest first; ``Next-Start-Key`` is left out on the last page."""

    next_start_key: str | None = Field(None, alias="Next-Start-Key",
                                       description="the Start-Key of the next page")


class DeliveriesReply(PageReply):
    deliveries: list[Delivery] = Field(alias="Deliveries")


class DeliveryReply(ReplyFields):
    delivery: Delivery = Field(alias="Delivery")


class AuditReply(PageReply):
    entries: list[AuditEntry] = Field(alias="Entries")


class AuditEntryReply(ReplyFields):
    entry: AuditEntry = Field(alias="Entry")


class EditableReply(ReplyFields):
    fields: dict[str, dict[str, dict[str, Any]]] = Field(
        alias="Fields", description="per category, per item (and `_all`): the JSON Schema "
                                    "properties a plan item takes")


class AuditSummaryReply(ReplyFields):
    days: dict[str, dict[str, DaySummary]] = Field(
        alias="Days", description="per item key, per UTC day (YYYY-MM-DD)")


class LedgerReply(ReplyFields):
    entries: list[LedgerEntry] = Field(alias="Entries", description="oldest first")


class StandingReply(ReplyFields):
    """The standing words replace success: ``error`` with the status as ``Reason``."""

    status: Literal["good_standing", "error"] = Field(alias="Status")
    reason: str | None = Field(None, alias="Reason")


# request Event-Name -> what it answers
REPLIES: dict[str, type[ReplyFields]] = {
    "quote_req": QuoteReply,
    "summary_req": SummaryReply,
    "plan_put_req": PlanPutReply,
    "plan_get_req": PlanReply,
    "plan_delete_req": PlanIdReply,
    "available_plans_req": AvailablePlansReply,
    "default_plan_set_req": PlanIdReply,
    "default_plan_get_req": PlanIdReply,
    "bookkeeper_set_req": BookkeeperReply,
    "assign_plan_req": PlanChangeReply,
    "remove_plan_req": PlanChangeReply,
    "plans_change_req": PlanChangeReply,
    "overrides_set_req": SummaryReply,
    "manual_set_req": SummaryReply,
    "reseller_promote_req": ResellerReply,
    "reseller_demote_req": ResellerReply,
    "reseller_get_req": ResellerReply,
    "reconcile_req": ReconcileReply,
    "sync_req": SyncReply,
    "deliveries_req": DeliveriesReply,
    "delivery_retry_req": DeliveryReply,
    "delivery_reroute_req": DeliveryReply,
    "delivery_abandon_req": DeliveryReply,
    "audit_req": AuditReply,
    "audit_entry_req": AuditEntryReply,
    "audit_summary_req": AuditSummaryReply,
    "editable_req": EditableReply,
    "ledger_req": LedgerReply,
    "standing_req": StandingReply,
}

# --- what every published message and every reply carries -----------------------------------


class Published(BaseModel):
    """The envelope svc puts on everything it publishes (``amqp.envelope``)."""

    app_name: Literal["services"] = Field(alias="App-Name")
    app_version: str = Field(alias="App-Version")
    event_category: str = Field(alias="Event-Category")
    event_name: str = Field(alias="Event-Name")
    msg_id: str = Field(alias="Msg-ID", description="a reply copies its request's Msg-ID")
    node: str = Field(alias="Node")


class ReplyStatus(Published):
    """``<name>_resp``: ``Status`` success or error; an error has a machine ``Reason``, a
    human ``Message`` and, for plan_invalid, ``Details``; the reply's fields come on
    success."""

    status: Literal["success", "error"] = Field(alias="Status")
    reason: Omitted[str] = Field(None, alias="Reason")
    message: Omitted[str] = Field(None, alias="Message")
    details: Omitted[list[Violation]] = Field(None, alias="Details")


class ErrorReply(Published):
    """Kazoo's generic error: the answer to a request that fails envelope or schema
    validation (docs/amqp-api.md)."""

    event_category: Literal["error"] = Field(alias="Event-Category")
    event_name: str = Field(alias="Event-Name", pattern="_resp$",
                            description="the reply the caller waits for")
    error_message: str = Field(alias="Error-Message", description="names each bad field")
    request: Omitted[Any] = Field(None, alias="Request",
                                  description="the original request (not for oversized ones)")
