"""The HTTP API's routes as one table: each route names the RPC request it is, so
it runs that request's handler with that request's model, and says which of the model's
fields come from the path, the query string and the body, and what of the reply is ``data``.
The aiohttp handlers (``server``) and the OpenAPI document (``openapi``) are both read from
this table: a route added here is served and documented.

Bodies use the request model's own field names (``overrides``, ``quantities``, ``plans``,
``changes``, ``merge``) where the AMQP message uses its aliases (``Overrides``, …); the body
and query models are derived from the request model's fields, so their types and rules are
the RPC's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from ..auth.permissions import Access
from ..bookkeepers.local import ledger_csv
from ..crossbar_filter import filters_of
from ..models.documents import (
    AuditEntry,
    AvailablePlan,
    DaySummary,
    Delivery,
    LedgerEntry,
    PlanAssignment,
    Summary,
)
from ..models.replies import (
    AuditSummaryReply,
    PlanChangeReply,
    ReconcileReply,
    ReplyFields,
    ResellerReply,
    SummaryReply,
    SyncReply,
)
from ..models.requests import REQUESTS, Envelope
from .models import Overrides, Page, Success
from .views import KazooQuote, KazooSummary, kazoo_quote, kazoo_summary, summary_csv

PREFIX = "/v2/accounts/{account_id}"
# KAZOO also serves the editable fields without an account, to anyone (cb_services)
EDITABLE_PATH = "/v2/services/editable"
Doc = dict[str, Any]


@dataclass(frozen=True)
class Data:
    """What of a handler's reply is ``data``, and the answer's model."""

    answer: type[BaseModel]
    pick: Callable[[ReplyFields], Any]
    paged: bool = False


def the(reply_field: str, model: type) -> Data:
    """``data`` is one field of the reply (its Summary)."""
    return Data(Success[model], lambda reply: reply.data()[reply_field])


def whole(model: type[ReplyFields]) -> Data:
    """``data`` is the reply, by its fields' Python names."""
    return Data(Success[model], ReplyFields.data)


def page_of(reply_field: str, model: type) -> Data:
    """``data`` is the list in one field of the reply, with the paging fields beside it (the
    list is counted: its handler must not be ``handlers.memoized``, whose replies are
    encoded); a reply that pages names the next page's first key in ``next_start_key``."""
    return Data(Page[model], lambda reply: reply.data()[reply_field], paged=True)


def _assigned(reply: SummaryReply | PlanChangeReply) -> Doc:
    """KAZOO's ``GET``/``POST /services``: the assigned plans
    (``kz_services_plans:assigned/1``)."""
    plans = reply.summary.plans if isinstance(reply, SummaryReply) else reply.plans
    return {plan_id: assignment.model_dump(by_alias=True)  # as the Summary renders it
            for plan_id, assignment in plans.items()}


def _overrides(reply: SummaryReply) -> Doc:
    return {"overrides": reply.summary.overrides}


def _days_by_item(reply: AuditSummaryReply) -> list[Doc]:
    """KAZOO's ``audit_summary``: one object, ``{item: {day: summary}}``."""
    return [reply.data()["days"]]


def _days_of_item(reply: AuditSummaryReply) -> list[Doc]:
    """KAZOO's ``audit_summary/{source}``: ``[{day: summary}]``, newest first."""
    [days] = reply.data()["days"].values()
    return [{day: days[day]} for day in sorted(days, reverse=True)]


def _unaliased(info: FieldInfo, alias: str | None = None) -> tuple[Any, Any]:
    """A request model's field, with its type and rules, under its Python name (or
    ``alias``)."""
    annotation = Annotated[(info.annotation, *info.metadata)] if info.metadata else (
        info.annotation)
    return annotation, Field(... if info.is_required() else info.default, alias=alias,
                             description=info.description)


def _camel(name: str) -> str:
    return "".join(part.title() for part in name.removesuffix("_req").split("_"))


@dataclass(frozen=True)
class Link:
    """An OpenAPI link: what a caller (and schemathesis' stateful phase) can do next with
    this answer; the account is carried over."""

    name: str
    operation_id: str  # the next route's
    parameters: dict[str, str]  # "path.plan_id" -> a runtime expression

    def as_openapi(self) -> Doc:
        return {"operationId": self.operation_id, "parameters": {
            "path.account_id": "$request.path.account_id", **self.parameters}}


