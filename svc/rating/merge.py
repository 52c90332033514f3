"""From the plans assigned to an account to one merged plan per bookkeeper.

Order of operations follows KAZOO 4.3 as executed: the global and per-plan overrides
are combined and applied to each plan before merging; empty objects then vanish as the plan is
fetched; plans are grouped by bookkeeper; each group is merged per strategy and the strategy
results are combined by strategy priority.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..jsonio import fingerprint
from .item import ItemPlan, compile_item
from .jsonmerge import Json, drop_empty, merge_recursive, merge_right
from .plan import PlanInvalid, Violation, key_path

# KAZOO's code default for services.merge_strategy_priority.
STRATEGY_PRIORITY = {"simple": 10, "recursive": 25, "cumulative": 50}
DEFAULT_BOOKKEEPER_ID = "default_bookkeeper"
DEFAULT_BOOKKEEPER_TYPE = "local"


@dataclass(frozen=True)
class Bookkeeper:
    id: str
    type: str
    vendor_id: str

    def as_json(self) -> dict[str, str]:
        return {"id": self.id, "type": self.type, "vendor_id": self.vendor_id}


@dataclass(frozen=True)
class AssignedPlan:
    """A loaded plan as assigned to an account, with its per-plan overrides.

    ``version`` (the store's revision) makes the merge-cache key cheap, but only with the
    ``source`` that issued it: a store guarantees one content per version, and versions of two
    stores in one process (tests) say nothing about each other. A plan given inline (a quote
    document, ``Quote-Request``) has no source, so whatever version it claims it is keyed by
    its content hash.
    """

    id: str
    vendor_id: str
    doc: Json
    overrides: Json = field(default_factory=dict)
    version: int | None = None
    source: Hashable = None
    cache_key: Hashable = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        identity = ((self.source, self.version)
                    if self.source is not None and self.version is not None
                    else fingerprint(self.doc))
        key = (self.id, self.vendor_id, identity, fingerprint(self.overrides))
        object.__setattr__(self, "cache_key", key)


@dataclass(frozen=True)
class ObjectPlans:
    """The plans an account's own documents name (``service.plans`` on users and devices),
    one copy per reference in KAZOO's order, each with its reference's overrides only.

    They come after the assigned plans, so at equal priority an assigned plan wins. The
    global overrides never apply to a copy (``kz_services_plans:get_object_plan/4``), and a
    copy whose plan names no bookkeeper vendor is billed by ``vendor_id``, the account's
    vendor, whichever vendor the plan came from.
    """

    copies: tuple[AssignedPlan, ...] = ()
    vendor_id: str = ""

    @property
    def cache_key(self) -> Hashable:
        return (tuple(named.cache_key for named in self.copies), self.vendor_id)


NO_OBJECT_PLANS = ObjectPlans()


@dataclass(frozen=True)
class MergedPlan:
    bookkeeper: Bookkeeper
    plan: Json  # category -> item -> item plan
    items: tuple[ItemPlan, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        items = tuple(
            compile_item(category, key, item_plan)
            for category, item_plans in self.plan.items()
            for key, item_plan in item_plans.items()
            if not _is_disabled_app(category, item_plan)
        )
        object.__setattr__(self, "items", items)


def _is_disabled_app(category: str, item_plan: Json) -> bool:
    # the ui_apps note: an app with "enabled": false is not available, so not billed
    return category == "ui_apps" and item_plan.get("enabled") is False


def combine_overrides(global_overrides: Json, plan_overrides: Json, path: str = "$") -> Json:
    """Global overrides with the per-plan ones on top.

    A per-plan ``null`` only cancels the global value; setting something beneath a key the
    global overrides delete crashes KAZOO and is refused here.
    """
    violations: list[Violation] = []
    combined = _combine(global_overrides, plan_overrides, path, violations)
    if violations:
        raise PlanInvalid(violations)
    return combined


def _combine(base: Json, top: Json, path: str, violations: list[Violation]) -> Json:
    result = dict(base)
    for key, value in top.items():
        below = result.get(key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            if key in result and below is None and drop_empty(value):
                violations.append(
                    Violation(key_path(path, key), "sets a value beneath a key the global "
                              "overrides delete (null)")
                )
            elif isinstance(below, dict):
                result[key] = _combine(below, value, key_path(path, key), violations)
            else:
                result[key] = drop_empty(value)
        else:
            result[key] = value
    return result


def _public(doc: Json) -> Json:
    return {k: v for k, v in doc.items() if not (k.startswith("_") or k.startswith("pvt_"))}


def bookkeeper_of(doc: Json, defaults: Mapping[str, str], vendor_id: str) -> Bookkeeper:
    """The bookkeeper of a plan document: its own, else the account's default."""
    own = doc.get("bookkeeper") or {}
    return Bookkeeper(
        id=own.get("id") or defaults.get("id") or DEFAULT_BOOKKEEPER_ID,
        type=own.get("type") or defaults.get("type") or DEFAULT_BOOKKEEPER_TYPE,
        vendor_id=own.get("vendor_id") or defaults.get("vendor_id") or vendor_id,
    )


def _priority_order(docs: Sequence[Json]) -> list[Json]:
    """Lowest priority first, so that folding lets the highest win.

    An absent priority sorts after every number (Erlang term order), and among equals the
    first listed must come last: sort the reversed list stably.
    """

    def rank(doc: Json) -> tuple[int, int]:
        priority = (doc.get("merge") or {}).get("priority")
        return (1, 0) if priority is None else (0, priority)

    return sorted(reversed(docs), key=rank)


def _fold(docs: Sequence[Json], merge: Callable[[Json, Json], Json]) -> Json:
    result: Json = {}
    for doc in docs:
        result = merge(result, doc)
    return result


def _merge_simple(docs: Sequence[Json]) -> Json:
    merged = _fold(docs, merge_recursive)
    merged["plan"] = _fold([d.get("plan") or {} for d in docs], merge_right)
    return merged


def _merge_recursive(docs: Sequence[Json]) -> Json:
    return _fold(docs, merge_recursive)


# The only item keys a cumulative merge keeps (kzd_item_plan:cumulative_merge_scheme),
# plus svc's own "tiers_mode", so that a graduated table stays graduated under any strategy.
_FIRST_DEFINED = (
    ("activation_charge",), ("step",), ("flat_rate",), ("rate",), ("as",), ("name",),
    ("discounts", "single", "rate"), ("discounts", "cumulative", "rate"), ("tiers_mode",),
)
_SUMMED = (("minimum",), ("discounts", "cumulative", "maximum"))
_TIER_UNION = (
    ("flat_rates",), ("rates",), ("discounts", "single", "rates"),
    ("discounts", "cumulative", "rates"),
)
# true if any plan says true, false if plans define it and none does
_ANY_TRUE = (("cascade",), ("prorate", "additions"), ("prorate", "removals"))


def _get(doc: Json, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _set(doc: Json, path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        doc = doc.setdefault(key, {})
    doc[path[-1]] = value


def _cumulative_item(item_plans: Sequence[Json]) -> Json:
    """``item_plans`` are ordered highest priority first."""
    out: Json = {}
    for path in _FIRST_DEFINED:
        value = next((v for p in item_plans if (v := _get(p, path)) is not None), None)
        if value is not None:
            _set(out, path, value)
    for path in _SUMMED:
        values = [v for p in item_plans if (v := _get(p, path)) is not None]
        if values:
            _set(out, path, sum(values))
    for path in _TIER_UNION:
        tiers: Json = {}
        for p in reversed(item_plans):  # lowest first so the highest priority wins a key
            tiers.update(_get(p, path) or {})
        if tiers:
            _set(out, path, tiers)
    # A key any plan defines is set, even to an empty list or to false: the item then exists
    # (total 0 at worst), and an explicit false outranks a lower strategy group's true when the
    # groups are combined (kzd_item_plan cumulative_merge_list / cumulative_merge_or).
    listed = [p["exceptions"] for p in item_plans if "exceptions" in p]
    if listed:
        out["exceptions"] = list(dict.fromkeys(e for names in listed for e in names))
    for path in _ANY_TRUE:
        flags = [v for p in item_plans if (v := _get(p, path)) is not None]
        if flags:
            _set(out, path, any(flags))
    return out


def _merge_cumulative(docs: Sequence[Json]) -> Json:
    merged = _fold(docs, merge_recursive)
    highest_first = list(reversed(docs))
    plan: Json = {}
    for doc in highest_first:
        for category, items in (doc.get("plan") or {}).items():
            for item in items:
                plan.setdefault(category, {}).setdefault(item, None)
    for category, items in plan.items():
        for item in items:
            item_plans = [
                d["plan"][category][item]
                for d in highest_first
                if item in ((d.get("plan") or {}).get(category) or {})
            ]
            items[item] = _cumulative_item(item_plans)
    merged["plan"] = plan
    return merged


_STRATEGIES: dict[str, Callable[[Sequence[Json]], Json]] = {
    "simple": _merge_simple,
    "recursive": _merge_recursive,
    "cumulative": _merge_cumulative,
}


def merge_group(docs: Sequence[Json]) -> Json:
    """Merge the (overridden) plan docs of one bookkeeper group into one plan doc."""
    buckets: dict[str, list[Json]] = {}
    for doc in docs:
        strategy = (doc.get("merge") or {}).get("strategy") or "simple"
        buckets.setdefault(strategy, []).append(_public(doc))
    merged: Json = {}
    for strategy in sorted(buckets, key=STRATEGY_PRIORITY.__getitem__):
        # merge_recursive from {} is also what makes every empty object vanish (step 4)
        merged = merge_recursive(merged, _STRATEGIES[strategy](_priority_order(buckets[strategy])))
    return merged


def merge_plans(
    plans: Sequence[AssignedPlan],
    global_overrides: Json,
    default_bookkeeper: Mapping[str, str] | None = None,
    root: str = "$.plans",
    object_plans: ObjectPlans = NO_OBJECT_PLANS,
) -> list[MergedPlan]:
    """One merged plan per bookkeeper, in the order the bookkeepers first appear; ``root``
    locates the plans in the caller's input for error paths."""
    defaults = default_bookkeeper or {}
    groups: dict[Bookkeeper, list[Json]] = {}
    for index, assigned in enumerate(plans):
        overrides = combine_overrides(
            global_overrides, assigned.overrides, f"{root}[{index}].overrides"
        )
        # Empty objects go after the overrides are applied (attaching the default bookkeeper
        # drops them): a category or item a global null empties is
        # gone, not an empty object that would wipe a lower-priority plan's in a simple merge.
        doc = drop_empty(merge_recursive(assigned.doc, overrides))
        groups.setdefault(bookkeeper_of(doc, defaults, assigned.vendor_id), []).append(doc)
    for named in object_plans.copies:
        # a null in the reference's own overrides deletes the key from this copy only
        doc = drop_empty(merge_recursive(named.doc, named.overrides))
        vendor_id = object_plans.vendor_id or named.vendor_id
        groups.setdefault(bookkeeper_of(doc, defaults, vendor_id), []).append(doc)
    return [
        MergedPlan(bookkeeper, merge_group(docs).get("plan") or {})
        for bookkeeper, docs in groups.items()
    ]


class MergeCache:
    """Merged plans keyed by the plans' identities and the overrides' content."""

    def __init__(self, maxsize: int = 4096) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[Hashable, list[MergedPlan]] = OrderedDict()

    def merge(
        self,
        plans: Sequence[AssignedPlan],
        global_overrides: Json,
        default_bookkeeper: Mapping[str, str] | None = None,
        root: str = "$.plans",
        object_plans: ObjectPlans = NO_OBJECT_PLANS,
    ) -> list[MergedPlan]:
        key = (
            tuple(p.cache_key for p in plans),
            fingerprint(global_overrides) if global_overrides else None,
            tuple(sorted((default_bookkeeper or {}).items())),
            object_plans.cache_key if object_plans.copies else None,
        )
        if (hit := self._entries.get(key)) is not None:
            self._entries.move_to_end(key)
            return hit
        merged = merge_plans(plans, global_overrides, default_bookkeeper, root, object_plans)
        self._entries[key] = merged
        if len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
        return merged
