"""JSON Schemas of every AMQP message and one AsyncAPI 3.0 document, generated from pydantic
models and committed in ``amqp_schemas/`` (``svc schemas``; SPEC §1, §5, §12).

Requests are described by their own models (``messages.REQUESTS``). Replies, events and the
doc-change notice get models here, shaped after what ``handlers``, ``rpc``, ``publisher`` and
``notices`` send and read. Everything is pure: ``generate`` returns the documents.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from .. import __version__
from ..jsonio import dumps
from .envelope import CONTENT_TYPE, GREGORIAN_OFFSET
from .messages import REQUESTS, Envelope, response_name
from .publisher import DEAD_LETTER_REASON
from .topology import (
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_QUEUE,
    DOC_CHANGE_BINDINGS,
    DOC_CHANGES_QUEUE,
    KAZOO_EXCHANGES,
    RPC_QUEUE,
)

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"
ASYNCAPI_FILE = "asyncapi.json"
SCHEMA_SUFFIX = ".schema.json"

# --- shared field types --------------------------------------------------------------------

T = TypeVar("T")


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


# Left out of the message when empty, never sent as null: svc strips top-level nulls on
# publish and omits empty sub-fields of items (SPEC §12), so the schema allows no null.
Omitted = Annotated[T | SkipJsonSchema[None], Field(json_schema_extra=_no_default)]
# Money is a plain JSON number on the wire (jsonio), never a string (SPEC §12); pydantic
# would render a Decimal as number-or-string.
Money = Annotated[Decimal, WithJsonSchema({"type": "number"})]
NonNegative = Annotated[int, Field(ge=0)]
Counts = dict[str, dict[str, NonNegative]]
Gregorian = Annotated[int, Field(ge=GREGORIAN_OFFSET,
                                 description="Gregorian seconds (Unix + 62167219200)")]

# --- invoices (rating/invoice.py, rating/item.py) ----------------------------------------


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
    bookkeeper: Bookkeeper
    items: list[InvoiceItem]
    activation_charges: list[ActivationCharge]
    summary: InvoiceSummary


class Quote(BaseModel):
    invoices: list[Invoice]


# --- other reply shapes (handlers.py, store/records.py) -----------------------------------


class PlanAssignment(BaseModel):
    vendor_id: str
    overrides: dict[str, Any]


class SyncResult(BaseModel):
    bookkeeper: Bookkeeper
    status: Literal["completed", "failed"]
    reason: str | None = None
    message: str | None = None


class DeliveryAttempt(BaseModel):
    attempt: int = Field(ge=1)
    outcome: Literal["good_standing", "delinquent", "failed"]
    reason: str | None = None
    message: str | None = None
    at: Gregorian


class Delivery(BaseModel):
    """One invoice handed to one bookkeeper for one billed snapshot, with every attempt
    (SPEC §14): a retry carries the same idempotency key while the content is the same."""

    id: str = Field(description="the record's key: <account>|<bookkeeper>|<snapshot seq>")
    bookkeeper: Bookkeeper
    snapshot_seq: int = Field(ge=1)
    idempotency_key: str
    content: str = Field(description="the hash of the invoice sent")
    attempts: int = Field(ge=1)
    state: Literal["sending", "answered", "failed"]
    results: list[DeliveryAttempt]
    updated_at: str = Field(description="ISO 8601 UTC")


class Who(BaseModel):
    kind: Literal["token", "amqp", "notice", "sync"]
    name: str = Field(description="the token's name, the RPC's App-Name/Node, the notice "
                                  "consumer, or the node that synced")


class AuditEntry(BaseModel):
    """One change of an account, written with it (SPEC §15); a ``quantities_daily`` entry
    sums a UTC day's document-driven changes: units added and removed per item."""

    id: str
    account_id: str
    at: str = Field(description="ISO 8601 UTC")
    who: Who | None = Field(description="null for svc's own tools (an import from the CLI)")
    action: Literal["plan_assigned", "plan_removed", "overrides_set", "manual_set",
                    "reseller_promoted", "reseller_demoted", "bookkeeper_set",
                    "status_changed", "plan_edited", "delivery", "quantities_daily"]
    reason: str | None
    before: Any
    after: Any


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
    invoices: list[Invoice] = Field(description="live, compared with the last synced state")
    dirty: bool
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


