"""Rating one invoice item: quantity, billable, rate, discounts, total.

A merged item plan is first compiled into an ``ItemPlan`` (fields read once, tiers sorted),
which the merge cache keeps; rating is then plain exact arithmetic on it.

One svc extension: an item with ``"tiers_mode": "graduated"`` prices its ``rates`` table
graduated (each unit at its own tier's rate, as Stripe and Lago do) instead of KAZOO's volume
tiers; everything else about the item follows KAZOO.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from .jsonmerge import Json

Counts = dict[str, dict[str, int]]
Tiers = tuple[tuple[int, Decimal | None], ...]
ZERO = Decimal(0)
ALL_ITEMS = "_all"
_NONE: dict[str, int] = {}


@dataclass(frozen=True)
class Quantities:
    """An account's quantity objects: its own, its descendants', and manual ones."""

    account: Counts = field(default_factory=dict)
    cascade: Counts = field(default_factory=dict)
    manual: Counts = field(default_factory=dict)


def compile_tiers(table: Json | None) -> Tiers:
    """Thresholds ascending, each with the price found under its canonical spelling: a
    selected "05" finds nothing and pricing falls through to the next rule."""
    if not table:
        return ()
    return tuple((k, table.get(str(k))) for k in sorted(int(key) for key in table))


def compile_graduated_tiers(table: Json | None) -> Tiers:
    """Thresholds ascending, each with its own price: svc's graduated mode has no KAZOO
    spelling quirk to keep."""
    return tuple(sorted((int(key), price) for key, price in (table or {}).items()))


def tier_rate(tiers: Tiers, quantity: int) -> Decimal | None:
    """The price of the smallest threshold K with quantity <= K; the price applies to all
    units, not graduated."""
    for threshold, price in tiers:
        if quantity <= threshold:
            return price
    return None


def graduated_charge(tiers: Tiers, above: Decimal, billable: int) -> Decimal:
    """Each unit at the rate of its own tier: units up to the first threshold at its price,
    the next ones up to the second threshold at that one's, and so on; units above the top
    threshold at ``above`` (the plan's ``rate``, 0 without one, as in volume mode)."""
    charge, priced = ZERO, 0
    for threshold, price in tiers:
        if billable <= priced:
            return charge
        if threshold > priced:
            charge += (min(billable, threshold) - priced) * price
            priced = threshold
    return charge + max(billable - priced, 0) * above


class Discount(NamedTuple):
    rate: Decimal | None
    rates: Tiers
    minimum: int
    maximum: int


def _compile_discount(block: Json | None) -> Discount | None:
    # an empty block has vanished in the merge: no discount
    if not block:
        return None
    return Discount(block.get("rate"), compile_tiers(block.get("rates")),
                    block.get("minimum", 1), block.get("maximum", 0))


class ItemPlan(NamedTuple):
    category: str
    key: str
    reported: str  # the ``as`` name, else the key
    name: str
    lookup: tuple[str, ...]  # quantity names: the key, and for ui_apps its app_id
    rate: Decimal
    rates: Tiers
    graduated: bool
    flat_rates: Tiers
    flat_rate: Decimal
    minimum: int
    maximum: int | None
    step: int
    cascade: bool
    exceptions: frozenset[str]
    activation_charge: Decimal
    single: Discount | None
    cumulative: Discount | None
    prorate: tuple[bool, bool]


def compile_item(category: str, key: str, plan: Json) -> ItemPlan:
    reported = plan.get("as", key)
    lookup = (key,)
    if category == "ui_apps" and isinstance(plan.get("app_id"), str):
        lookup = (key, plan["app_id"])  # ui_apps items also match by app id
    discounts = plan.get("discounts") or {}
    prorate = plan.get("prorate") or {}
    # without a table every unit bills at `rate` in either mode: keep the volume arithmetic
    graduated = plan.get("tiers_mode") == "graduated" and bool(plan.get("rates"))
    return ItemPlan(
        category=category,
        key=key,
        reported=reported,
        name=plan.get("name", category if key == ALL_ITEMS else f"{category}/{reported}"),
        lookup=lookup,
        rate=plan.get("rate", ZERO),
        rates=(compile_graduated_tiers if graduated else compile_tiers)(plan.get("rates")),
        graduated=graduated,
        flat_rates=compile_tiers(plan.get("flat_rates")),
        flat_rate=plan.get("flat_rate", ZERO),
        minimum=plan.get("minimum", 0),
        maximum=plan.get("maximum"),
        step=plan.get("step", 1),
        cascade=plan.get("cascade") is True,
        exceptions=frozenset(plan.get("exceptions") or ()),
        activation_charge=plan.get("activation_charge", ZERO),
        single=_compile_discount(discounts.get("single")),
        cumulative=_compile_discount(discounts.get("cumulative")),
        prorate=(prorate.get("additions", True), prorate.get("removals", True)),
    )


class RatedItem(NamedTuple):
    category: str
    key: str  # the plan's item key; ``item`` is what it is reported as
    item: str
    name: str
    quantity: int
    billable: int
    rate: Decimal
    charge: Decimal  # before discounts: billable × rate, or the graduated sum over tiers
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
        return self.charge - self.discount_total

    def as_json(self) -> Json:
        """KAZOO's public item JSON: zero/empty sub-fields omitted."""
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


def item_quantity(plan: ItemPlan, quantities: Quantities) -> int:
    """KAZOO's step 1; manual values replace account values item by item."""
    category = plan.category
    own = quantities.account.get(category, _NONE)
    manual = quantities.manual.get(category)
    if manual:
        own = {**own, **manual}
    if plan.key == ALL_ITEMS:
        excluded = plan.exceptions
        quantity = sum(n for name, n in own.items() if name not in excluded)
        if plan.cascade:
            cascade = quantities.cascade.get(category, _NONE)
            quantity += sum(n for name, n in cascade.items() if name not in excluded)
        return quantity
    name = plan.key
    for candidate in plan.lookup:
        if candidate in own:
            name = candidate
            break
    quantity = own.get(name, 0)
    if plan.cascade:
        quantity += quantities.cascade.get(category, _NONE).get(name, 0)
    return quantity


def _ceil_to_step(quantity: int, step: int) -> int:
    return -(-quantity // step) * step


def billable_quantity(plan: ItemPlan, quantity: int) -> int:
    """KAZOO's step 2: round up to ``step``; the minimum is tested before the maximum."""
    maximum = quantity if plan.maximum is None else plan.maximum
    minimum, step = plan.minimum, plan.step
    if step != 1:
        quantity, minimum, maximum = (_ceil_to_step(n, step) for n in (quantity, minimum, maximum))
    if quantity < minimum:
        return minimum
    return min(quantity, maximum)


def billing_rate(plan: ItemPlan, billable: int) -> tuple[int, Decimal, Decimal]:
    """KAZOO's rule: the first rule that applies wins; flat prices bill one unit. Returns the
    billable units, the rate shown and the charge before discounts. A graduated item shows
    the rate of the tier its last unit falls in, the rate volume mode would bill them all at."""
    flat = tier_rate(plan.flat_rates, billable)
    if flat is not None:
        return 1, flat, flat
    if plan.flat_rate > 0:
        return 1, plan.flat_rate, plan.flat_rate
    tiered = tier_rate(plan.rates, billable)
    rate = plan.rate if tiered is None else tiered
    if plan.graduated:
        return billable, rate, graduated_charge(plan.rates, plan.rate, billable)
    return billable, rate, billable * rate


def _applies(discount: Discount | None, plan: ItemPlan, billable: int) -> bool:
    # the gate is the plan's own ``rate``, not the rate billed
    return discount is not None and plan.rate > 0 and billable >= discount.minimum


def rate_item(plan: ItemPlan, quantities: Quantities) -> RatedItem:
    quantity = item_quantity(plan, quantities)
    billable, rate, charge = billing_rate(plan, billable_quantity(plan, quantity))
    single_rate = cumulative_rate = ZERO
    cumulative_quantity = 0
    if _applies(plan.single, plan, billable):
        single_rate = plan.rate if plan.single.rate is None else plan.single.rate
    cumulative = plan.cumulative
    if _applies(cumulative, plan, billable):
        # without ``maximum`` a cumulative discount covers 0 units
        cumulative_quantity = min(billable, cumulative.maximum)
        cumulative_rate = tier_rate(cumulative.rates, cumulative_quantity)
        if cumulative_rate is None:
            cumulative_rate = plan.rate if cumulative.rate is None else cumulative.rate
    return RatedItem(
        plan.category, plan.key, plan.reported, plan.name, quantity, billable, rate, charge,
        plan.minimum, quantity if plan.maximum is None else plan.maximum,
        plan.activation_charge, single_rate, cumulative_quantity, cumulative_rate,
        plan.prorate,
    )
