"""Rating one invoice item: quantity, billable, rate, discounts, total (ref §2.3–§2.7, §2.9).

Pure arithmetic on a merged item plan and the account's quantities, in exact ``Decimal``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from .coerce import ceil_to_step
from .jsonmerge import Json

Counts = dict[str, dict[str, int]]
ZERO = Decimal(0)
ALL_ITEMS = "_all"


@dataclass(frozen=True)
class Quantities:
    """An account's quantity objects (ref §1.3): its own, its descendants', and manual ones."""

    account: Counts = field(default_factory=dict)
    cascade: Counts = field(default_factory=dict)
    manual: Counts = field(default_factory=dict)


@dataclass(frozen=True)
class RatedItem:
    category: str
    key: str  # the plan's item key; ``item`` is what it is reported as
    item: str
    name: str
    quantity: int
    billable: int
    rate: Decimal
    minimum: int
    maximum: int
    activation_charge: Decimal
    single_rate: Decimal = ZERO
    cumulative_quantity: int = 0
    cumulative_rate: Decimal = ZERO
    prorate: tuple[bool, bool] = (True, True)
    changes: Json | None = None

    @property
    def pairing_key(self) -> tuple[str, str, str]:
        return (self.category, self.key, self.item)

    @property
    def discount_total(self) -> Decimal:
        return self.single_rate + self.cumulative_quantity * self.cumulative_rate

    @property
    def total(self) -> Decimal:
        return self.billable * self.rate - self.discount_total

    def as_json(self) -> Json:
        """KAZOO's public item JSON: zero/empty sub-fields omitted (ref §2.9)."""
        out: Json = {
            "category": self.category,
            "item": self.item,
            "name": self.name,
            "quantity": self.quantity,
            "billable": self.billable,
            "rate": self.rate,
        }
        discounts = _non_zero(
            total=self.discount_total,
            single=_non_zero(rate=self.single_rate),
            cumulative=_non_zero(rate=self.cumulative_rate, quantity=self.cumulative_quantity),
        )
        if discounts:
            out["discounts"] = discounts
        if self.minimum:
            out["minimum"] = self.minimum
        if self.maximum:
            out["maximum"] = self.maximum
        out["prorate"] = {"additions": self.prorate[0], "removals": self.prorate[1]}
        out["total"] = self.total
        if self.changes:
            out["changes"] = self.changes
        return out


def _non_zero(**fields: Any) -> Json:
    return {k: v for k, v in fields.items() if v}


def _own_counts(quantities: Quantities, category: str) -> dict[str, int]:
    # manual values replace account values item by item (ref §1.6)
    return {**quantities.account.get(category, {}), **quantities.manual.get(category, {})}


def item_quantity(quantities: Quantities, category: str, key: str, item_plan: Json) -> int:
    """ref §2.3 step 1; ``ui_apps`` items also match by their ``app_id`` (SPEC §12)."""
    cascade = item_plan.get("cascade") is True
    if key == ALL_ITEMS:
        excluded = set(item_plan.get("exceptions") or ())
        total = sum(n for name, n in _own_counts(quantities, category).items()
                    if name not in excluded)
        if cascade:
            total += sum(n for name, n in quantities.cascade.get(category, {}).items()
                         if name not in excluded)
        return total
    names = [key]
    if category == "ui_apps" and isinstance(item_plan.get("app_id"), str):
        names.append(item_plan["app_id"])
    own = _own_counts(quantities, category)
    name = next((n for n in names if n in own), key)
    quantity = own.get(name, 0)
    if cascade:
        quantity += quantities.cascade.get(category, {}).get(name, 0)
    return quantity


def billable_quantity(quantity: int, item_plan: Json) -> int:
    """ref §2.3 step 2: round up to ``step``; minimum is tested before maximum."""
    step = item_plan.get("step", 1)
    minimum = ceil_to_step(item_plan.get("minimum", 0), step)
    maximum = ceil_to_step(item_plan.get("maximum", quantity), step)
    billable = ceil_to_step(quantity, step)
    if billable < minimum:
        return minimum
    return min(billable, maximum)


def tier_rate(tiers: Json | None, quantity: int) -> Decimal | None:
    """The smallest threshold K with quantity <= K; its price is read back under K's
    canonical spelling, so a selected "05" finds nothing (ref §2.5)."""
    if not tiers:
        return None
    above = [k for k in sorted(int(key) for key in tiers) if quantity <= k]
    if not above:
        return None
    return tiers.get(str(above[0]))


def billing_rate(billable: int, item_plan: Json) -> tuple[int, Decimal]:
    """ref §2.4: the first rule that applies wins; flat prices bill one unit."""
    flat = tier_rate(item_plan.get("flat_rates"), billable)
    if flat is not None:
        return 1, flat
    flat_rate = item_plan.get("flat_rate", ZERO)
    if flat_rate > 0:
        return 1, flat_rate
    tiered = tier_rate(item_plan.get("rates"), billable)
    if tiered is not None:
        return billable, tiered
    return billable, item_plan.get("rate", ZERO)


def _discount_applies(block: Json | None, base_rate: Decimal, billable: int) -> bool:
    # the gate is the plan's own ``rate``, not the rate billed (ref §2.6)
    return bool(block) and base_rate > 0 and billable >= block.get("minimum", 1)


def rate_item(category: str, key: str, item_plan: Json, quantities: Quantities) -> RatedItem:
    quantity = item_quantity(quantities, category, key, item_plan)
    billable, rate = billing_rate(billable_quantity(quantity, item_plan), item_plan)
    reported = item_plan.get("as", key)
    default_name = category if key == ALL_ITEMS else f"{category}/{reported}"
    prorate = item_plan.get("prorate") or {}
    item = RatedItem(
        category=category,
        key=key,
        item=reported,
        name=item_plan.get("name", default_name),
        quantity=quantity,
        billable=billable,
        rate=rate,
        minimum=item_plan.get("minimum", 0),
        maximum=item_plan.get("maximum", quantity),
        activation_charge=item_plan.get("activation_charge", ZERO),
        prorate=(prorate.get("additions", True), prorate.get("removals", True)),
    )
    return with_discounts(item, item_plan)


def with_discounts(item: RatedItem, item_plan: Json) -> RatedItem:
    base_rate = item_plan.get("rate", ZERO)
    discounts = item_plan.get("discounts") or {}
    single, cumulative = discounts.get("single"), discounts.get("cumulative")
    changes: Json = {"single_rate": ZERO, "cumulative_quantity": 0, "cumulative_rate": ZERO}
    if _discount_applies(single, base_rate, item.billable):
        changes["single_rate"] = single.get("rate", base_rate)
    if _discount_applies(cumulative, base_rate, item.billable):
        # a cumulative discount without ``maximum`` covers 0 units (ref §2.6, GV08)
        capped = min(item.billable, cumulative.get("maximum", 0))
        tiered = tier_rate(cumulative.get("rates"), capped)
        changes["cumulative_quantity"] = capped
        changes["cumulative_rate"] = (
            tiered if tiered is not None else cumulative.get("rate", base_rate)
        )
    return replace(item, **changes)
