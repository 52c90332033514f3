"""crossbar's answer envelope (``api_util.erl`` ``do_create_resp_envelope``): every answer
carries ``auth_token``, ``request_id``, ``node``, ``version``, ``timestamp`` and ``status``;
a success ``data`` and ``revision``; an error the HTTP status as a string in ``error``,
KAZOO's error name in ``message`` (``cb_context.erl`` ``add_system_error``) and details in
``data``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .. import __version__
from ..jsonio import dumps

Doc = dict[str, Any]

# svc's Reason code -> (HTTP status, KAZOO's error name where KAZOO has one for the case)
ERRORS: dict[str, tuple[int, str | None]] = {
    "invalid": (400, "invalid_data"),
    "unauthorized": (401, "invalid_credentials"),  # cb_context.erl:999-1000
    "forbidden": (403, "forbidden"),  # cb_context.erl:997-998
    "master_account": (403, "forbidden"),  # cb_accounts.erl:351, 390
    "account_not_found": (404, "bad_identifier"),  # also every account the caller may not see
    "plan_not_found": (404, "bad_identifier"),  # also another reseller's plan
    "delivery_not_found": (404, "bad_identifier"),
    "audit_entry_not_found": (404, "bad_identifier"),
    "not_assigned": (404, "plan_is_not_assigned"),
    "not_found": (404, "faulty_request"),  # no such route (cb_context.erl:991-992)
    "method_not_allowed": (405, None),
    # KAZOO answers 500 (cb_context.erl:989-990); it is a refusal, not a server fault
    "account_has_descendants": (409, "account_has_descendants"),
    "conflict": (409, None),
    "too_large": (413, None),
    "internal_error": (500, None),
    "not_implemented": (501, None),
    "store_unavailable": (503, None),
    "not_ready": (503, None),
}


def status_of(reason: str) -> int:
    """Any Reason not listed is input that breaks a rule (plan_invalid, …): 400."""
    return ERRORS.get(reason, (400, None))[0]


def message_of(reason: str) -> str:
    return ERRORS.get(reason, (400, None))[1] or reason


@dataclass(frozen=True)
class Meta:
    """What every answer to one request carries."""

    request_id: str
    node: str
    auth_token: str = ""

    def fields(self) -> Doc:
        return {"auth_token": self.auth_token, "request_id": self.request_id,
                "node": self.node, "version": __version__,
                "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


def success(meta: Meta, data: Any, **beside: Any) -> Doc:
    revision = hashlib.sha256(dumps(data)).hexdigest()[:32]
    return {**meta.fields(), "status": "success", "data": data, "revision": revision,
            **beside}


def failure(meta: Meta, reason: str, data: Doc) -> tuple[int, Doc]:
    status = status_of(reason)
    return status, {**meta.fields(), "status": "error", "error": str(status),
                    "message": message_of(reason), "data": data}


# pydantic's error types -> the JSON-schema keyword KAZOO names for the same rule
_RULES = {"missing": "required", "extra_forbidden": "not_allowed",
          "greater_than_equal": "minimum", "greater_than": "minimum",
          "less_than_equal": "maximum", "less_than": "maximum",
          "string_too_short": "minLength", "string_too_long": "maxLength",
          "too_short": "minItems", "too_long": "maxItems"}


def rule_name(kind: str | None) -> str:
    if kind is None:
        return "invalid"
    if kind in _RULES:
        return _RULES[kind]
    return "type" if kind.endswith(("_type", "_parsing")) else "invalid"


def per_field(violations: list[Doc]) -> Doc:
    """svc's violations (``{path, rule, kind}``) in KAZOO's validation form:
    ``{"<field>": {"<rule>": {"message": …}}}`` (``kz_json_schema:validation_error``)."""
    fields: Doc = {}
    for violation in violations:
        field = violation["path"].removeprefix("$.").removeprefix("$") or "data"
        fields.setdefault(field, {})[rule_name(violation.get("kind"))] = {
            "message": violation["rule"]}
    return fields
