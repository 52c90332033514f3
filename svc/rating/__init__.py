"""KAZOO 4.3 service-plan rating as pure functions: no I/O anywhere in this package.

Read next to docs/rating.md: ``plan``, ``merge``, ``objects`` (plans named by the
account's documents), ``item``, ``invoice``, ``quote`` (the quote document), ``lint``.
"""

from . import money  # noqa: F401 - exact money before any arithmetic
from .invoice import ActivationCharge, Invoice, compare_invoices, rate_invoices
from .item import Quantities, RatedItem, rate_item
from .lint import lint_plan
from .merge import AssignedPlan, Bookkeeper, MergeCache, MergedPlan, ObjectPlans, merge_plans
from .plan import PlanInvalid, Violation, load_overrides, load_plan
from .quote import QuoteInvalid, QuoteRequest, State, parse_quote, quote_json, rate_quote

__all__ = [
    "ActivationCharge", "AssignedPlan", "Bookkeeper", "Invoice", "MergeCache", "MergedPlan",
    "ObjectPlans", "PlanInvalid", "Quantities", "QuoteInvalid", "QuoteRequest", "RatedItem",
    "State", "Violation", "compare_invoices", "lint_plan", "load_overrides", "load_plan",
    "merge_plans", "parse_quote", "quote_json", "rate_invoices", "rate_item", "rate_quote",
]
