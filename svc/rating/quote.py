"""The quote contract (SPEC §4): a quote document in, invoices out.

``rate_quote`` is the pure core every caller shares (CLI, the ``quote`` RPC, the sync loop);
``parse_quote`` turns a quote document into a ``QuoteRequest`` or raises ``QuoteInvalid``
listing every bad field by JSON path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .coerce import MAX_QUANTITY
from .invoice import Invoice, compare_invoices, rate_invoices, taken_over
from .item import Quantities
from .jsonmerge import Json
from .merge import AssignedPlan, MergeCache
from .plan import PlanInvalid, Violation, key_path, load_overrides, load_plan


@dataclass(frozen=True)
class State:
    """What is rated: the assigned plans, the global overrides and the quantities."""

    plans: tuple[AssignedPlan, ...]
    overrides: Json = field(default_factory=dict)
    quantities: Quantities = field(default_factory=Quantities)


@dataclass(frozen=True)
class QuoteRequest:
    proposed: State
    current: State | None = None  # when given, items carry changes and activation charges
    default_bookkeeper: Mapping[str, str] = field(default_factory=dict)


_DEFAULT_CACHE = MergeCache()


def rate_state(state: State, default_bookkeeper: Mapping[str, str] | None = None,
               cache: MergeCache = _DEFAULT_CACHE) -> list[Invoice]:
    merged = cache.merge(state.plans, state.overrides, default_bookkeeper)
    return rate_invoices(merged, state.quantities)


def rate_quote(request: QuoteRequest, cache: MergeCache = _DEFAULT_CACHE) -> list[Invoice]:
    proposed = rate_state(request.proposed, request.default_bookkeeper, cache)
    if request.current is None:
        return proposed
    current = rate_state(request.current, request.default_bookkeeper, cache)
    return compare_invoices(current, proposed)


def rate_switch(proposed: State, billed: State, billed_as_now: State,
                default_bookkeeper: Mapping[str, str], billed_bookkeeper: Mapping[str, str]
                ) -> list[Invoice]:
    """A change of bookkeeper since ``billed`` (rated with ``billed_bookkeeper`` as default).
    A bookkeeper that billed and still does compares with what it billed; one that takes
    over items compares with nothing, but with no activation charge again for units already
    billed (``billed_as_now``: the billed state under the present bookkeepers); one that
    billed and bills no more gets the removal of what it billed."""
    before = {i.bookkeeper: i for i in rate_state(billed, billed_bookkeeper)}
    as_now = {i.bookkeeper: i for i in rate_state(billed_as_now, default_bookkeeper)}
    invoices = []
    for invoice in rate_state(proposed, default_bookkeeper):
        if invoice.bookkeeper in before:
            invoices += compare_invoices([before.pop(invoice.bookkeeper)], [invoice])
        else:
            taken = as_now.get(invoice.bookkeeper)
            invoices.append(taken_over(taken.items if taken else (), invoice))
    return invoices + compare_invoices(list(before.values()), [])


def current_under_proposed(current_plans: Sequence[AssignedPlan], proposed: State,
                           quantities: Quantities) -> State:
    """KAZOO rates the current plans with the proposed overrides and vendor ids, so that
    changing overrides alone is no change (ref §3.7 correction 5)."""
    by_id = {plan.id: plan for plan in proposed.plans}
    plans = tuple(
        AssignedPlan(p.id, by_id[p.id].vendor_id, p.doc, by_id[p.id].overrides, p.version,
                     p.source)
        if p.id in by_id else p
        for p in current_plans
    )
    return State(plans, proposed.overrides, quantities)


def quote_json(invoices: Sequence[Invoice]) -> Json:
    return {"invoices": [invoice.as_json() for invoice in invoices]}


# --- the quote document ------------------------------------------------------------------


class QuoteInvalid(ValueError):
    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations = tuple(violations)
        super().__init__("; ".join(f"{v.path}: {v.rule}" for v in violations))


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be an integer, not a boolean")
    return value


# Quantities are integers >= 0: 2, 2.0 and "2" pass; 2.5 and -1 are refused (SPEC §12).
Count = Annotated[int, Field(ge=0, le=MAX_QUANTITY), BeforeValidator(_not_bool)]
CountsIn = dict[str, dict[str, Count]]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class QuantitiesIn(_Model):
    account: CountsIn = Field(default_factory=dict)
    cascade: CountsIn = Field(default_factory=dict)
    manual: CountsIn = Field(default_factory=dict)

    def to_quantities(self) -> Quantities:
        return Quantities(self.account, self.cascade, self.manual)


class PlanIn(_Model):
    id: str
    vendor_id: str = ""
    doc: dict[str, Any]
    overrides: dict[str, Any] | None = None
    version: int | None = None


class CurrentIn(_Model):
    plans: list[PlanIn] | None = None
    quantities: QuantitiesIn | None = None


class QuoteDocument(_Model):
    plans: list[PlanIn] = Field(default_factory=list)
    overrides: dict[str, Any] | None = None
    quantities: QuantitiesIn = Field(default_factory=QuantitiesIn)
    current: CurrentIn | None = None


def pydantic_path(loc: Sequence[int | str], root: str = "$") -> str:
    path = root
    for part in loc:
        path = f"{path}[{part}]" if isinstance(part, int) else key_path(path, part)
    return path


def violations_of(error: ValidationError, root: str = "$") -> list[Violation]:
    return [Violation(pydantic_path(e["loc"], root), e["msg"]) for e in error.errors()]


def load_assigned_plans(plans: Sequence[PlanIn], root: str) -> tuple[AssignedPlan, ...]:
    loaded: list[AssignedPlan] = []
    violations: list[Violation] = []
    for index, plan in enumerate(plans):
        path = f"{root}[{index}]"
        try:
            loaded.append(AssignedPlan(
                plan.id, plan.vendor_id, load_plan(plan.doc, f"{path}.doc"),
                load_overrides(plan.overrides, f"{path}.overrides"), plan.version,
            ))
        except PlanInvalid as error:
            violations.extend(error.violations)
    if violations:
        raise PlanInvalid(violations)
    return tuple(loaded)


def parse_quote(document: Any) -> QuoteRequest:
    try:
        model = QuoteDocument.model_validate(document)
    except ValidationError as error:
        raise QuoteInvalid(violations_of(error)) from None
    try:
        plans = load_assigned_plans(model.plans, "$.plans")
        proposed = State(plans, load_overrides(model.overrides, "$.overrides"),
                         model.quantities.to_quantities())
        current = None
        if model.current is not None:
            current_plans = (plans if model.current.plans is None
                             else load_assigned_plans(model.current.plans, "$.current.plans"))
            quantities = (proposed.quantities if model.current.quantities is None
                          else model.current.quantities.to_quantities())
            current = current_under_proposed(current_plans, proposed, quantities)
        # a merge that would crash KAZOO surfaces here, before anything is rated
        _DEFAULT_CACHE.merge(proposed.plans, proposed.overrides)
        if current is not None:
            _DEFAULT_CACHE.merge(current.plans, current.overrides, root="$.current.plans")
    except PlanInvalid as error:
        raise QuoteInvalid(error.violations) from None
    return QuoteRequest(proposed, current)
