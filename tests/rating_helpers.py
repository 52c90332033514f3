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


ORACLE_TOLERANCE = Decimal("1e-6")


def assert_rates_as_kazoo(document: dict, expect: dict) -> None:
    """``document`` rated by svc (through bytes, as on the wire) gives the item totals and
    the invoice summary KAZOO printed for it (``expect``, as the oracle files give it).

    KAZOO computes in IEEE doubles and sums ``recurring`` in its own item order, svc in exact
    decimals, hence the tolerance. A case in which no plan is reached has no invoice.
    """
    reply = loads(dumps(quote_json(rate_quote(parse_quote(loads(dumps(document)))))))
    if not reply["invoices"]:
        assert expect["items"] == {} and expect["recurring"] == 0
        return
    [invoice] = reply["invoices"]  # every case has one bookkeeper, so one invoice
    got = {f"{item['category']}.{item['item']}": item["total"] for item in invoice["items"]}
    assert set(got) == set(expect["items"])
    wrong = {key: (got[key], want) for key, want in expect["items"].items()
             if abs(got[key] - want) > ORACLE_TOLERANCE}
    assert not wrong, f"item totals (svc, KAZOO): {wrong}"
    summary = invoice["summary"]
    assert abs(summary["recurring"] - expect["recurring"]) <= ORACLE_TOLERANCE
    if "today" in expect:
        assert abs(summary["today"] - expect["today"]) <= ORACLE_TOLERANCE