@dataclass
class Route:
    method: str
    path: str  # under PREFIX; each {parameter} is a field of the request model
    request: tuple[str, str]  # (category, Event-Name) of the RPC request it is
    data: Data
    summary: str
    body: tuple[str, ...] | None = None  # the model fields a JSON body may set; None: no body
    query: tuple[str, ...] = ()  # the model fields the query string may set
    statuses: tuple[int, ...] = ()  # error statuses beyond those of every route (openapi)
    links: tuple[Link, ...] = ()
    # the answer as CSV, for a caller that asks for it (Accept: text/csv, or ?accept=csv)
    csv: Callable[[Any], str] | None = None
    # who may: reads by default for GET, else the account's billing (its reseller's)
    access: Access | None = None
    # the body field a KAZOO client's body fills when it is the map itself
    # (``{"data": {"devices": …}}``, cb_services' overrides and manual)
    map_body: str | None = None
    merged: bool = False  # PATCH: always merged into what is in place (KAZOO)
    # KAZOO's names of query parameters, for svc's (``created_from`` -> ``since``)
    query_names: dict[str, str] = field(default_factory=dict)
    # derived from the request model:
    model: type[Envelope] = field(init=False)
    body_model: type[BaseModel] | None = field(init=False)
    query_model: type[BaseModel] | None = field(init=False)
    path_fields: dict[str, str] = field(init=False)  # path parameter -> request alias
    body_keys: dict[str, str] = field(init=False)  # request alias -> body key

    def __post_init__(self) -> None:
        if self.access is None:
            self.access = Access.READ if self.method == "GET" else Access.BILLING
        self.model = REQUESTS[self.request]
        fields = self.model.model_fields
        name = _camel(self.request[1])
        self.path_fields = {param: fields[param].alias or param
                            for param in re.findall(r"{(\w+)}", PREFIX + self.path)}
        self.body_model = None if self.body is None else create_model(
            f"{name}Body", __config__=ConfigDict(extra="forbid"),  # a misspelt key is refused
            reason=_unaliased(fields["reason"]),  # required where the request requires it
            ui_metadata=(Any, Field(None, description="Monster UI's; ignored")),
            **{key: _unaliased(fields[key]) for key in self.body})
        self.query_model = create_model(
            f"{name}Query", __config__=ConfigDict(extra="ignore"),
            # a Python keyword has a trailing underscore in the model (``from_``), none in
            # the query string (``?from=``)
            **{key: _unaliased(fields[key], key.removesuffix("_")) for key in self.query}
        ) if self.query else None
        self.body_keys = {fields[key].alias or key: key for key in self.body or ()}

    @property
    def operation_id(self) -> str:
        words = re.sub(r"[{}]", "", self.path).strip("/").replace("/", "_")
        return f"{self.method.lower()}_{words}"

    def query_input(self, query: Mapping[str, str]) -> dict[str, str]:
        """The query model's input: a KAZOO name counts where svc's own is not given."""
        renamed = {svc: query[kazoo] for kazoo, svc in self.query_names.items()
                   if kazoo in query}
        return {**renamed, **query}

    def body_input(self, given: Doc) -> Doc:
        """The body model's input from a body's data: svc's own form (``{overrides, …}``), or
        for a ``map_body`` route KAZOO's, the map itself (no ``overrides`` key: its keys are
        categories), with its top-level ``merge``. An empty body is neither: the field is
        required (to clear it, svc's form says so: ``{"overrides": {}}``)."""
        if self.map_body is not None and self.map_body not in given and given.keys() - {
                "merge"}:
            given = {**({"merge": given["merge"]} if "merge" in given else {}),
                     self.map_body: {k: v for k, v in given.items() if k != "merge"}}
        return {**given, "merge": True} if self.merged else given

    def request_fields(self, match_info: dict[str, str], query: BaseModel | None,
                       body: BaseModel | None, query_string: Mapping[str, str]) -> Doc:
        """The request model's input by alias, from the validated path, query and body, and
        crossbar's filters from the query string where the request takes them."""
        fields = self.model.model_fields
        given = {alias: match_info[param] for param, alias in self.path_fields.items()
                 if param in match_info}  # none for KAZOO's /v2/services/editable
        if "filters" in fields:
            given["Filters"] = filters_of(query_string)
        for values in (query, body):
            if values is not None:
                given.update({fields[key].alias or key: getattr(values, key)
                              for key in values.model_fields_set - _NOT_REQUEST_FIELDS})
        if body is not None and body.reason is not None:
            given["Reason"] = body.reason  # the request's Reason, for the audit trail
        return given

    def http_paths(self, text: str) -> str:
        """A handler names its input by the AMQP alias (``$.Overrides.plan…``): over HTTP
        the caller sent the body key (``$.overrides.plan…``)."""
        return re.sub(r"\$\.([\w-]+)", lambda found: "$." + self.body_keys.get(
            found.group(1), found.group(1)), text)


