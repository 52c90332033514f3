"""The shapes of what the store keeps, and the pure edits made to them.

Documents are plain JSON so that both adapters store them the same way. Each function here
takes a document and returns a new one: the repository reads, edits with these, and writes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

from ..quantities import Counts, add_counts, diff_counts, resolve_counts, subtract_counts

Doc = dict[str, Any]
GOOD_STANDING = "good_standing"


def ledger_key(account_id: str, doc_id: str) -> str:
    return f"{account_id}/{doc_id}"


def plan_key(vendor_id: str, plan_id: str) -> str:
    return f"{vendor_id}/{plan_id}"


@dataclass(frozen=True)
class AccountFields:
    """What an account document says about the account itself (SPEC §6)."""

    tree: tuple[str, ...]
    is_reseller: bool
    enabled: bool = True
    name: str | None = None
    # pvt_superduper_admin: KAZOO's super-duper admins may change any account's billing
    superduper_admin: bool = False


@dataclass(frozen=True)
class DocChange:
    """One document's new state, as counted by ``svc.quantities``: the unit of ingest."""

    account_id: str
    doc_id: str
    doc_type: str | None  # None: a delete by id (KAZOO's "undefined"), typed by the ledger
    rev: int | None  # the number before "-" in Rev; a delete may come without one
    deleted: bool = False
    counts: Counts = field(default_factory=dict)
    account: AccountFields | None = None  # only for the account's own document
    object_plans: Doc | None = None  # the plans it names in service.plans, if any


@dataclass(frozen=True)
class QuantityChange:
    account_id: str
    scope: Literal["account", "cascade"]
    category: str
    item: str
    previous: int
    current: int


@dataclass(frozen=True)
class AppliedChange:
    outcome: Literal["applied", "ignored"]
    changes: tuple[QuantityChange, ...] = ()


def new_account(account_id: str) -> Doc:
    # an account known only from its documents is "pending": counted, not attached (SPEC §12)
    return {"id": account_id, "tree": [], "pending": True, "deleted": False,
            "is_reseller": False, "reseller_flag_seen": None, "reseller_id": None,
            "enabled": True, "name": None}


def new_services(account_id: str) -> Doc:
    return {
        "account_id": account_id,
        "plans": {},  # plan id -> {"vendor_id", "overrides"}
        "plan_keys": [],  # "vendor/plan" of each assigned plan: the plan -> accounts index
        # documents of the account naming plans: doc id -> {"type", "plans": service.plans}
        "object_plans": {},
        "object_plan_ids": [],  # the plan ids they name: the plan -> accounts index
        "overrides": {},
        "bookkeeper": {},
        "default_plan": None,
        "quantities": {"raw": {}, "account": {}, "cascade": {}, "manual": {}},
        "status": GOOD_STANDING,
        "dirty": False,
        "changed_at": None,
        "last_sync": None,
    }


def mark_dirty(services: Doc, now: float) -> Doc:
    """Dirty since ``now``. ``change_count`` tells a sync whether the account changed while
    it was being synced; when it falls due is the account's lease document's business
    (``svc.store.leases``), which ingest writes only when a clean account turns dirty."""
    return {**services, "dirty": True, "changed_at": now,
            "change_count": services.get("change_count", 0) + 1}


def _changes(account_id: str, scope: Literal["account", "cascade"], before: Counts,
             after: Counts) -> list[QuantityChange]:
    return [QuantityChange(account_id, scope, category, item, previous, current)
            for category, item, previous, current in diff_counts(before, after)]


def add_own_counts(services: Doc, delta: Counts) -> tuple[Doc, Counts, list[QuantityChange]]:
    """Add a contribution delta to the account's symbolic sum; returns the new document, the
    change of its resolved quantities (what its ancestors' cascades move by) and the changes."""
    out = copy.deepcopy(services)
    quantities = out["quantities"]
    before = quantities["account"]
    quantities["raw"] = add_counts(quantities["raw"], delta)
    quantities["account"] = resolve_counts(quantities["raw"])
    resolved_delta = subtract_counts(quantities["account"], before)
    return out, resolved_delta, _changes(out["account_id"], "account", before,
                                         quantities["account"])


def add_cascade_counts(services: Doc, delta: Counts) -> tuple[Doc, list[QuantityChange]]:
    out = copy.deepcopy(services)
    before = out["quantities"]["cascade"]
    out["quantities"]["cascade"] = add_counts(before, delta)
    return out, _changes(out["account_id"], "cascade", before, out["quantities"]["cascade"])


def replace_quantities(services: Doc, raw: Counts | None = None,
                       cascade: Counts | None = None) -> tuple[Doc, list[QuantityChange]]:
    """Reconcile: put recounted values in place, reporting what drifted."""
    out = copy.deepcopy(services)
    quantities = out["quantities"]
    changes: list[QuantityChange] = []
    if raw is not None:
        account = resolve_counts(raw)
        changes += _changes(out["account_id"], "account", quantities["account"], account)
        quantities["raw"], quantities["account"] = raw, account
    if cascade is not None:
        changes += _changes(out["account_id"], "cascade", quantities["cascade"], cascade)
        quantities["cascade"] = cascade
    return out, changes


def with_object_plans(services: Doc, edits: dict[str, Doc | None]) -> Doc:
    """The account's documents naming plans, with ``edits`` made (doc id → ``{type,
    plans}``, or ``None`` when it names nothing any more), and the index of their plan ids."""
    named = dict(services.get("object_plans") or {})
    for doc_id, entry in edits.items():
        if entry is None:
            named.pop(doc_id, None)
        else:
            named[doc_id] = entry
    plan_ids = sorted({plan_id for entry in named.values() for plan_id in entry["plans"]})
    return {**services, "object_plans": named, "object_plan_ids": plan_ids}


def deep_update(base: Doc, top: Doc) -> Doc:
    """PATCH semantics: ``top`` merged into ``base`` object by object, its values (nulls
    included, which in overrides mean "delete") winning."""
    out = dict(base)
    for key, value in top.items():
        below = out.get(key)
        out[key] = (deep_update(below, value)
                    if isinstance(value, dict) and isinstance(below, dict) else value)
    return out


def negate(counts: Counts) -> Counts:
    return subtract_counts({}, counts)