class QuantityChange(BaseModel):
    account_id: str
    scope: Literal["account", "cascade"]
    category: str
    item: str
    previous: NonNegative
    current: NonNegative


class Violation(BaseModel):
    path: str
    rule: str


# --- what svc publishes: replies, the generic error, events -------------------------------


class Published(BaseModel):
    """The envelope svc puts on everything it publishes (envelope.py)."""

    app_name: Literal["services"] = Field(alias="App-Name")
    app_version: str = Field(alias="App-Version")
    event_category: str = Field(alias="Event-Category")
    event_name: str = Field(alias="Event-Name")
    msg_id: str = Field(alias="Msg-ID", description="a reply copies its request's Msg-ID")
    node: str = Field(alias="Node")


def _when_status(status: str, required: list[str]) -> dict[str, Any]:
    return {"if": {"required": ["Status"], "properties": {"Status": {"const": status}}},
            "then": {"required": required}}


def _status_rules(schema: dict[str, Any], model: type[Reply]) -> None:
    # which fields come with which Status: a rule pydantic cannot see in the field types
    rules = [_when_status("error", ["Reason"])]
    if model.on_success:
        rules.append(_when_status("success", list(model.on_success)))
    schema["allOf"] = rules


class Reply(Published):
    """``<name>_resp``: ``Status`` success or error; an error has a machine ``Reason``, a
    human ``Message`` and, for plan_invalid, ``Details``; reply fields come on success."""

    model_config = ConfigDict(json_schema_extra=_status_rules)
    on_success: ClassVar[tuple[str, ...]] = ()  # reply fields always present on success

    status: Literal["success", "error"] = Field(alias="Status")
    reason: Omitted[str] = Field(None, alias="Reason")
    message: Omitted[str] = Field(None, alias="Message")
    details: Omitted[list[Violation]] = Field(None, alias="Details")


class QuoteResp(Reply):
    on_success = ("Quote",)
    quote: Omitted[Quote] = Field(None, alias="Quote")


class SummaryResp(Reply):
    on_success = ("Summary",)
    summary: Omitted[Summary] = Field(None, alias="Summary")


class PlanResp(Reply):
    on_success = ("Plan",)
    plan: Omitted[Plan] = Field(None, alias="Plan")


class PlanIdResp(Reply):
    """``Plan-ID`` is left out when there is none (no default plan)."""

    plan_id: Omitted[str] = Field(None, alias="Plan-ID")


class AvailablePlansResp(Reply):
    on_success = ("Plans",)
    plans: Omitted[list[AvailablePlan]] = Field(None, alias="Plans")


class BookkeeperResp(Reply):
    on_success = ("Bookkeeper",)
    bookkeeper: Omitted[dict[str, str]] = Field(None, alias="Bookkeeper")


class PlanChangeResp(Reply):
    """``Quote`` (the activation charges of the change) comes with a dry run only."""

    on_success = ("Plans",)
    plans: Omitted[dict[str, PlanAssignment]] = Field(None, alias="Plans")
    quote: Omitted[Quote] = Field(None, alias="Quote")


class ResellerResp(Reply):
    on_success = ("Is-Reseller",)
    reseller_id: Omitted[str] = Field(None, alias="Reseller-ID")
    is_reseller: Omitted[bool] = Field(None, alias="Is-Reseller")


class ReconcileResp(Reply):
    """``Changes`` is truncated for ``all``; ``Changes-Total`` counts them all."""

    on_success = ("Changed", "Changes", "Changes-Total")
    changed: Omitted[bool] = Field(None, alias="Changed")
    changes: Omitted[list[QuantityChange]] = Field(None, alias="Changes")
    changes_total: Omitted[NonNegative] = Field(None, alias="Changes-Total")


class SyncResp(Reply):
    """One result per invoice handed to a bookkeeper, and the account's status after."""

    on_success = ("Results", "Account-Status")
    results: Omitted[list[SyncResult]] = Field(None, alias="Results")
    account_status: Omitted[str] = Field(None, alias="Account-Status")


