"""What a bookkeeper has billed, and the invoice that brings it to a target: pure functions
over stored snapshots.

A billed state is ``{"state": snapshot or None, "bookkeeper": the default bookkeeper it was
rated with}``. The account's own (``billed``/``billed_bookkeeper`` on the services document)
is what every bookkeeper that is not behind has billed; a bookkeeper that is behind (its
latest invoice failed, or it is catching up) keeps its own on its ``behind`` entry.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..invoicing import state_of
from ..rating import Bookkeeper, Invoice, State, compare_invoices
from ..rating.merge import bookkeeper_of
from ..rating.quote import QuoteRequest, rate_quote, rate_state, rate_switch

Doc = dict[str, Any]


def bookkeeper_key(bookkeeper: Bookkeeper) -> str:
    return f"{bookkeeper.id}|{bookkeeper.type}|{bookkeeper.vendor_id}"


def has_changes(invoice: Invoice) -> bool:
    return bool(invoice.activation_charges) or any(item.changes for item in invoice.items)


def owing(services: Doc) -> bool:
    """Whether a bookkeeper of the account still owes an invoice that failed."""
    return any("owed" in entry for entry in (services.get("behind") or {}).values())


def owes(services: Doc, record: Doc) -> bool:
    """Whether delivery ``record`` is the invoice its bookkeeper owes, behind the account."""
    owed = (services.get("behind") or {}).get(record["bookkeeper_key"], {}).get("owed")
    return owed is not None and (owed["seq"], owed["presentation"]) == (
        record["snapshot_seq"], record.get("presentation", 0))


def billed_of(snapshot: Doc | None, bookkeeper: Doc | None) -> Doc:
    return {"state": snapshot, "bookkeeper": bookkeeper}


def relabelled(snapshot: Doc, present: Doc) -> Doc:
    """``snapshot`` with each plan's bookkeeper as the account's present plans name it: the
    same quantities and prices, billed to whoever bills them now."""
    now = {plan["id"]: plan["doc"].get("bookkeeper") for plan in present["plans"]}
    if all(now.get(p["id"], p["doc"].get("bookkeeper")) == p["doc"].get("bookkeeper")
           for p in snapshot["plans"]):
        return snapshot  # the same bookkeepers: kept as stored, cached loads and all
    plans = []
    for plan in snapshot["plans"]:
        if plan["id"] in now:
            doc = {k: v for k, v in plan["doc"].items() if k != "bookkeeper"}
            if now[plan["id"]] is not None:
                doc["bookkeeper"] = now[plan["id"]]
            plan = {**plan, "doc": doc, "version": None}  # no longer the stored version
        plans.append(plan)
    return {**snapshot, "plans": plans}


def rate_billing(target: State, billed: Doc, bookkeeper: Doc, present: Doc, source: str
                 ) -> list[Invoice]:
    """The invoices that bill ``target`` (with ``bookkeeper`` as the default) against
    ``billed``; when the bookkeepers changed since (the reseller's setting, a plan's), the old
    ones get the removal of what they billed and the present ones no activation charge again
    for units already billed."""
    state, billed_bookkeeper = billed["state"], billed["bookkeeper"] or bookkeeper
    if state is None:
        return rate_quote(QuoteRequest(target, State(()), bookkeeper))
    as_now = relabelled(state, present)
    if as_now is state and billed_bookkeeper == bookkeeper:
        return rate_quote(QuoteRequest(target, state_of(state, source), bookkeeper))
    return rate_switch(target, state_of(state, source), state_of(as_now, source), bookkeeper,
                       billed_bookkeeper)


def invoice_of(invoices: list[Invoice], key: str) -> Invoice | None:
    return next((i for i in invoices if bookkeeper_key(i.bookkeeper) == key), None)


def _items_of(billed: Doc, retired: Bookkeeper, source: str) -> list[Invoice]:
    if billed["state"] is None:
        return []
    invoices = rate_state(state_of(billed["state"], source), billed["bookkeeper"])
    return [i for i in invoices if i.bookkeeper == retired]


def default_of(bookkeeper: Doc) -> Bookkeeper:
    """The bookkeeper of the plans that name none, ``bookkeeper`` being the default."""
    return bookkeeper_of({}, bookkeeper, bookkeeper["vendor_id"])


def arrears(retired: Bookkeeper, its_billed: Doc, account_billed: Doc, present: Bookkeeper,
            source: str) -> Invoice | None:
    """What a retired bookkeeper that fell behind never billed (its items from what it billed
    to what the account has billed since), for ``present``; ``None``
    when the account's billed state holds none of its items any more."""
    now = _items_of(account_billed, retired, source)
    if not now:
        return None
    [owed] = compare_invoices(_items_of(its_billed, retired, source), now)
    return replace(owed, bookkeeper=present)
