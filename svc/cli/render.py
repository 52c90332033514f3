"""Human-readable output: invoices as aligned tables with totals."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from rich.console import Console
from rich.table import Table

from ..jsonio import plain_number
from ..rating import Invoice


def _money(value: Decimal) -> str:
    return plain_number(value)


def invoice_tables(invoices: Sequence[Invoice]) -> list[Table]:
    tables = []
    for invoice in invoices:
        bookkeeper = invoice.bookkeeper
        table = Table(title=f"Invoice: {bookkeeper.type} bookkeeper {bookkeeper.id} "
                            f"(vendor {bookkeeper.vendor_id})", show_footer=True)
        table.add_column("category")
        table.add_column("item")
        table.add_column("name", footer="recurring")
        for header in ("quantity", "billable", "rate", "discounts"):
            table.add_column(header, justify="right")
        table.add_column("total", justify="right", footer=_money(invoice.recurring))
        table.add_column("change")
        for item in invoice.items:
            table.add_row(
                item.category, item.item, item.name, str(item.quantity), str(item.billable),
                _money(item.rate), _money(item.discount_total), _money(item.total),
                (item.changes or {}).get("type", ""),
            )
        tables.append(table)
        if invoice.activation_charges:
            charges = Table(title="Activation charges", show_footer=True)
            charges.add_column("category")
            charges.add_column("item")
            charges.add_column("name", footer="today")
            charges.add_column("billable", justify="right")
            charges.add_column("rate", justify="right")
            charges.add_column("total", justify="right", footer=_money(invoice.today))
            for charge in invoice.activation_charges:
                charges.add_row(charge.category, charge.item, charge.name, str(charge.billable),
                                _money(charge.rate), _money(charge.total))
            tables.append(charges)
    return tables


def print_invoices(invoices: Sequence[Invoice]) -> None:
    console = Console()
    if not console.is_terminal:  # piped output: do not squeeze the table into 80 columns
        console = Console(width=160)
    if not invoices:
        console.print("no invoices: no plan is assigned")
    for table in invoice_tables(invoices):
        console.print(table)