class PageResp(Reply):
    """A page of a list, newest first; ``Next-Start-Key`` is left out on the last page."""

    next_start_key: Omitted[str] = Field(None, alias="Next-Start-Key",
                                         description="the Start-Key of the next page")


class DeliveriesResp(PageResp):
    on_success = ("Deliveries",)
    deliveries: Omitted[list[Delivery]] = Field(None, alias="Deliveries")


class DeliveryResp(Reply):
    on_success = ("Delivery",)
    delivery: Omitted[Delivery] = Field(None, alias="Delivery")


class AuditResp(PageResp):
    on_success = ("Entries",)
    entries: Omitted[list[AuditEntry]] = Field(None, alias="Entries")


class StandingResp(Reply):
    """The standing words replace success: ``error`` with the status as ``Reason``."""

    status: Literal["good_standing", "error"] = Field(alias="Status")


# request Event-Name -> its reply's model
REPLIES: dict[str, type[Reply]] = {
    "quote_req": QuoteResp,
    "summary_req": SummaryResp,
    "plan_put_req": PlanResp,
    "plan_get_req": PlanResp,
    "plan_delete_req": PlanIdResp,
    "available_plans_req": AvailablePlansResp,
    "default_plan_set_req": PlanIdResp,
    "default_plan_get_req": PlanIdResp,
    "bookkeeper_set_req": BookkeeperResp,
    "assign_plan_req": PlanChangeResp,
    "remove_plan_req": PlanChangeResp,
    "overrides_set_req": SummaryResp,
    "manual_set_req": SummaryResp,
    "reseller_promote_req": ResellerResp,
    "reseller_demote_req": ResellerResp,
    "reseller_get_req": ResellerResp,
    "reconcile_req": ReconcileResp,
    "sync_req": SyncResp,
    "deliveries_req": DeliveriesResp,
    "delivery_retry_req": DeliveryResp,
    "audit_req": AuditResp,
    "standing_req": StandingResp,
}


class ErrorReply(Published):
    """Kazoo's generic error: the answer to a request that fails envelope or schema
    validation (kazoo-amqp.md §1.5)."""

    event_category: Literal["error"] = Field(alias="Event-Category")
    event_name: str = Field(alias="Event-Name", pattern="_resp$",
                            description="the reply the caller waits for")
    error_message: str = Field(alias="Error-Message", description="names each bad field")
    request: Omitted[Any] = Field(None, alias="Request",
                                  description="the original request (not for oversized ones)")


class Event(Published):
    """An event, published on ``services`` as ``services.<event>.<account_id>``."""

    account_id: str = Field(alias="Account-ID")
    timestamp: Gregorian = Field(alias="Timestamp")


class BookkeeperSync(Event):
    """The outcome of handing one invoice to its bookkeeper: one per invoice and attempt."""

    bookkeeper_id: str = Field(alias="Bookkeeper-ID")
    bookkeeper_type: str = Field(alias="Bookkeeper-Type")
    vendor_id: str = Field(alias="Vendor-ID")
    status: Literal["completed", "failed"] = Field(alias="Status")
    reason: Omitted[str] = Field(None, alias="Reason")
    message: Omitted[str] = Field(None, alias="Message")
    items: list[InvoiceItem] = Field(alias="Items")
    activation_charges: list[ActivationCharge] = Field(alias="Activation-Charges")
    summary: InvoiceSummary = Field(alias="Summary")
    attempt: int = Field(alias="Attempt", ge=1, description="from 1 per generation")


class StatusChange(Event):
    """An account's standing changed (the worst of its invoices after a sync)."""

    previous_status: str = Field(alias="Previous-Status")
    status: str = Field(alias="Status")
    reason: Omitted[str] = Field(None, alias="Reason")


class QuantitiesChange(Event):
    """An account's quantities changed (only sent when something did)."""

    changes: list[QuantityChange] = Field(alias="Changes", min_length=1)


class PlansChange(Event):
    """Plans were assigned to or removed from an account."""

    added: list[str] = Field(alias="Added")
    removed: list[str] = Field(alias="Removed")
    plans: dict[str, PlanAssignment] = Field(alias="Plans")


