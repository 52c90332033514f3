"""An account's billing state read from the store and rated: the bridge from stored
documents to the pure rating engine, shared by the RPC handlers and the sync loop."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from .quantities import Counts
from .rating import (
    AssignedPlan,
    Invoice,
    ObjectPlans,
    Quantities,
    State,
    load_overrides,
    load_plan,
)
from .rating.objects import NamingDocument, object_plans, plan_references, view_order, wanted_plans
from .rating.quote import QuoteRequest, merged_plans, rate_quote
from .store import PlanNotFound, Repository

Doc = dict[str, Any]
_LOADED: OrderedDict[tuple[str, str, int], Doc] = OrderedDict()


def _loaded_plan(source: str, key: str, version: int, doc: Doc) -> Doc:
    """Plans are loaded (validated, coerced) once per stored version of their store."""
    cache_key = (source, key, version)
    if cache_key not in _LOADED:
        _LOADED[cache_key] = load_plan(doc)
        if len(_LOADED) > 4096:
            _LOADED.popitem(last=False)
    return _LOADED[cache_key]


async def stored_plan(repo: Repository, vendor_id: str, plan_id: str,
                      overrides: Doc | None = None) -> AssignedPlan | None:
    """A plan as the store has it now, loaded; ``None`` when it does not exist."""
    try:
        found = await repo.get_plan(vendor_id, plan_id)
    except PlanNotFound:
        return None
    return AssignedPlan(
        plan_id, vendor_id,
        _loaded_plan(repo.store.identity, found.key, found.version, found.doc["doc"]),
        load_overrides(overrides or {}), found.version, repo.store.identity)


async def assigned_plans(repo: Repository, plans: Mapping[str, Doc]) -> tuple[AssignedPlan, ...]:
    """``plans`` as in a services document: {plan id: {vendor_id, overrides}}. A plan that
    no longer exists is skipped, as KAZOO does."""
    loaded = [await stored_plan(repo, entry["vendor_id"], plan_id, entry.get("overrides"))
              for plan_id, entry in plans.items()]
    return tuple(plan for plan in loaded if plan is not None)


async def named_plans(repo: Repository, services: Doc) -> ObjectPlans:
    """The copies of the plans the account's documents name (``service.plans``), in the
    order of KAZOO's view; a reference without a vendor names the account's reseller's."""
    named = services.get("object_plans") or {}
    if not named:
        return ObjectPlans()
    account = await repo.account(services["account_id"]) or {}
    vendor_id = account.get("reseller_id") or services["account_id"]
    documents = view_order(NamingDocument(doc_id, entry["type"], entry["plans"])
                           for doc_id, entry in named.items())
    references = plan_references(documents)
    found = {key: await stored_plan(repo, *key) for key in wanted_plans(references, vendor_id)}
    return object_plans(references, vendor_id, lambda vendor, plan_id:
                        found.get((vendor, plan_id)))


def stored_quantities(services: Doc) -> Quantities:
    q = services["quantities"]
    return Quantities(q["account"], q["cascade"], q["manual"])


async def current_state(repo: Repository, services: Doc) -> State:
    return State(await assigned_plans(repo, services["plans"]),
                 load_overrides(services.get("overrides") or {}), stored_quantities(services),
                 await named_plans(repo, services))


def _plan_snapshot(plan: AssignedPlan) -> Doc:
    return {"id": plan.id, "vendor_id": plan.vendor_id, "version": plan.version,
            "doc": plan.doc, "overrides": plan.overrides}


def snapshot_of(state: State) -> Doc:
    """A state as stored: plans with their docs, so that it rates the same later. An object
    plan's document is kept once however many copies name it."""
    q = state.quantities
    snapshot = {"plans": [_plan_snapshot(p) for p in state.plans],
                "overrides": state.overrides,
                "quantities": {"account": q.account, "cascade": q.cascade, "manual": q.manual}}
    copies = state.object_plans.copies
    if copies:
        snapshot["object_plans"] = {
            "vendor_id": state.object_plans.vendor_id,
            "docs": {f"{p.vendor_id}/{p.id}": {"version": p.version, "doc": p.doc}
                     for p in copies},
            "copies": [{"id": p.id, "vendor_id": p.vendor_id, "overrides": p.overrides}
                       for p in copies]}
    return snapshot


