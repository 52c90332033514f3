"""Human-readable output: invoices (their JSON form) as aligned tables."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from ..jsonio import plain_number

Invoice = dict[str, Any]


def _money(value: Decimal | int) -> str:
    return plain_number(Decimal(value))


def invoice_tables(invoices: Sequence[Invoice]) -> list[Table]:
    tables = []
    for invoice in invoices:
        bookkeeper = invoice["bookkeeper"]
        table = Table(title=f"Invoice: {bookkeeper['type']} bookkeeper {bookkeeper['id']} "
                            f"(vendor {bookkeeper['vendor_id']})", show_footer=True)
        table.add_column("category")
        table.add_column("item")
        table.add_column("name", footer="recurring")
        for header in ("quantity", "billable", "rate", "discounts"):
            table.add_column(header, justify="right")
        table.add_column("total", justify="right",
                         footer=_money(invoice["summary"]["recurring"]))
        table.add_column("change")
        for item in invoice["items"]:
            table.add_row(
                item["category"], item["item"], item["name"], str(item["quantity"]),
                str(item["billable"]), _money(item["rate"]),
                _money(item.get("discounts", {}).get("total", 0)), _money(item["total"]),
                item.get("changes", {}).get("type", ""),
            )
        tables.append(table)
        if invoice["activation_charges"]:
            charges = Table(title="Activation charges", show_footer=True)
            charges.add_column("category")
            charges.add_column("item")
            charges.add_column("name", footer="today")
            charges.add_column("billable", justify="right")
            charges.add_column("rate", justify="right")
            charges.add_column("total", justify="right",
                               footer=_money(invoice["summary"]["today"]))
            for charge in invoice["activation_charges"]:
                charges.add_row(charge["category"], charge["item"], charge["name"],
                                str(charge["billable"]), _money(charge["rate"]),
                                _money(charge["total"]))
            tables.append(charges)
    return tables


def console() -> Console:
    terminal = Console()
    # piped output: do not squeeze the tables into 80 columns
    return terminal if terminal.is_terminal else Console(width=160)


def print_invoices(invoices: Sequence[Invoice]) -> None:
    out = console()
    if not invoices:
        out.print("no invoices: no plan is assigned")
    for table in invoice_tables(invoices):
        out.print(table)