EVENTS: dict[str, type[Event]] = {
    "bookkeeper_sync": BookkeeperSync,
    "status_change": StatusChange,
    "plans_change": PlansChange,
    "quantities_change": QuantitiesChange,
}

# --- what svc consumes besides requests ---------------------------------------------------

_EDITED_NOT_DELETED = {"properties": {"Event-Name": {"enum": ["doc_created", "doc_edited"]},
                                      "Is-Soft-Deleted": {"const": False}}}


class DocChangeNotice(Envelope):
    """A Kazoo document-change notice (kazoo-amqp.md §3.2) as svc reads it (SPEC §6, §13).
    KAZOO's own publisher sends no ``Doc``: svc then reads the document from CouchDB."""

    # ingest.notices.read_notice dead-letters a created/edited notice without Rev
    model_config = ConfigDict(json_schema_extra={
        "if": _EDITED_NOT_DELETED, "then": {"required": ["Rev"]}})

    event_category: Literal["configuration"] = Field(alias="Event-Category")
    event_name: Literal["doc_created", "doc_edited", "doc_deleted"] = Field(alias="Event-Name")
    id: str = Field(alias="ID", min_length=1)
    database: str = Field(alias="Database")
    rev: str | None = Field(None, alias="Rev", pattern="^[0-9]+(-|$)")
    type: str | None = Field(None, alias="Type", description="the document's pvt_type")
    account_id: str | None = Field(
        None, alias="Account-ID", description="required unless Database is an account's")
    doc: dict[str, Any] | None = Field(
        None, alias="Doc", description="the body; without it svc reads it from CouchDB")
    is_soft_deleted: bool | None = Field(None, alias="Is-Soft-Deleted")


# --- JSON Schemas --------------------------------------------------------------------------

_BY_ACCOUNT = ("Account-ID", "Plans", "Overrides", "Changes")


def _present(field: str) -> dict[str, Any]:
    return {"required": [field], "not": {"properties": {field: {"type": "null"}}}}


# What a request model's validator enforces beyond its fields (pydantic cannot render a
# model_validator): a quote is either a Quote-Request or by Account-ID, never both.
REQUEST_RULES: dict[str, dict[str, Any]] = {
    "quote_req": {
        "anyOf": [_present("Quote-Request"), _present("Account-ID")],
        "if": _present("Quote-Request"),
        "then": {"properties": {field: {"type": "null"} for field in _BY_ACCOUNT}},
    },
}


def message_schema(model: type[BaseModel], title: str, category: str | None = None,
                   name: str | None = None) -> dict[str, Any]:
    """The model's schema, titled by the message; one model may serve several messages, so
    ``Event-Category``/``Event-Name`` are pinned here rather than in the model."""
    schema = model.model_json_schema(by_alias=True)
    properties = schema["properties"]
    if category is not None:
        properties["Event-Category"] = {**properties["Event-Category"], "const": category}
    if name is not None:
        properties["Event-Name"] = {**properties["Event-Name"], "const": name}
    return {"$schema": DIALECT, **schema, "title": title}


def reply_model(request_name: str) -> type[Reply]:
    try:
        return REPLIES[request_name]
    except KeyError:
        raise KeyError(f"no reply model for {request_name}: add one to REPLIES in "
                       f"{__name__}") from None


def message_schemas() -> dict[str, dict[str, Any]]:
    """Message name -> JSON Schema."""
    schemas: dict[str, dict[str, Any]] = {}
    for (_, name), model in REQUESTS.items():
        reply = response_name(name)
        schemas[name] = {**message_schema(model, name, "services", name),
                         **REQUEST_RULES.get(name, {})}
        schemas[reply] = message_schema(reply_model(name), reply, "services", reply)
    schemas["error"] = message_schema(ErrorReply, "error")
    for name, event in EVENTS.items():
        schemas[name] = message_schema(event, name, "services", name)
    schemas["doc_change"] = message_schema(DocChangeNotice, "doc_change")
    return schemas


# --- the AsyncAPI document ----------------------------------------------------------------


