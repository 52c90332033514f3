"""Object plans: the plans an account's own documents name, as KAZOO 4.3 applies them
(``kz_services_plans:get_object_plans/3`` over the view ``services/object_plans``).

A document (a user, a device) carrying ``"service": {"plans": {plan id: {"vendor_id"?,
"overrides"?}}}`` adds those plans to its account's. KAZOO lists such documents by
``pvt_type``, then id, and appends, for each document, every plan it names in the order of
its keys: one more copy per reference, even of a plan the account is assigned or another
document names. An empty or missing ``vendor_id`` is the account's vendor; a reference whose
vendor has no such plan is skipped. Finding a plan's document is the caller's business (a
quote document's plans, the store); this module stays pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .jsonmerge import Json
from .merge import AssignedPlan, ObjectPlans
from .plan import PlanInvalid, Violation, key_path, load_overrides


@dataclass(frozen=True)
class NamingDocument:
    """A document of the account whose ``service.plans`` names plans."""

    id: str
    type: str | None  # its pvt_type: the view's key
    plans: Mapping[str, Any]  # its service.plans, as read_references accepts it


@dataclass(frozen=True)
class PlanReference:
    plan_id: str
    vendor_id: str  # "": the account's vendor
    overrides: Json  # loaded; a null deletes the key from this copy


def view_order(documents: Iterable[NamingDocument]) -> list[NamingDocument]:
    """The rows of ``services/object_plans`` as CouchDB returns them: by key (the pvt_type;
    a missing one is null, which collates first), then by document id. Strings compare by
    code point; CouchDB's collation agrees on KAZOO's ids and types (lowercase hex, lowercase
    words)."""
    return sorted(documents, key=lambda d: (d.type is not None, d.type or "", d.id))


def read_references(plans: object, path: str) -> tuple[list[PlanReference], list[Violation]]:
    """A document's ``service.plans`` → its valid references in key order, and a violation
    for each entry that KAZOO could not read (``path`` locates ``plans`` for the paths)."""
    if not isinstance(plans, dict):
        return [], [Violation(path, "must be an object of plan references")]
    references: list[PlanReference] = []
    violations: list[Violation] = []
    for plan_id, entry in plans.items():
        entry_path = key_path(path, plan_id)
        if not isinstance(entry, dict):
            violations.append(Violation(entry_path, "must be an object {vendor_id?, overrides?}"))
            continue
        vendor_id = entry.get("vendor_id")
        if vendor_id is not None and not isinstance(vendor_id, str):
            violations.append(Violation(f"{entry_path}.vendor_id", "must be a string"))
            continue
        overrides = entry.get("overrides")
        if overrides is not None and not isinstance(overrides, dict):
            violations.append(Violation(f"{entry_path}.overrides", "must be an object"))
            continue
        try:
            loaded = load_overrides(overrides, f"{entry_path}.overrides")
        except PlanInvalid as error:
            violations.extend(error.violations)
            continue
        references.append(PlanReference(plan_id, vendor_id or "", loaded))
    return references, violations


def plan_references(documents: Iterable[NamingDocument], root: str = "$") -> list[PlanReference]:
    """Every reference of ``documents`` (already in the view's order), in KAZOO's order;
    ``PlanInvalid`` lists every unreadable entry by its path (``root[i].plans…``)."""
    references: list[PlanReference] = []
    violations: list[Violation] = []
    for index, document in enumerate(documents):
        found, bad = read_references(document.plans, f"{root}[{index}].plans")
        references += found
        violations += bad
    if violations:
        raise PlanInvalid(violations)
    return references


def object_plans(references: Iterable[PlanReference], account_vendor: str,
                 find: Callable[[str, str], AssignedPlan | None]) -> ObjectPlans:
    """One copy per reference whose plan ``find(vendor id, plan id)`` finds, with the
    reference's own overrides; the others are skipped, as KAZOO skips them."""
    copies = []
    for reference in references:
        vendor_id = reference.vendor_id or account_vendor
        plan = find(vendor_id, reference.plan_id)
        if plan is not None:
            copies.append(AssignedPlan(reference.plan_id, vendor_id, plan.doc,
                                       reference.overrides, plan.version, plan.source))
    return ObjectPlans(tuple(copies), account_vendor)


def wanted_plans(references: Iterable[PlanReference], account_vendor: str
                 ) -> list[tuple[str, str]]:
    """The distinct (vendor id, plan id) the references name, for a caller to look up."""
    return list(dict.fromkeys((r.vendor_id or account_vendor, r.plan_id) for r in references))
