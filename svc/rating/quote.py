"""The quote contract: a quote document in, invoices out.

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
from .merge import NO_OBJECT_PLANS, AssignedPlan, MergeCache, MergedPlan, ObjectPlans
from .objects import NamingDocument, object_plans, plan_references
from .plan import PlanInvalid, Violation, key_path, load_overrides, load_plan


@dataclass(frozen=True)
class State:
    """What is rated: the assigned plans, the global overrides, the quantities, and the
    plans the account's documents name."""

    plans: tuple[AssignedPlan, ...]
    overrides: Json = field(default_factory=dict)
    quantities: Quantities = field(default_factory=Quantities)
    object_plans: ObjectPlans = NO_OBJECT_PLANS


@dataclass(frozen=True)
class QuoteRequest:
    proposed: State
    current: State | None = None  # when given, items carry changes and activation charges
    default_bookkeeper: Mapping[str, str] = field(default_factory=dict)


_DEFAULT_CACHE = MergeCache()


def merged_plans(state: State, default_bookkeeper: Mapping[str, str] | None = None,
                 cache: MergeCache = _DEFAULT_CACHE) -> list[MergedPlan]:
    """The state's plans merged, one per bookkeeper: what each invoice is rated with."""
    return cache.merge(state.plans, state.overrides, default_bookkeeper,
                       object_plans=state.object_plans)


def rate_state(state: State, default_bookkeeper: Mapping[str, str] | None = None,
               cache: MergeCache = _DEFAULT_CACHE) -> list[Invoice]:
    return rate_invoices(merged_plans(state, default_bookkeeper, cache), state.quantities)


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
    changing overrides alone is no change; the documents naming
    object plans are the same in both states."""
    by_id = {plan.id: plan for plan in proposed.plans}
    plans = tuple(
        AssignedPlan(p.id, by_id[p.id].vendor_id, p.doc, by_id[p.id].overrides, p.version,
                     p.source)
        if p.id in by_id else p
        for p in current_plans
    )
    return State(plans, proposed.overrides, quantities, proposed.object_plans)


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


# Quantities are integers >= 0: 2, 2.0 and "2" pass; 2.5 and -1 are refused.
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


class ObjectPlanIn(_Model):
    """A document of the account that names plans: its id, pvt_type and service.plans."""

    id: str
    type: str | None = None
    plans: dict[str, Any] = Field(
        default_factory=dict, description="{plan id: {vendor_id?, overrides?}}")


class ExtraPlanIn(_Model):
    """A plan document stored under a vendor but not assigned: an object plan may name it."""

    id: str
    vendor_id: str
    doc: dict[str, Any]


class QuoteDocument(_Model):
    plans: list[PlanIn] = Field(default_factory=list)
    overrides: dict[str, Any] | None = None
    quantities: QuantitiesIn = Field(default_factory=QuantitiesIn)
    current: CurrentIn | None = None
    object_plans: list[ObjectPlanIn] = Field(
        default_factory=list, description="in the view's order: by type, then id")
    extra_plans: list[ExtraPlanIn] = Field(default_factory=list)
    vendor_id: str | None = Field(
        None, description="the account's vendor (its reseller), which an object plan "
        "reference without vendor_id names; default: the first plan's or extra plan's vendor")


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


def account_vendor(model: QuoteDocument) -> str:
    if model.vendor_id:
        return model.vendor_id
    return next((p.vendor_id for p in [*model.plans, *model.extra_plans] if p.vendor_id), "")


def load_object_plans(model: QuoteDocument, plans: Sequence[AssignedPlan]) -> ObjectPlans:
    """The copies the documents' references make; a reference finds its plan among the
    assigned plans and the extra plans only (the first of a vendor and id)."""
    if not model.object_plans and not model.extra_plans:
        return NO_OBJECT_PLANS
    vendor = account_vendor(model)
    documents = [NamingDocument(d.id, d.type, d.plans) for d in model.object_plans]
    references = plan_references(documents, "$.object_plans")
    extra = load_assigned_plans(
        [PlanIn(id=p.id, vendor_id=p.vendor_id, doc=p.doc) for p in model.extra_plans],
        "$.extra_plans")
    stored: dict[tuple[str, str], AssignedPlan] = {}
    for plan in [*plans, *extra]:
        stored.setdefault((plan.vendor_id, plan.id), plan)
    return object_plans(references, vendor, lambda vendor_id, plan_id:
                        stored.get((vendor_id, plan_id)))


def parse_quote(document: Any) -> QuoteRequest:
    try:
        model = QuoteDocument.model_validate(document)
    except ValidationError as error:
        raise QuoteInvalid(violations_of(error)) from None
    try:
        plans = load_assigned_plans(model.plans, "$.plans")
        proposed = State(plans, load_overrides(model.overrides, "$.overrides"),
                         model.quantities.to_quantities(), load_object_plans(model, plans))
        current = None
        if model.current is not None:
            current_plans = (plans if model.current.plans is None
                             else load_assigned_plans(model.current.plans, "$.current.plans"))
            quantities = (proposed.quantities if model.current.quantities is None
                          else model.current.quantities.to_quantities())
            current = current_under_proposed(current_plans, proposed, quantities)
        # a merge that would crash KAZOO surfaces here, before anything is rated
        _DEFAULT_CACHE.merge(proposed.plans, proposed.overrides,
                             object_plans=proposed.object_plans)
        if current is not None:
            _DEFAULT_CACHE.merge(current.plans, current.overrides, root="$.current.plans",
                                 object_plans=current.object_plans)
    except PlanInvalid as error:
        raise QuoteInvalid(error.violations) from None
    return QuoteRequest(proposed, current)