def _exchange(name: str, kind: str, durable: bool = False) -> dict[str, Any]:
    # Kazoo's exchanges are durable=false, auto_delete=false (topology.py)
    return {"amqp": {"is": "routingKey", "bindingVersion": "0.3.0", "exchange": {
        "name": name, "type": kind, "durable": durable, "autoDelete": False}}}


def _refs(prefix: str, names: list[str]) -> dict[str, dict[str, str]]:
    return {name: {"$ref": f"{prefix}/{name}"} for name in names}


def _component(name: str, summary: str, correlated: bool = False) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": name, "title": name, "summary": summary, "contentType": CONTENT_TYPE,
        "payload": {"schemaFormat": SCHEMA_FORMAT,
                    "schema": {"$ref": f"{name}{SCHEMA_SUFFIX}"}}}
    if correlated:
        message["correlationId"] = {"location": "$message.payload#/Msg-ID",
                                    "description": "a reply copies its request's Msg-ID"}
    return message


DEAD_LETTER = {
    "name": "dead_letter", "title": "dead_letter", "contentType": CONTENT_TYPE,
    "summary": "A request that can be answered nowhere or a notice that can never be "
               "applied: the original body, unchanged, under its original routing key.",
    "headers": {"type": "object", "properties": {DEAD_LETTER_REASON: {
        "type": "string",
        "description": "why svc dead-lettered it (the broker's own dead letters, past the "
                       "delivery limit, carry x-death instead)"}}},
}


def _channels(requests: list[str], replies: list[str]) -> dict[str, Any]:
    categories = sorted({category for category, _ in REQUESTS})
    return {
        "requests": {
            "address": "services.{category}.request",
            "title": "RPC requests",
            "description": f"Consumed from the shared queue `{RPC_QUEUE}` (every replica "
                           "competes), acked after the reply is published.",
            "parameters": {"category": {"enum": categories}},
            "messages": _refs("#/components/messages", requests),
            "bindings": _exchange("services", KAZOO_EXCHANGES["services"].value)},
        "replies": {
            "address": "{server_id}",
            "title": "RPC replies",
            "description": "To the caller's queue named by the request's `Server-ID`; a "
                           "request without one but with the AMQP `reply_to` property is "
                           "answered on the default exchange with `correlation_id` copied.",
            "parameters": {"server_id": {"description": "the request's Server-ID"}},
            "messages": _refs("#/components/messages", replies),
            "bindings": _exchange("targeted", KAZOO_EXCHANGES["targeted"].value)},
        "events": {
            "address": "services.{event}.{account_id}",
            "title": "Events",
            "parameters": {
                "event": {"enum": list(EVENTS), "location": "$message.payload#/Event-Name"},
                "account_id": {"location": "$message.payload#/Account-ID"}},
            "messages": _refs("#/components/messages", list(EVENTS)),
            "bindings": _exchange("services", KAZOO_EXCHANGES["services"].value)},
        "docChanges": {
            "address": "{action}.{database}.{type}.{id}",
            "title": "Document-change notices",
            "description": f"Consumed from the durable quorum queue `{DOC_CHANGES_QUEUE}` "
                           f"(acked after the store write), bound with "
                           f"{', '.join(f'`{b}`' for b in DOC_CHANGE_BINDINGS)}.",
            "parameters": {
                "action": {"enum": ["doc_created", "doc_edited", "doc_deleted"],
                           "location": "$message.payload#/Event-Name"},
                "database": {"location": "$message.payload#/Database"},
                "type": {"location": "$message.payload#/Type"},
                "id": {"location": "$message.payload#/ID"}},
            "messages": _refs("#/components/messages", ["doc_change"]),
            "bindings": _exchange("configuration", KAZOO_EXCHANGES["configuration"].value)},
        "deadLetters": {
            "address": None,
            "title": "Dead letters",
            "description": f"A durable fanout exchange; queue `{DEAD_LETTER_QUEUE}`.",
            "messages": _refs("#/components/messages", ["dead_letter"]),
            "bindings": _exchange(DEAD_LETTER_EXCHANGE, "fanout", durable=True)},
    }


