"""The local bookkeeper: the invoice goes to a ledger in the store; always good standing.

The ledger is what svc itself billed: listed per account and period (``ledger_req``,
``GET …/services/ledger``, as JSON or CSV), an operator with no billing system of its own
bills its clients from it."""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Iterator
from typing import Any

from ..models.documents import LedgerEntry
from ..models.fields import gregorian_of, iso_of
from ..store import Repository
from .abc import Answer, BookkeeperAdapter, InvoiceDelivery

LEDGER = "book_ledger"
CSV_COLUMNS = ("at", "at_iso", "account_id", "sync_id", "idempotency_key", "line", "category",
               "item", "name", "quantity", "billable", "rate", "total")


class LocalBookkeeper(BookkeeperAdapter):
    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    async def deliver(self, delivery: InvoiceDelivery) -> Answer:
        # keyed by the idempotency key: a retried invoice is written once
        await self.repo.append_book_ledger(delivery.account_id, delivery.idempotency_key,
                                           delivery.body())
        return Answer("good_standing")


async def ledger(repo: Repository, account_id: str, start: datetime.datetime | None,
                 end: datetime.datetime | None) -> list[LedgerEntry]:
    """The account's ledger entries written from ``start`` (included) up to ``end``
    (excluded), oldest first."""
    keys = await repo.store.find_keys(LEDGER, "account_id", account_id)
    # the store gives numbers back as Decimal; an entry written before entries had a time
    # is the oldest
    found = [{**v.doc, "at": float(v.doc.get("at", 0))}
             for v in (await repo.store.get_many(LEDGER, keys)).values()]
    low = -float("inf") if start is None else start.timestamp()
    high = float("inf") if end is None else end.timestamp()
    written = sorted((doc for doc in found if low <= doc["at"] < high),
                     key=lambda doc: (doc["at"], doc["invoice"]["sync_id"]))
    return [_entry(doc) for doc in written]


def _entry(doc: dict[str, Any]) -> LedgerEntry:
    sent = doc["invoice"]
    return LedgerEntry(
        idempotency_key=sent["idempotency_key"], account_id=doc["account_id"],
        sync_id=sent["sync_id"], at=gregorian_of(doc["at"]), at_iso=iso_of(doc["at"]),
        invoice={key: sent[key] for key in ("bookkeeper", "items", "activation_charges",
                                             "summary")})


def _lines(entry: LedgerEntry) -> Iterator[dict[str, Any]]:
    """One line per item and activation charge, then the invoice's two totals."""
    invoice = entry.invoice
    for item in invoice.items:
        yield {"line": "item", "category": item.category, "item": item.item,
               "name": item.name, "quantity": item.quantity, "billable": item.billable,
               "rate": item.rate, "total": item.total}
    for charge in invoice.activation_charges:
        yield {"line": "activation_charge", "category": charge.category, "item": charge.item,
               "name": charge.name, "billable": charge.billable, "rate": charge.rate,
               "total": charge.total}
    yield {"line": "recurring_total", "total": invoice.summary.recurring}
    yield {"line": "today_total", "total": invoice.summary.today}


def ledger_csv(entries: list[LedgerEntry]) -> str:
    """The entries as CSV: a header, then each entry's lines (``_lines``); money as written
    (Decimal), so that the totals add up exactly."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for entry in entries:
        entry_fields = {"at": entry.at, "at_iso": entry.at_iso, "account_id": entry.account_id,
                        "sync_id": entry.sync_id, "idempotency_key": entry.idempotency_key}
        for line in _lines(entry):
            writer.writerow({**entry_fields, **line})
    return out.getvalue()
