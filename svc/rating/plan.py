"""Loading and validating service-plan documents and overrides.

A loaded plan is plain JSON whose values have KAZOO's coercions already applied: money as
``Decimal``, integer fields as ``int`` (fractions rounded half away from zero), booleans as
``bool``. Merging (``merge.py``) and rating (``item.py``) then read it without re-checking.
Every rule broken is reported with the JSON path of the offending value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .coerce import CoercionError, to_bool, to_decimal, to_int

Json = dict[str, Any]

TIER_KEY = re.compile(r"^[0-9]+$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
STRATEGIES = ("simple", "recursive", "cumulative")
# How `rates` prices the units: KAZOO's "volume" (all units at the tier the quantity reaches)
# or svc's opt-in "graduated" (each unit at its own tier's rate).
TIERS_MODES = ("volume", "graduated")

# Keys of a bare category map (the seed's form) that are not categories.
NOT_CATEGORIES = frozenset(
    {"name", "description", "category", "bookkeeper", "merge", "applications", "ratedeck"}
)


@dataclass(frozen=True)
class Violation:
    path: str
    rule: str

    def as_json(self) -> dict[str, str]:
        return {"path": self.path, "rule": self.rule}


class PlanInvalid(ValueError):
    def __init__(self, violations: list[Violation]) -> None:
        self.violations = tuple(violations)
        super().__init__("; ".join(f"{v.path}: {v.rule}" for v in violations))


def key_path(path: str, key: str, bracket: bool = False) -> str:
    if not bracket and _IDENTIFIER.match(key):
        return f"{path}.{key}"
    return f"{path}[{key!r}]"


def is_category_key(key: str) -> bool:
    return not (key.startswith("_") or key.startswith("pvt_") or key in NOT_CATEGORIES)


# --- value kinds: each returns the coerced value or raises CoercionError ----------------


def _at_least(convert: Callable[[object], Any], minimum: int) -> Callable[[object], Any]:
    def kind(value: object) -> Any:
        number = convert(value)
        if number < minimum:
            raise CoercionError(f"must be >= {minimum}")
        return number

    return kind


_money = _at_least(to_decimal, 0)
_count = _at_least(to_int, 0)
_step = _at_least(to_int, 1)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise CoercionError("must be a string")
    return value


def _names(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CoercionError("must be a list of strings")
    return list(value)


def _one_of(choices: tuple[str, ...]) -> Callable[[object], str]:
    def kind(value: object) -> str:
        if value not in choices:
            raise CoercionError(f"must be one of {', '.join(choices)}")
        return value  # type: ignore[return-value]

    return kind


_strategy = _one_of(STRATEGIES)
_tiers_mode = _one_of(TIERS_MODES)


Kind = Callable[[object], Any]
TIERS = "tiers"  # marker: an object of "<int>": money

DISCOUNT_SCHEMA: Mapping[str, Any] = {"rate": _money, "rates": TIERS, "minimum": _count}
ITEM_SCHEMA: Mapping[str, Any] = {
    "rate": _money,
    "flat_rate": _money,
    "activation_charge": _money,
    "rates": TIERS,
    "tiers_mode": _tiers_mode,
    "flat_rates": TIERS,
    "minimum": _count,
    "maximum": _count,
    "step": _step,
    "cascade": to_bool,
    "enabled": to_bool,
    "exceptions": _names,
    "as": _text,
    "name": _text,
    "discounts": {
        "single": DISCOUNT_SCHEMA,
        "cumulative": {**DISCOUNT_SCHEMA, "maximum": _count},
    },
    "prorate": {"additions": to_bool, "removals": to_bool},
}
DOC_SCHEMA: Mapping[str, Any] = {
    "merge": {"strategy": _strategy, "priority": _count},
    "bookkeeper": {"id": _text, "type": _text, "vendor_id": _text},
}


class _Loader:
    """Walks a document against the schemas, collecting every violation."""

    def __init__(self, keep_nulls: bool) -> None:
        self.keep_nulls = keep_nulls  # overrides keep null: it means "delete this key"
        self.violations: list[Violation] = []

    def fail(self, path: str, rule: str) -> None:
        self.violations.append(Violation(path, rule))

    def mapping(
        self, value: object, path: str, rule: str,
        load_entry: Callable[[str, object, str], Any], bracket: bool = False,
    ) -> Json | None:
        """Load each entry of a JSON object; a null entry is dropped, or kept in overrides."""
        if not isinstance(value, dict):
            self.fail(path, rule)
            return None
        out: Json = {}
        for key, sub in value.items():
            if sub is None:
                if self.keep_nulls:
                    out[key] = None
                continue
            loaded = load_entry(key, sub, key_path(path, key, bracket))
            if loaded is not None:
                out[key] = loaded
        return out

    def obj(self, value: object, path: str, schema: Mapping[str, Any]) -> Json | None:
        def field(key: str, sub: object, sub_path: str) -> Any:
            kind = schema.get(key)
            # fields KAZOO does not read are kept as they are
            return sub if kind is None else self.value(sub, sub_path, kind)

        return self.mapping(value, path, "must be an object", field)

    def value(self, value: object, path: str, kind: Any) -> Any:
        if kind == TIERS:
            return self.tiers(value, path)
        if isinstance(kind, Mapping):
            return self.obj(value, path, kind)
        try:
            return kind(value)
        except CoercionError as error:
            self.fail(path, error.rule)
            return None

    def tiers(self, value: object, path: str) -> Json | None:
        def tier(key: str, price: object, tier_path: str) -> Any:
            if not TIER_KEY.match(key):
                self.fail(tier_path, "tier keys must match ^[0-9]+$")
                return None
            return self.value(price, tier_path, _money)

        return self.mapping(value, path, "must be an object of tier thresholds", tier,
                            bracket=True)

    def categories(self, value: object, path: str) -> Json | None:
        def item(key: str, item_plan: object, item_path: str) -> Any:
            return self.obj(item_plan, item_path, ITEM_SCHEMA)

        def category(key: str, items: object, category_path: str) -> Any:
            return self.mapping(items, category_path, "a category must be an object of items",
                                item)

        return self.mapping(value, path, "must be an object of categories", category)

    def document(self, doc: object, root: str) -> Json:
        if not isinstance(doc, dict):
            self.fail(root, "a plan must be a JSON object")
            return {}
        if "plan" in doc:
            rest, plan, plan_path = doc, doc["plan"], key_path(root, "plan")
        else:  # the seed's bare category map: its category keys are the plan
            rest = {k: v for k, v in doc.items() if not is_category_key(k)}
            plan = {k: v for k, v in doc.items() if is_category_key(k)}
            plan_path = root
        out = self.obj({k: v for k, v in rest.items() if k != "plan"}, root, DOC_SCHEMA) or {}
        if plan is None:
            if self.keep_nulls:
                out["plan"] = None
        else:
            categories = self.categories(plan, plan_path)
            if categories is not None:
                out["plan"] = categories
        return out


def load_plan(doc: object, root: str = "$") -> Json:
    """A service-plan document (full, or the seed's bare category map) → loaded plan."""
    loader = _Loader(keep_nulls=False)
    loaded = loader.document(doc, root)
    if loader.violations:
        raise PlanInvalid(loader.violations)
    return loaded


def load_overrides(doc: object, root: str = "$") -> Json:
    """A partial plan document whose ``null`` values mean "delete this key"."""
    if doc is None:
        return {}
    loader = _Loader(keep_nulls=True)
    loaded = loader.document(doc, root)
    if loader.violations:
        raise PlanInvalid(loader.violations)
    return loaded


def _json_schema_of(rule: Any) -> Json:
    if isinstance(rule, Mapping):
        return {"type": "object", "properties": {k: _json_schema_of(v) for k, v in rule.items()}}
    return dict(_JSON_SCHEMAS[rule])


_MONEY = {"type": "number", "minimum": 0}
_JSON_SCHEMAS: dict[Any, Json] = {
    _money: _MONEY, _count: {"type": "integer", "minimum": 0},
    _step: {"type": "integer", "minimum": 1}, to_bool: {"type": "boolean"},
    _text: {"type": "string"}, _names: {"type": "array", "items": {"type": "string"}},
    _tiers_mode: {"type": "string", "enum": list(TIERS_MODES)},
    TIERS: {"type": "object", "patternProperties": {"^[0-9]+$": _MONEY}},
}


def item_properties() -> Json:
    """What a plan item takes, as JSON Schema properties: the rules ``load_plan`` applies
    (KAZOO's ``editable`` lists its item schema's properties so)."""
    return {key: _json_schema_of(rule) for key, rule in ITEM_SCHEMA.items()}