def _operation(action: str, channel: str, messages: list[str], summary: str,
               **more: Any) -> dict[str, Any]:
    return {"action": action, "channel": {"$ref": f"#/channels/{channel}"},
            "summary": summary,
            "messages": list(_refs(f"#/channels/{channel}/messages", messages).values()),
            **more}


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n")[0]


def asyncapi() -> dict[str, Any]:
    requests = [name for _, name in REQUESTS]
    replies = [*(response_name(name) for name in requests), "error"]
    messages = {
        **{name: _component(name, f"Request (category `{category}`).", correlated=True)
           for category, name in REQUESTS},
        **{response_name(name): _component(response_name(name), f"Reply to `{name}`.",
                                           correlated=True) for name in requests},
        "error": _component("error", "The generic error reply to an invalid request.",
                            correlated=True),
        **{name: _component(name, _first_line(model.__doc__)) for name, model in EVENTS.items()},
        "doc_change": _component("doc_change", "A Kazoo document-change notice."),
        "dead_letter": DEAD_LETTER,
    }
    ack = {"amqp": {"ack": True, "bindingVersion": "0.3.0"}}
    operations = {
        "receiveRequests": _operation(
            "receive", "requests", requests, "Answer every request, never with silence.",
            reply={"channel": {"$ref": "#/channels/replies"},
                   "address": {"location": "$message.payload#/Server-ID"},
                   "messages": list(_refs("#/channels/replies/messages", replies).values())},
            bindings=ack),
        "sendReplies": _operation("send", "replies", replies, "Reply to a request."),
        "sendEvents": _operation("send", "events", list(EVENTS), "Publish an event."),
        "receiveDocChanges": _operation("receive", "docChanges", ["doc_change"],
                                        "Count what account documents bill for.",
                                        bindings=ack),
        "sendDeadLetters": _operation("send", "deadLetters", ["dead_letter"],
                                      "Set aside what cannot be answered or applied.",
                                      bindings={"amqp": {"deliveryMode": 2,
                                                         "bindingVersion": "0.3.0"}}),
    }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "svc", "version": __version__,
                 "description": "The services app of a Kazoo-style cluster: RPC requests "
                                "and replies, events, and the document-change notices it "
                                "consumes (Kazoo conventions: Title-Case-With-Hyphens "
                                "top-level fields, empty values stripped on publish)."},
        "defaultContentType": CONTENT_TYPE,
        "servers": {"rabbitmq": {
            "host": "{host}", "protocol": "amqp", "protocolVersion": "0-9-1",
            "description": "The cluster's RabbitMQ broker (`SVC_AMQP_URL`).",
            "variables": {"host": {"default": "127.0.0.1:5672"}}}},
        "channels": _channels(requests, replies),
        "operations": operations,
        "components": {"messages": messages},
    }


# --- files ---------------------------------------------------------------------------------


def generate() -> dict[str, dict[str, Any]]:
    """File name -> JSON document: one ``<message>.schema.json`` each, plus the AsyncAPI."""
    documents = {f"{name}{SCHEMA_SUFFIX}": schema for name, schema in message_schemas().items()}
    documents[ASYNCAPI_FILE] = asyncapi()
    return dict(sorted(documents.items()))


def render(document: dict[str, Any]) -> bytes:
    # sorted keys and a trailing newline: byte-stable, so the files can be committed
    return dumps(document, indent=True, sort_keys=True) + b"\n"


def _generated_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir()
                  if p.name == ASYNCAPI_FILE or p.name.endswith(SCHEMA_SUFFIX))


def write(directory: Path) -> list[Path]:
    """Write every document and remove generated files of messages that no longer exist."""
    documents = generate()
    directory.mkdir(parents=True, exist_ok=True)
    for stale in _generated_files(directory):
        if stale.name not in documents:
            stale.unlink()
    written = []
    for name, document in documents.items():
        path = directory / name
        path.write_bytes(render(document))
        written.append(path)
    return written


def drift(directory: Path) -> list[str]:
    """Names of the files that are missing, different or extra in ``directory``."""
    expected = {name: render(document) for name, document in generate().items()}
    present = {path.name: path for path in _generated_files(directory)}
    return sorted(name for name in expected.keys() | present.keys()
                  if name not in present or name not in expected
                  or present[name].read_bytes() != expected[name])