# body keys that are not the request's: the audit entry's reason, and what Monster UI adds
_NOT_REQUEST_FIELDS = {"reason", "ui_metadata"}
_SUMMARY = the("summary", Summary)

# Fixed paths come before /services/{plan_id}: aiohttp matches in this order, so a plan cannot
# be named like a fixed path (overrides, manual, quote, sync, summary, available, deliveries,
# audit), as in KAZOO.
ROUTES: tuple[Route, ...] = (
    Route("GET", "/services", ("summary", "summary_req"),
          Data(Success[dict[str, PlanAssignment]], _assigned),
          "The plans assigned to the account, by plan id (KAZOO's GET /services)"),
    Route("POST", "/services", ("assign", "plans_change_req"),
          Data(Success[dict[str, PlanAssignment]], _assigned),
          "Assign and remove several plans and set the global overrides, in one change; the "
          "assigned plans after it (KAZOO's POST /services)",
          body=("add", "plans", "delete", "overrides", "merge"), statuses=(403,)),
    Route("GET", "/services/summary", ("summary", "summary_req"),
          Data(Success[KazooSummary], lambda reply: kazoo_summary(
              reply.summary, datetime.now(UTC)).model_dump()),
          "The account's services as KAZOO shows them (status object, reseller, billing "
          "cycle, each invoice's plan) with svc's own fields: plans, overrides, quantities, "
          "live invoices, standing; the invoices' items as CSV with `Accept: text/csv` or "
          "`accept=csv`", csv=lambda reply: summary_csv(reply.summary)),
    Route("GET", "/services/available", ("plans", "available_plans_req"),
          page_of("plans", AvailablePlan), "The plans of the account's reseller; with "
          "`details=true` each with its document; crossbar's `filter_<path>`, "
          "`filter_not_<path>`, `has_key`, `key_missing` and `has_value` select on it",
          query=("details",),
          links=(Link("AssignTheFirst", "post_services_plan_id",
                      {"path.plan_id": "$response.body#/data/0/id"}),)),
    Route("GET", "/services/editable", ("plans", "editable_req"),
          Data(Success[dict[str, dict[str, dict[str, Any]]]], lambda reply: reply.data()[
              "fields"]), "What a plan may price, per category and item: the properties a "
          "plan item takes (KAZOO's editable; also `GET /v2/services/editable`, no token)"),
    Route("GET", "/services/overrides", ("summary", "summary_req"),
          Data(Success[Overrides], _overrides), "The account's global overrides"),
    Route("POST", "/services/overrides", ("overrides", "overrides_set_req"), _SUMMARY,
          "Set (or with merge, deep-merge) the global overrides: `{overrides, merge}`, or "
          "KAZOO's body, the overrides themselves", body=("overrides", "merge"),
          map_body="overrides"),
    Route("PATCH", "/services/overrides", ("overrides", "overrides_set_req"), _SUMMARY,
          "Deep-merge into the global overrides (KAZOO's PATCH)", body=("overrides", "merge"),
          map_body="overrides", merged=True),
    Route("POST", "/services/manual", ("overrides", "manual_set_req"), _SUMMARY,
          "Set (or with merge, deep-merge) the manual quantities: `{quantities, merge}`, or "
          "KAZOO's body, the quantities themselves", body=("quantities", "merge"),
          map_body="quantities"),
    Route("PATCH", "/services/manual", ("overrides", "manual_set_req"), _SUMMARY,
          "Deep-merge into the manual quantities (KAZOO's PATCH)", body=("quantities", "merge"),
          map_body="quantities", merged=True),
    Route("POST", "/services/quote", ("quote", "quote_req"),
          Data(Success[KazooQuote], lambda reply: kazoo_quote(reply.quote).model_dump()),
          "Quote the account as it is, or with other plans, overrides or quantity changes; "
          "changes nothing", body=("plans", "add", "delete", "overrides", "changes"),
          access=Access.READ),
    Route("POST", "/services/sync", ("sync", "sync_req"), whole(SyncReply),
          "Sync the account with its bookkeepers now", body=(),
          links=(Link("ItsDeliveries", "get_services_deliveries", {}),)),
    Route("POST", "/services/synchronization", ("sync", "sync_req"), whole(SyncReply),
          "Sync the account with its bookkeepers now (KAZOO's name for `POST /services/sync`)",
          body=()),
    Route("POST", "/services/reconciliation", ("reconcile", "reconcile_req"),
          whole(ReconcileReply),
          "Recount the account's quantities, and its ancestors' cascades, from svc's ledger "
          "(`source=couch`: from the documents in CouchDB) (KAZOO's reconciliation)",
          body=(), query=("source",)),
    Route("GET", "/services/deliveries", ("sync", "deliveries_req"),
          page_of("deliveries", Delivery),
          "Every invoice delivery of the account to its bookkeepers, newest first",
          query=("page_size", "start_key"),
          links=(Link("RetryTheNewest", "post_services_deliveries_delivery_id_retry",
                      {"path.delivery_id": "$response.body#/data/0/id"}),
                 Link("NextPage", "get_services_deliveries",
                      {"query.start_key": "$response.body#/next_start_key"}))),
    Route("GET", "/services/ledger", ("sync", "ledger_req"),
          Data(Success[list[LedgerEntry]], lambda reply: reply.data()["entries"]),
          "The local bookkeeper's ledger of the account, oldest first: each invoice svc "
          "billed itself, from `from` (included) up to `to` (excluded), Gregorian seconds; "
          "as CSV with `Accept: text/csv` or `accept=csv`",
          query=("from_", "to"), csv=lambda reply: ledger_csv(reply.entries)),
    Route("POST", "/services/deliveries/{delivery_id}/retry", ("sync", "delivery_retry_req"),
          the("delivery", Delivery),
          "Re-send a failed delivery with its idempotency key (by syncing the account now)",
          body=()),
    Route("POST", "/services/deliveries/{delivery_id}/reroute",
          ("sync", "delivery_reroute_req"), the("delivery", Delivery),
          "Bill what a failed delivery owed a bookkeeper that is no longer the account's to "
          "its present bookkeeper (by syncing the account now)", body=()),
    Route("POST", "/services/deliveries/{delivery_id}/abandon",
          ("sync", "delivery_abandon_req"), the("delivery", Delivery),
          "Give up a failed delivery, with a reason: its bookkeeper is never sent it",
          body=()),
    Route("GET", "/services/audit", ("audit", "audit_req"), page_of("entries", AuditEntry),
          "The account's audit trail, newest first: who changed what, when and why",
          query=("since", "until", "page_size", "start_key"),
          query_names={"created_from": "since", "created_to": "until"},
          links=(Link("NextPage", "get_services_audit",
                      {"query.start_key": "$response.body#/next_start_key"}),
                 Link("TheNewest", "get_services_audit_entry_id",
                      {"path.entry_id": "$response.body#/data/0/id"}))),
    Route("GET", "/services/audit/{entry_id}", ("audit", "audit_entry_req"),
          the("entry", AuditEntry), "One entry of the account's audit trail"),
    Route("GET", "/services/audit_summary", ("audit", "audit_summary_req"),
          Data(Success[list[dict[str, dict[str, DaySummary]]]], _days_by_item),
          "What was billed per item and per UTC day, from the answered invoices (KAZOO's "
          "audit_summary)", query=("since", "until"),
          query_names={"created_from": "since", "created_to": "until"}),
    Route("GET", "/services/audit_summary/{item}", ("audit", "audit_summary_req"),
          Data(Success[list[dict[str, DaySummary]]], _days_of_item),
          "What was billed of one item per UTC day, newest first (KAZOO's "
          "audit_summary/{source})", query=("since", "until"),
          query_names={"created_from": "since", "created_to": "until"}),
    Route("POST", "/services/{plan_id}", ("assign", "assign_plan_req"), whole(PlanChangeReply),
          "Assign a plan of the account's reseller; with dry_run, quote the change instead",
          body=("overrides", "merge"), query=("dry_run",), statuses=(403,),
          links=(Link("RemoveIt", "delete_services_plan_id",
                      {"path.plan_id": "$request.path.plan_id"}),
                 Link("TheAuditEntry", "get_services_audit", {}))),
    Route("DELETE", "/services/{plan_id}", ("assign", "remove_plan_req"),
          whole(PlanChangeReply),
          "Remove a plan from the account; with dry_run, quote the change instead",
          body=(), query=("dry_run",)),
    Route("GET", "/reseller", ("reseller", "reseller_get_req"), whole(ResellerReply),
          "The account's reseller, and whether it is one"),
    Route("PUT", "/reseller", ("reseller", "reseller_promote_req"), whole(ResellerReply),
          "Promote the account to reseller", body=(), statuses=(403,), access=Access.RESELLER,
          links=(Link("DemoteIt", "delete_reseller", {}),)),
    Route("DELETE", "/reseller", ("reseller", "reseller_demote_req"), whole(ResellerReply),
          "Demote the account from reseller", body=(), statuses=(403,),
          access=Access.RESELLER),
)
