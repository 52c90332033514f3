"""JSON Schemas of every AMQP message and one AsyncAPI 3.0 document, assembled from the
models in ``svc.models`` and committed in ``amqp_schemas/`` (``svc schemas``).
Everything is pure: ``generate`` returns the documents.

A message on the wire is its model inside svc's envelope, with two rules of the wire that
the models do not carry: a top-level ``None`` is never sent (``envelope.strip_empty``), and a
reply's fields come only with ``Status: success``.
"""

from __future__ import annotations

import functools
import operator
import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from .. import __version__
from ..jsonio import dumps
from ..models.events import EVENTS
from ..models.fields import Omitted
from ..models.notices import DocChangeNotice
from ..models.replies import REPLIES, ErrorReply, Published, ReplyFields, ReplyStatus
from ..models.requests import REQUESTS, response_name
from .envelope import CONTENT_TYPE
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

# --- the models, as published -------------------------------------------------------------


def _is_none(arg: Any) -> bool:
    return arg is type(None) or get_args(arg)[:1] == (type(None),)  # also SkipJsonSchema[None]


def _nullable(info: FieldInfo) -> bool:
    return get_origin(info.annotation) in (Union, types.UnionType) and any(
        _is_none(arg) for arg in get_args(info.annotation))


def always_sent(info: FieldInfo) -> bool:
    """Present in every dump: never ``None``, and required or defaulted to a value."""
    has_value = info.is_required() or info.default_factory is not None or (
        info.default is not None)
    return has_value and not _nullable(info)


def _sent(info: FieldInfo, required: bool) -> tuple[Any, FieldInfo]:
    """A top-level field as sent: never null, since ``None`` is left out."""
    annotation = info.annotation
    if _nullable(info):
        annotation = functools.reduce(
            operator.or_, [arg for arg in get_args(annotation) if not _is_none(arg)])
    if info.metadata:
        annotation = Annotated[(annotation, *info.metadata)]
    if required:
        return annotation, Field(alias=info.alias, description=info.description)
    return Omitted[annotation], Field(None, alias=info.alias, description=info.description)


def _required(model: type[BaseModel]) -> set[str]:
    return {name for name, info in model.model_fields.items() if info.is_required()}


def published(model: type[BaseModel], envelope: type[BaseModel], *,
              on_success: bool = False) -> type[BaseModel]:
    """``model``'s fields inside ``envelope``'s, as they travel; ``on_success``: only the
    envelope's own fields are always there."""
    kept = _required(envelope)
    return create_model(
        model.__name__, __base__=envelope, __doc__=model.__doc__,
        **{name: _sent(info, always_sent(info) and (name in kept or not on_success))
           for name, info in model.model_fields.items()})


def _when_status(status: str, required: list[str]) -> dict[str, Any]:
    return {"if": {"required": ["Status"], "properties": {"Status": {"const": status}}},
            "then": {"required": required}}


def reply_message(fields: type[ReplyFields]) -> type[BaseModel]:
    """``<name>_resp``: the reply's fields come on success, ``Reason`` with an error."""
    always = [info.alias or name for name, info in fields.model_fields.items()
              if always_sent(info) and name not in _required(ReplyStatus)]
    rules = [_when_status("error", ["Reason"])]
    if always:
        rules.append(_when_status("success", always))

    class Reply(ReplyStatus):
        model_config = ConfigDict(json_schema_extra={"allOf": rules})

    return published(fields, Reply, on_success=True)


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


def reply_fields(request_name: str) -> type[ReplyFields]:
    try:
        return REPLIES[request_name]
    except KeyError:
        raise KeyError(f"no reply for {request_name}: add one to svc.models.replies.REPLIES"
                       ) from None


def message_schemas() -> dict[str, dict[str, Any]]:
    """Message name -> JSON Schema."""
    schemas: dict[str, dict[str, Any]] = {}
    for (_, name), model in REQUESTS.items():
        reply = response_name(name)
        schemas[name] = {**message_schema(model, name, "services", name),
                         **REQUEST_RULES.get(name, {})}
        schemas[reply] = message_schema(reply_message(reply_fields(name)), reply, "services",
                                        reply)
    schemas["error"] = message_schema(ErrorReply, "error")
    for name, event in EVENTS.items():
        schemas[name] = message_schema(published(event, Published), name, "services", name)
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
