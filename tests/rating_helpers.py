"""Helpers shared by the rating tests: run a quote document through the public path."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from svc.jsonio import dumps, loads
from svc.rating import parse_quote, quote_json, rate_quote


def quote(*plans: dict, A=None, C=None, M=None, overrides=None, current=None) -> dict:
    """Rate ``plans`` (docs, or ``(doc, per-plan overrides)`` pairs) and return the reply
    JSON exactly as a client would read it (money parsed back to Decimal)."""
    entries = []
    for index, plan in enumerate(plans):
        doc, plan_overrides = plan if isinstance(plan, tuple) else (plan, None)
        entries.append({"id": f"p{index}", "vendor_id": "reseller", "doc": doc,
                        "overrides": plan_overrides})
    document: dict[str, Any] = {
        "plans": entries,
        "overrides": overrides,
        "quantities": {"account": A or {}, "cascade": C or {}, "manual": M or {}},
    }
    if current is not None:
        document["current"] = current
    # through bytes, as on the wire: proves the output is plain JSON numbers
    return loads(dumps(quote_json(rate_quote(parse_quote(loads(dumps(document)))))))


def items(reply: dict, invoice: int = 0) -> dict[tuple[str, str], dict]:
    return {(i["category"], i["item"]): i for i in reply["invoices"][invoice]["items"]}


def total(reply: dict, category: str, item: str, invoice: int = 0) -> Decimal:
    return items(reply, invoice)[(category, item)]["total"]


def recurring(reply: dict, invoice: int = 0) -> Decimal:
    return reply["invoices"][invoice]["summary"]["recurring"]


def D(text: str) -> Decimal:
    return Decimal(text)
