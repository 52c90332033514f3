"""Invoices: one per bookkeeper, their summaries, and the comparison of a current with a
proposed state that yields item ``changes`` and activation charges."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from .item import ZERO, Quantities, RatedItem, rate_item
from .jsonmerge import Json
from .merge import Bookkeeper, MergedPlan


@dataclass(frozen=True)
class ActivationCharge:
    category: str
    item: str  # the raw plan key, not the ``as`` name
    name: str
    billable: int
    rate: Decimal

    @property
    def total(self) -> Decimal:
        return self.billable * self.rate

    def as_json(self) -> Json:
        return {
            "category": self.category,
            "item": self.item,
            "name": self.name,
            "billable": self.billable,
            "rate": self.rate,
            "total": self.total,
        }


@dataclass(frozen=True)
class Invoice:
    bookkeeper: Bookkeeper
    items: tuple[RatedItem, ...]
    activation_charges: tuple[ActivationCharge, ...] = ()

    @property
    def recurring(self) -> Decimal:
        return sum((item.total for item in self.items), ZERO)

    @property
    def today(self) -> Decimal:
        return sum((charge.total for charge in self.activation_charges), ZERO)

    def as_json(self) -> Json:
        return {
            "bookkeeper": self.bookkeeper.as_json(),
            "items": [item.as_json() for item in self.items],
            "activation_charges": [charge.as_json() for charge in self.activation_charges],
            "summary": {"recurring": self.recurring, "today": self.today},
        }


def rate_invoice(merged: MergedPlan, quantities: Quantities) -> Invoice:
    """One item for every (category, item) of the merged plan, even at quantity 0."""
    return Invoice(merged.bookkeeper, tuple(rate_item(plan, quantities) for plan in merged.items))


def rate_invoices(merged_plans: Sequence[MergedPlan], quantities: Quantities) -> list[Invoice]:
    return [rate_invoice(merged, quantities) for merged in merged_plans]


_COMPARED = ("quantity", "billable", "rate", "total")


def _difference(current: RatedItem, proposed: RatedItem) -> Json:
    """proposed − current of quantity, billable, rate and total, zeros omitted."""
    differences = {
        name: getattr(proposed, name) - getattr(current, name) for name in _COMPARED
    }
    return {name: delta for name, delta in differences.items() if delta}


def _never_billed(item: RatedItem) -> RatedItem:
    """What a newly appearing item is compared with: the same item billing nothing."""
    return item._replace(billable=0, charge=ZERO, single_rate=ZERO, cumulative_quantity=0,
                         cumulative_rate=ZERO)


def _annotate(current: RatedItem | None, proposed: RatedItem) -> RatedItem:
    difference = _difference(current or _never_billed(proposed), proposed)
    if not difference:
        return proposed
    # "modified" on assignment too, as KAZOO reports it
    return proposed._replace(changes={"type": "modified", "difference": difference})


def _removed(current: RatedItem) -> RatedItem:
    """An item only the current state has: reported billing 0 (a deliberate
    difference: KAZOO keeps its old discounts and a negative total)."""
    gone = _never_billed(current)
    return gone._replace(changes={"type": "removed", "difference": _difference(current, gone)})


def _activation(current: RatedItem | None, proposed: RatedItem) -> ActivationCharge | None:
    added = proposed.billable - (current.billable if current else 0)
    if added <= 0 or proposed.activation_charge <= 0:
        return None
    return ActivationCharge(proposed.category, proposed.key, proposed.name, added,
                            proposed.activation_charge)


def compare_invoices(current: Sequence[Invoice], proposed: Sequence[Invoice]) -> list[Invoice]:
    """The proposed invoices annotated against the current ones.

    Items pair by (category, item key, reported name) within the same bookkeeper; an
    invoice whose bookkeeper disappears is kept with its items reported as removed.
    """
    current_by_bookkeeper = {invoice.bookkeeper: invoice for invoice in current}
    compared: list[Invoice] = []
    for invoice in proposed:
        before = current_by_bookkeeper.pop(invoice.bookkeeper, None)
        compared.append(_compare(before.items if before else (), invoice))
    for invoice in current_by_bookkeeper.values():
        compared.append(_compare(invoice.items, Invoice(invoice.bookkeeper, ())))
    return compared


def taken_over(billed_elsewhere: Sequence[RatedItem], proposed: Invoice) -> Invoice:
    """An invoice of a bookkeeper that takes over items another one billed: each item is new
    to it, but units already billed elsewhere carry no activation charge again."""
    return Invoice(proposed.bookkeeper, _compare((), proposed).items,
                   _compare(billed_elsewhere, proposed).activation_charges)


def _compare(current_items: Sequence[RatedItem], proposed: Invoice) -> Invoice:
    current_by_key = {item.pairing_key: item for item in current_items}
    items: list[RatedItem] = []
    charges: list[ActivationCharge] = []
    for item in proposed.items:
        before = current_by_key.pop(item.pairing_key, None)
        items.append(_annotate(before, item))
        if (charge := _activation(before, item)) is not None:
            charges.append(charge)
    items.extend(_removed(item) for item in current_by_key.values())
    return Invoice(proposed.bookkeeper, tuple(items), tuple(charges))