def _plan_of(plan: Doc, source: str) -> AssignedPlan:
    version = plan.get("version")
    doc = (_loaded_plan(source, f"{plan['vendor_id']}/{plan['id']}", version, plan["doc"])
           if version is not None else load_plan(plan["doc"]))
    return AssignedPlan(plan["id"], plan["vendor_id"], doc,
                        load_overrides(plan.get("overrides") or {}), version, source)


def _object_plans_of(snapshot: Doc | None, source: str) -> ObjectPlans:
    if not snapshot:
        return ObjectPlans()
    docs = snapshot["docs"]
    return ObjectPlans(tuple(
        _plan_of({**copy, **docs[f"{copy['vendor_id']}/{copy['id']}"]}, source)
        for copy in snapshot["copies"]), snapshot["vendor_id"])


def state_of(snapshot: Doc, source: str) -> State:
    """A stored snapshot as a state; ``source`` is the identity of the store it was read
    from."""
    q = snapshot["quantities"]
    return State(tuple(_plan_of(p, source) for p in snapshot["plans"]),
                 load_overrides(snapshot["overrides"]),
                 Quantities(q["account"], q["cascade"], q["manual"]),
                 _object_plans_of(snapshot.get("object_plans"), source))


def billed_state(services: Doc, source: str) -> State:
    """What the last successful sync billed (empty before the first one)."""
    billed = services.get("billed")
    return state_of(billed, source) if billed else State(())


async def default_bookkeeper(repo: Repository, account: Doc) -> dict[str, str]:
    """The reseller's bookkeeper setting, vendor = the reseller."""
    reseller = account.get("reseller_id") or account["id"]
    reseller_services = await repo.services(reseller) or {}
    return {**(reseller_services.get("bookkeeper") or {}), "vendor_id": reseller}


async def live_invoices(repo: Repository, account: Doc, services: Doc) -> list[Doc]:
    """The present state compared with the last synced one, so pending activation charges
    show; each invoice with its plan."""
    request = QuoteRequest(await current_state(repo, services),
                           billed_state(services, repo.store.identity),
                           await default_bookkeeper(repo, account))
    return with_plans(rate_quote(request), request)


def with_plans(invoices: list[Invoice], request: QuoteRequest) -> list[Doc]:
    """Each invoice with the plan it is rated with (its bookkeeper's plans merged; empty for
    a bookkeeper that only bills removals) and KAZOO's ``taxes`` (svc computes none)."""
    plans = {merged.bookkeeper: merged.plan
             for merged in merged_plans(request.proposed, request.default_bookkeeper)}
    return [{**invoice.as_json(), "plan": plans.get(invoice.bookkeeper, {}), "taxes": []}
            for invoice in invoices]


def apply_changes(quantities: Quantities, changes: Mapping[str, Mapping[str, int]]
                  ) -> Quantities:
    """What-if deltas on each item's own quantity: the manual value if set, else the
    account value; cascade is untouched."""
    manual: Counts = {c: dict(items) for c, items in quantities.manual.items()}
    account: Counts = {c: dict(items) for c, items in quantities.account.items()}
    for category, items in changes.items():
        for item, delta in items.items():
            target = manual if item in manual.get(category, {}) else account
            value = target.get(category, {}).get(item, 0) + delta
            if value < 0:
                raise ValueError(f"$.Changes.{category}.{item}: the resulting quantity "
                                 f"{value} is negative")
            target.setdefault(category, {})[item] = value
    return Quantities(account, quantities.cascade, manual)

