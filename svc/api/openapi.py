"""The OpenAPI 3.1 document of the HTTP API, generated from the route table and its pydantic
models (the bodies derived from the RPC request models, the answers of ``models``), served
at ``/openapi.json`` and committed as ``http_schemas/openapi.json`` (``svc schemas``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from .. import __version__
from ..amqp.schemas import render
from .models import Failure
from .routes import EDITABLE_PATH, PREFIX, ROUTES, Route

OPENAPI_FILE = "openapi.json"
REF = "#/components/schemas/{model}"
JSON = "application/json"
CSV = "text/csv"

# the error answers, by HTTP status: (component name, when)
ERRORS = {
    400: ("invalid", "`invalid_data`: the input breaks a rule; each bad field is named in "
                     "`data` (`{<field>: {<rule>: {message}}}`)."),
    401: ("unauthorized", "`invalid_credentials`: no token, or one that is not valid (unknown, "
                          "expired, badly signed, revoked)."),
    403: ("forbidden", "`forbidden`: the token may not do this to this account (only its "
                       "reseller or a super-duper admin changes its billing; only a super-duper "
                       "admin promotes or demotes; read tokens only read; never the master)."),
    404: ("not_found", "`bad_identifier`: no such account (also any account the token may not "
                       "see), plan (also another reseller's) or delivery; "
                       "`plan_is_not_assigned`."),
    409: ("conflict", "`conflict`: a concurrent change or sync won, try again; or the "
                      "delivery to retry has not failed; `account_has_descendants`."),
    413: ("too_large", "The body exceeds `SVC_MAX_MESSAGE_BYTES`."),
    503: ("unavailable", "`store_unavailable`, or `not_ready` while svc starts or stops."),
}


def _errors(route: Route) -> list[int]:
    statuses = {401, 404, 503, *route.statuses}
    if route.body is not None or route.query:
        statuses.add(400)
    if route.body is not None:
        statuses.add(413)
    if route.method != "GET":
        statuses.update((403, 409))
    return sorted(statuses)


def _parameters(route: Route) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"$ref": f"#/components/parameters/{param}"} for param in route.path_fields]
    if route.query_model is not None:
        properties = route.query_model.model_json_schema()["properties"]
        parameters += [{"name": name, "in": "query", "required": False,
                        "schema": {k: v for k, v in schema.items() if k != "title"}}
                       for name, schema in properties.items()]
    if route.csv is not None:
        parameters.append({"name": "accept", "in": "query", "required": False,
                           "schema": {"enum": ["csv"]},
                           "description": "answer as CSV (as `Accept: text/csv` does)"})
    return parameters


def _body(schema: dict[str, Any], required: bool) -> dict[str, Any]:
    return {"required": required, "content": {JSON: {"schema": {"anyOf": [
        schema,
        {"type": "object", "required": ["data"], "properties": {
            "data": schema,
            "accept_charges": {"description": "KAZOO's; ignored (svc never asks)"},
            "ui_metadata": {"description": "Monster UI's; ignored"}},
         "description": "KAZOO's form; its other keys are ignored, but a top-level `merge` "
                        "is the route's"}]}}}}


def _probe(summary: str, content: dict[str, Any], *statuses: int) -> dict[str, Any]:
    return {"get": {"summary": summary, "security": [], "tags": ["operations"],
                    "responses": {str(status): {"description": summary, "content": content}
                                  for status in statuses}}}


def openapi() -> dict[str, Any]:
    inputs = [((route.operation_id, "answer"), "validation", TypeAdapter(route.data.answer))
              for route in ROUTES]
    inputs += [((route.operation_id, "body"), "validation", TypeAdapter(route.body_model))
               for route in ROUTES if route.body_model is not None]
    inputs.append((("failure", "answer"), "validation", TypeAdapter(Failure)))
    keyed, defs = TypeAdapter.json_schemas(inputs, by_alias=False, ref_template=REF)
    schema = {key: value for (key, _), value in keyed.items()}

    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        operation: dict[str, Any] = {
            "operationId": route.operation_id, "summary": route.summary,
            "description": f"The RPC `{route.request[1]}` (category `{route.request[0]}`).",
            "tags": [route.path.split("/")[1]],
            "parameters": _parameters(route),
            "responses": {
                "200": {"description": "success",
                        "content": {JSON: {"schema": schema[(route.operation_id, "answer")]},
                                    **({CSV: {"schema": {"type": "string"}}}
                                       if route.csv is not None else {})},
                        **({"links": {link.name: link.as_openapi() for link in route.links}}
                           if route.links else {})},
                **{str(status): {"$ref": f"#/components/responses/{ERRORS[status][0]}"}
                   for status in _errors(route)}}}
        if route.body_model is not None:
            required = any(info.is_required() for info in route.body_model.model_fields.values())
            operation["requestBody"] = _body(schema[(route.operation_id, "body")], required)
        paths.setdefault(PREFIX + route.path, {})[route.method.lower()] = operation

        if route.request == ("plans", "editable_req"):  # KAZOO serves it to anyone too
            paths[EDITABLE_PATH] = {"get": {
                **operation, "operationId": "get_services_editable_of_the_master",
                "security": [], "parameters": [], "responses": {
                    key: value for key, value in operation["responses"].items()
                    if key not in ("401", "403", "404")}}}

    text = {"text/plain": {"schema": {"type": "string"}}}
    anything = {JSON: {"schema": {"type": "object"}}}
    paths["/openapi.json"] = _probe("This document", anything, 200)
    paths["/metrics"] = _probe("Prometheus metrics (text format)", text, 200)
    paths["/healthz"] = _probe("Liveness: 200 unless the event loop is stuck", anything, 200, 503)
    paths["/readyz"] = _probe("Readiness: 200 while the broker, the store and the consumers "
                              "are up; else 503 naming what is down", anything, 200, 503)
    return {
        "openapi": "3.1.0",
        "info": {"title": "svc HTTP API", "version": __version__,
                 "description": "KAZOO 4.3's services API as svc serves it: every route runs "
                                "the RPC of the same name over the same models. Answers are "
                                "crossbar's envelope. A KAZOO login token or a static token "
                                "reads its account and that account's descendants (any other "
                                "account is answered as one that does not exist, 404); only "
                                "an account's reseller or a super-duper admin changes its "
                                "billing."},
        "security": [{"authToken": []}, {"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": defs["$defs"],
            "parameters": {
                "account_id": {"name": "account_id", "in": "path", "required": True,
                               "schema": {"type": "string", "minLength": 1}},
                "plan_id": {"name": "plan_id", "in": "path", "required": True,
                            "schema": {"type": "string", "minLength": 1}},
                "delivery_id": {"name": "delivery_id", "in": "path", "required": True,
                                "schema": {"type": "string", "minLength": 1},
                                "description": "a delivery's `id`, URL-encoded"},
                "entry_id": {"name": "entry_id", "in": "path", "required": True,
                             "schema": {"type": "string", "minLength": 1},
                             "description": "an audit entry's `id`, URL-encoded"},
                "item": {"name": "item", "in": "path", "required": True,
                         "schema": {"type": "string", "minLength": 1},
                         "description": "an item's key, such as `sip_device`"}},
            "responses": {name: {"description": when, "content": {JSON: {
                "schema": schema[("failure", "answer")]}}} for name, when in ERRORS.values()},
            "securitySchemes": {
                "authToken": {"type": "apiKey", "in": "header", "name": "X-Auth-Token",
                              "description": "a KAZOO login token, or one of SVC_API_TOKENS"},
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "the same token as `Authorization: Bearer`"}},
        },
    }


def write(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render(openapi()))


def drifted(path: Path) -> bool:
    """Whether the file at ``path`` is missing or differs from the generated document."""
    return not path.is_file() or path.read_bytes() != render(openapi())
