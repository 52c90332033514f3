"""Warnings for plans that are valid but bill surprisingly under KAZOO's rules, or not at all
as their author meant: a misspelt key (KAZOO ignores it), a category nothing counts, a
discount that bills a negative total."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from decimal import Decimal

from .item import ALL_ITEMS, ZERO, Quantities, compile_item, compile_tiers, rate_item, tier_rate
from .jsonmerge import Json
from .plan import DISCOUNT_SCHEMA, ITEM_SCHEMA, Violation, key_path, load_plan

# The categories svc's quantity rules count from KAZOO's documents (``svc.quantities``); a
# plan's other categories bill only manual quantities.
COUNTED_CATEGORIES = frozenset({
    "account_apps", "billing", "branding", "conferences", "devices", "faxes", "ips", "limits",
    "number_carriers", "number_services", "phone_numbers", "qubicle", "ui_apps", "user_apps",
    "users", "voicemails"})
ITEM_KEYS = frozenset(ITEM_SCHEMA) | {"app_id"}  # app_id: a ui_apps item's other name
DISCOUNT_KEYS = {"single": frozenset(DISCOUNT_SCHEMA),
                 "cumulative": frozenset(DISCOUNT_SCHEMA) | {"maximum"}}
PRORATE_KEYS = frozenset({"additions", "removals"})
# beyond every threshold of an item, totals move in straight lines: one far point shows
# where they head
FAR_UNITS = 1_000


def lint_plan(doc: object, root: str = "$") -> list[Violation]:
    """Validate ``doc`` (raises ``PlanInvalid``) and list its warnings, with paths into the
    document as given (a bare category map has no ``plan`` level)."""
    loaded = load_plan(doc, root)
    plan_root = key_path(root, "plan") if isinstance(doc, dict) and "plan" in doc else root
    return list(_warnings(loaded.get("plan") or {}, plan_root))


def _unknown(given: Json, known: frozenset[str], path: str, what: str) -> Iterator[Violation]:
    for key in given:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            yield Violation(key_path(path, key),
                            f"unknown {what} key{hint}: KAZOO and svc ignore it")


def _warnings(plan: Json, root: str) -> Iterator[Violation]:
    for category, items in plan.items():
        category_path = key_path(root, category)
        if category not in COUNTED_CATEGORIES:
            close = difflib.get_close_matches(category, COUNTED_CATEGORIES, n=1)
            yield Violation(category_path, (f"did you mean {close[0]}? " if close else "")
                            + "no document counts toward this category: it bills manual "
                              "quantities only")
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
            item_path = key_path(category_path, item)
            yield from _item_warnings(item_plan, item_path)
            yield from _negative_totals(category, item, item_plan, item_path)


def _cliffs(item_plan: Json, path: str) -> Iterator[Violation]:
    """Volume tiers bill every unit at the rate of the tier the quantity reaches,
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


def _negative_totals(category: str, item: str, item_plan: Json,
                     path: str) -> Iterator[Violation]:
    """Rate the item at every quantity where its total can turn (each threshold, minimum
    and maximum, either side) and one far beyond: between them totals are straight lines,
    so a total below zero anywhere shows at one of these."""
    discounts = item_plan.get("discounts") or {}
    blocks = [discounts[kind] for kind in DISCOUNT_KEYS if isinstance(discounts.get(kind), dict)]
    if not blocks:
        return
    turns = {0, 1, *(item_plan.get(key, 0) for key in ("minimum", "maximum"))}
    for table in (item_plan.get("rates"), item_plan.get("flat_rates"),
                  *(block.get("rates") for block in blocks)):
        turns.update(int(key) for key in table or {})
    for block in blocks:
        turns.update(block.get(key, 0) for key in ("minimum", "maximum"))
    quantities = sorted({n + delta for n in turns for delta in (-1, 0, 1) if n + delta >= 0}
                        | {max(turns) + FAR_UNITS})
    compiled = compile_item(category, item, item_plan)
    counted = "any item" if item == ALL_ITEMS else item
    for quantity in quantities:
        rated = rate_item(compiled, Quantities(manual={category: {counted: quantity}}))
        if rated.total < 0:
            yield Violation(key_path(path, "discounts"),
                            f"the discounts exceed the charge: the total is {rated.total} at "
                            f"{quantity} units (discounts {rated.discount_total}, charge "
                            f"{rated.charge})")
            return


def _item_warnings(item_plan: Json, path: str) -> Iterator[Violation]:
    yield from _unknown(item_plan, ITEM_KEYS, path, "item")
    for kind, block in (item_plan.get("discounts") or {}).items():
        discount_path = key_path(key_path(path, "discounts"), kind)
        if kind not in DISCOUNT_KEYS:
            yield Violation(discount_path, "unknown discount: only single and cumulative "
                                           "are applied")
        elif isinstance(block, dict):
            yield from _unknown(block, DISCOUNT_KEYS[kind], discount_path, "discount")
    yield from _unknown(item_plan.get("prorate") or {}, PRORATE_KEYS,
                        key_path(path, "prorate"), "prorate")
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
