"""KAZOO's views of svc's replies, where crossbar answers another shape: the summary
(``kz_services:summary/1``: svc's Summary with KAZOO's ``status`` object, ``reseller`` and
``billing_cycle``; svc's status word stays as ``standing``) and the quote (the summary of the
account as quoted: its ``invoices`` at the top, beside svc's ``quote``), and the summary as
CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from ..models.documents import InvoiceWithPlan, Quote, Summary
from ..models.fields import Gregorian, gregorian_of


class Standing(BaseModel):
    acceptable: bool = Field(description="false while the account is delinquent")
    reason: str = Field(description="svc's status word (good_standing, delinquent, …)")
    message: str | None = Field(None, description="on a refusal: what the bookkeeper said")


class ResellerOf(BaseModel):
    id: str | None = Field(description="the account's reseller")
    is_reseller: bool


class BillingCycle(BaseModel):
    next: Gregorian = Field(description="the first day of next month, 00:00 UTC")
    period: Literal[1] = 1
    unit: Literal["month"] = "month"


class KazooSummary(Summary):
    status: Standing  # type: ignore[assignment]  # KAZOO's object where svc has a word
    standing: str = Field(description="svc's status word (the AMQP Summary's `status`)")
    reseller: ResellerOf
    billing_cycle: BillingCycle


def kazoo_summary(summary: Summary, now: datetime) -> KazooSummary:
    acceptable = summary.status != "delinquent"
    message = None if acceptable else next(
        (result.message or result.reason for result in (
            summary.last_sync.results if summary.last_sync else ())
         if result.message or result.reason), "a bookkeeper declined the account's invoice")
    month = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = month.replace(year=month.year + month.month // 12, month=month.month % 12 + 1)
    return KazooSummary(
        **summary.model_dump(exclude={"status"}),
        status=Standing(acceptable=acceptable, reason=summary.status, message=message),
        standing=summary.status,
        reseller=ResellerOf(id=summary.reseller_id, is_reseller=summary.is_reseller),
        billing_cycle=BillingCycle(next=gregorian_of(following.timestamp())))


class KazooQuote(BaseModel):
    quote: Quote = Field(description="svc's quote")
    invoices: list[InvoiceWithPlan] = Field(description="the quote's invoices, where KAZOO's "
                                                        "summary has them")


def kazoo_quote(quote: Quote) -> KazooQuote:
    return KazooQuote(quote=quote, invoices=quote.invoices)


SUMMARY_CSV_COLUMNS = ("bookkeeper", "category", "item", "name", "quantity", "billable", "rate",
                       "discount", "total")


def summary_csv(summary: Summary) -> str:
    """KAZOO's summary as CSV (cb_services ``to_response`` for ``csv``): the items of every
    invoice, a line each, with the invoice's bookkeeper; money as rated (Decimal)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, SUMMARY_CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for invoice in summary.invoices:
        for item in invoice.items:
            writer.writerow({
                "bookkeeper": invoice.bookkeeper.id, "category": item.category,
                "item": item.item, "name": item.name, "quantity": item.quantity,
                "billable": item.billable, "rate": item.rate,
                "discount": item.discounts.total if item.discounts else "", "total": item.total})
    return out.getvalue()
