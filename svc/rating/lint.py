"""Warnings for plans that are valid but bill surprisingly under KAZOO's rules (SPEC §4)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from .item import ZERO, compile_tiers, tier_rate
from .jsonmerge import Json
from .plan import Violation, key_path, load_plan


def lint_plan(doc: object, root: str = "$") -> list[Violation]:
    """Validate ``doc`` (raises ``PlanInvalid``) and list its warnings, with paths into the
    document as given (a bare category map has no ``plan`` level)."""
    loaded = load_plan(doc, root)
    plan_root = key_path(root, "plan") if isinstance(doc, dict) and "plan" in doc else root
    return list(_warnings(loaded.get("plan") or {}, plan_root))


def _warnings(plan: Json, root: str) -> Iterator[Violation]:
    for category, items in plan.items():
        category_path = key_path(root, category)
        if "_all" in items:
            excepted = set(items["_all"].get("exceptions") or ())
            for item in items:
                if item != "_all" and item not in excepted:
                    yield Violation(
                        key_path(category_path, item),
                        "also counted by _all of the same category (double counting): "
                        "list it in _all.exceptions",
                    )
        for item, item_plan in items.items():
            yield from _item_warnings(item_plan, key_path(category_path, item))


def _cliffs(item_plan: Json, path: str) -> Iterator[Violation]:
    """Volume tiers bill every unit at the rate of the tier the quantity reaches (ref §2.5),
    so one more unit past a threshold can lower the total; graduated tiers never do."""
    table, fallback = item_plan["rates"], item_plan.get("rate")
    tiers = compile_tiers(table)

    def charge(units: int) -> Decimal:
        price = tier_rate(tiers, units)
        return units * (price if price is not None else fallback or ZERO)

    top = max(int(key) for key in table)
    for key in table:
        threshold = int(key)
        if threshold == top and fallback is None:
            continue  # warned above: the units past the top tier bill at 0
        before, after = charge(threshold), charge(threshold + 1)
        if after < before:
            yield Violation(
                key_path(path, key, bracket=True),
                f"volume tiers: the total drops from {before} at {threshold} units to {after} "
                f'at {threshold + 1}; "tiers_mode": "graduated" bills each unit at its own '
                "tier's rate, so the total never drops",
            )


def _item_warnings(item_plan: Json, path: str) -> Iterator[Violation]:
    graduated = item_plan.get("tiers_mode") == "graduated"
    # graduated tiers read each key as written; only KAZOO's lookups fall through
    for table in ("flat_rates",) if graduated else ("rates", "flat_rates"):
        for key in item_plan.get(table) or {}:
            if str(int(key)) != key:
                yield Violation(
                    key_path(key_path(path, table), key, bracket=True),
                    "non-canonical tier key: when selected it prices nothing and falls "
                    "through to the next rule",
                )
    if item_plan.get("rates") and "rate" not in item_plan:
        yield Violation(key_path(path, "rates"),
                        "tiers without a fallback rate: units above the top tier bill at 0")
    if item_plan.get("rates") and not graduated:
        yield from _cliffs(item_plan, key_path(path, "rates"))
    discounts = item_plan.get("discounts")
    if discounts is None:
        return
    discounts_path = key_path(path, "discounts")
    if not discounts:
        yield Violation(discounts_path, "empty discounts object: no discount is given")
    for kind, block in discounts.items():
        block_path = key_path(discounts_path, kind)
        if block == {}:
            yield Violation(block_path, "empty discount object: no discount is given")
        elif kind == "cumulative" and "maximum" not in block:
            yield Violation(block_path,
                            "cumulative discount without maximum never discounts anything")
    if "rate" not in item_plan or item_plan["rate"] <= 0:
        yield Violation(discounts_path,
                        "discounts apply only to items with a rate > 0 (KAZOO's gate)")
