"""What each request does, independent of the wire: a request model in, reply fields out
(SPEC §5, §12); the events of a change are written with it (``svc.store.outbox``). The AMQP
layer validates, dispatches here and replies."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import orjson

from .amqp import messages as m
from .invoicing import (
    apply_changes,
    assigned_plans,
    current_state,
    default_bookkeeper,
    live_invoices,
)
from .jsonio import dumps
from .memo import AnswerMemo
from .rating import PlanInvalid, QuoteInvalid, State, load_overrides
from .rating.quote import QuoteRequest, current_under_proposed, parse_quote, quote_json, rate_quote
from .sources import SourceUnavailable
from .store import Repository, StoreError, Versioned, audit

if TYPE_CHECKING:
    from .ingest.importer import Importer

Doc = dict[str, Any]
RECONCILE_ALL_LIMIT = 1000


@dataclass(frozen=True)
class Reply:
    """The reply's fields; the events a change causes leave with it through the outbox."""

    fields: Doc


@dataclass
class Rejected(Exception):
    """A domain error: the reply says ``Status: error`` with this ``Reason`` (SPEC §5)."""

    reason: str
    message: str
    details: list[Doc] = field(default_factory=list)


def rejection(error: Exception) -> Rejected:
    if isinstance(error, Rejected):
        return error
    if isinstance(error, PlanInvalid | QuoteInvalid):
        return Rejected("plan_invalid", "the plan breaks a rule",
                        [v.as_json() for v in error.violations])
    if isinstance(error, StoreError):
        return Rejected(error.reason, str(error))
    raise error


Handler = Callable[[Repository, Any], Awaitable[Reply]]
_MEMOS: WeakKeyDictionary[Repository, AnswerMemo[Reply]] = WeakKeyDictionary()


def memoized(key_of: Callable[[Any], Hashable | None]) -> Callable[[Handler], Handler]:
    """A read-only handler whose reply is kept while what it read is unchanged; the reply
    is kept encoded, so a repeat costs one version check (``svc/memo.py``)."""
    def wrap(handler: Handler) -> Handler:
        async def encoded(repo: Repository, req: Any) -> Reply:
            reply = await handler(repo, req)
            return Reply({k: orjson.Fragment(dumps(v)) for k, v in reply.fields.items()})

        @functools.wraps(handler)
        async def answer(repo: Repository, req: Any) -> Reply:
            key = key_of(req)
            if key is None:
                return await handler(repo, req)
            memo = _MEMOS.get(repo)
            if memo is None:
                memo = _MEMOS[repo] = AnswerMemo(repo.store)
            return await memo.answer(key, lambda: encoded(repo, req))

        return answer

    return wrap


def plan_json(found: Versioned) -> Doc:
    record = found.doc
    return {"id": record["id"], "vendor_id": record["vendor_id"], "name": record.get("name"),
            "description": record.get("description"), "version": found.version,
            "doc": record["doc"]}


async def summary_json(repo: Repository, account_id: str) -> Doc:
    account = await repo.existing_account(account_id)
    services = await repo.services(account_id)
    invoices = await live_invoices(repo, account, services)
    return {
        "account_id": account_id,
        "reseller_id": account["reseller_id"],
        "is_reseller": account["is_reseller"],
        "status": services["status"],
        "plans": services["plans"],
        "overrides": services["overrides"],
        "quantities": {k: services["quantities"][k] for k in ("account", "cascade", "manual")},
        "invoices": quote_json(invoices)["invoices"],
        "dirty": services["dirty"],
        "last_sync": services.get("last_sync"),
    }


def _quote_key(req: m.QuoteReq) -> Hashable | None:
    if req.quote_request is not None:  # no store reads; its merged plans are cached
        return None
    return ("quote", req.account_id, dumps(
        req.model_dump(include={"plans", "overrides", "changes"}), sort_keys=True))


@memoized(_quote_key)
async def quote(repo: Repository, req: m.QuoteReq) -> Reply:
    if req.quote_request is not None:
        request = parse_quote(req.quote_request.model_dump())
        return Reply({"Quote": quote_json(rate_quote(request))})
    account = await repo.existing_account(req.account_id)
    services = await repo.services(req.account_id)
    current = await current_state(repo, services)
    plans = current.plans
    if req.plans is not None:
        reseller = account["reseller_id"] or account["id"]
        refs = {ref.id: {"vendor_id": ref.vendor_id or reseller,
                         "overrides": ref.overrides or {}} for ref in req.plans}
        for plan_id, entry in refs.items():
            await repo.get_plan(entry["vendor_id"], plan_id)  # plan_not_found if missing
        plans = await assigned_plans(repo, refs)
    overrides = current.overrides if req.overrides is None else load_overrides(req.overrides)
    try:
        quantities = apply_changes(current.quantities, req.changes or {})
    except ValueError as error:
        raise Rejected("invalid_changes", str(error)) from None
    proposed = State(plans, overrides, quantities)
    compared = current_under_proposed(current.plans, proposed, current.quantities)
    request = QuoteRequest(proposed, compared, await default_bookkeeper(repo, account))
    return Reply({"Quote": quote_json(rate_quote(request))})


@memoized(lambda req: ("summary", req.account_id))
async def summary(repo: Repository, req: m.AccountRequest) -> Reply:
    return Reply({"Summary": await summary_json(repo, req.account_id)})


async def plan_put(repo: Repository, req: m.PlanPutReq) -> Reply:
    plan_id = req.plan.id or req.plan.doc.get("_id")
    if not isinstance(plan_id, str) or not plan_id:
        raise Rejected("plan_invalid", "the plan needs an id (Plan.id or the doc's _id)",
                       [{"path": "$.Plan.id", "rule": "required"}])
    await repo.existing_account(req.account_id)
    found = await repo.put_plan(req.account_id, plan_id, req.plan.doc, req.plan.version)
    return Reply({"Plan": plan_json(found)})


async def plan_get(repo: Repository, req: m.PlanIdRequest) -> Reply:
    return Reply({"Plan": plan_json(await repo.get_plan(req.account_id, req.plan_id))})


async def plan_delete(repo: Repository, req: m.PlanIdRequest) -> Reply:
    await repo.delete_plan(req.account_id, req.plan_id)
    return Reply({"Plan-ID": req.plan_id})


async def available_plans(repo: Repository, req: m.AccountRequest) -> Reply:
    plans = await repo.available_plans(req.account_id)
    return Reply({"Plans": [{k: p.doc.get(k) for k in ("id", "vendor_id", "name",
                                                       "description", "category")}
                            for p in plans]})


async def default_plan_set(repo: Repository, req: m.DefaultPlanSetReq) -> Reply:
    if req.account_id == await repo.master_id():
        await repo.existing_account(req.account_id)
    services = await repo.set_default_plan(req.account_id, req.plan_id)
    return Reply({"Plan-ID": services["default_plan"]})


async def default_plan_get(repo: Repository, req: m.AccountRequest) -> Reply:
    await repo.existing_account(req.account_id)
    services = await repo.services(req.account_id)
    return Reply({"Plan-ID": services.get("default_plan")})


async def bookkeeper_set(repo: Repository, req: m.BookkeeperSetReq) -> Reply:
    services = await repo.edit_services(
        req.account_id, lambda doc: {**doc, "bookkeeper": req.bookkeeper},
        audited=("bookkeeper_set", lambda doc: doc.get("bookkeeper")))
    return Reply({"Bookkeeper": services["bookkeeper"]})


async def _plan_change(repo: Repository, req: m.AssignReq | m.RemoveReq, adding: bool) -> Reply:
    if req.dry_run:
        account = await repo.existing_account(req.account_id)
        services = await repo.services(req.account_id)
        plans = dict(services["plans"])
        if adding:
            reseller = await repo.assignable_vendor(account, req.plan_id)
            plans[req.plan_id] = {"vendor_id": reseller, "overrides": req.overrides or {}}
        elif req.plan_id not in plans:
            raise Rejected("not_assigned", f"plan {req.plan_id} is not assigned")
        else:
            plans.pop(req.plan_id)
        current = await current_state(repo, services)
        proposed = State(await assigned_plans(repo, plans), current.overrides, current.quantities)
        request = QuoteRequest(proposed, current, await default_bookkeeper(repo, account))
        return Reply({"Plans": plans, "Quote": quote_json(rate_quote(request))})
    if adding:
        services = await repo.assign_plan(req.account_id, req.plan_id, req.overrides, req.merge)
    else:
        services = await repo.remove_plan(req.account_id, req.plan_id)
    return Reply({"Plans": services["plans"]})


async def assign_plan(repo: Repository, req: m.AssignReq) -> Reply:
    return await _plan_change(repo, req, adding=True)


async def remove_plan(repo: Repository, req: m.RemoveReq) -> Reply:
    return await _plan_change(repo, req, adding=False)


async def overrides_set(repo: Repository, req: m.OverridesSetReq) -> Reply:
    load_overrides(req.overrides, "$.Overrides")  # plan_invalid before anything is written
    await repo.set_overrides(req.account_id, req.overrides, req.merge)
    return Reply({"Summary": await summary_json(repo, req.account_id)})


async def manual_set(repo: Repository, req: m.ManualSetReq) -> Reply:
    await repo.set_manual(req.account_id, req.quantities, req.merge)
    return Reply({"Summary": await summary_json(repo, req.account_id)})


def _reseller_reply(account: Doc) -> Reply:
    return Reply({"Reseller-ID": account["reseller_id"], "Is-Reseller": account["is_reseller"]})


async def reseller_promote(repo: Repository, req: m.AccountRequest) -> Reply:
    return _reseller_reply(await repo.set_reseller(req.account_id, True))


async def reseller_demote(repo: Repository, req: m.AccountRequest) -> Reply:
    return _reseller_reply(await repo.set_reseller(req.account_id, False))


async def reseller_get(repo: Repository, req: m.AccountRequest) -> Reply:
    return _reseller_reply(await repo.existing_account(req.account_id))


def reconcile_handler(importer: Importer | None) -> Handler:
    """``reconcile_req``: recount from the ledger, or with ``Source: couch`` rebuild from the
    document source first (SPEC §13)."""
    async def reconcile(repo: Repository, req: m.ReconcileReq) -> Reply:
        only = None if req.account_id == "all" else req.account_id
        if req.source == "couch":
            if importer is None:
                raise Rejected("no_document_source", "Source: couch needs SVC_COUCH_URL")
            try:
                changes = (await importer.run(only=only)).changes
            except SourceUnavailable as error:
                raise Rejected("source_unavailable", str(error)) from None
            if only is not None:
                await repo.existing_account(only)  # not in CouchDB's accounts either
        elif only is None:
            changes = await repo.reconcile_all()
        else:
            changes = await repo.reconcile(only)
        listed = [c.as_json() for c in changes[:RECONCILE_ALL_LIMIT]]
        return Reply({"Changed": bool(changes), "Changes": listed,
                      "Changes-Total": len(changes)})

    return reconcile


async def standing(repo: Repository, req: m.AccountRequest) -> Reply:
    await repo.existing_account(req.account_id)
    status = (await repo.services(req.account_id))["status"]
    if status == "good_standing":
        return Reply({"Status": "good_standing"})
    return Reply({"Status": "error", "Reason": status})


def sync_handler(sync_now: Callable[[str], Awaitable[Any]]) -> Handler:
    """``sync_req``: lease the account now, sync it, answer with the results."""
    async def sync(repo: Repository, req: m.AccountRequest) -> Reply:
        outcome = await sync_now(req.account_id)
        return Reply({"Results": outcome.results, "Account-Status": outcome.status})

    return sync


def delivery_json(found: Versioned) -> Doc:
    record = found.doc
    updated = datetime.datetime.fromtimestamp(float(record["updated_at"]), tz=datetime.UTC)
    return {"id": found.key, "bookkeeper": record["bookkeeper"],
            "snapshot_seq": record["snapshot_seq"], "idempotency_key": record["idempotency_key"],
            "content": record["content"], "attempts": record["attempts"],
            "state": record["state"], "results": record["results"],
            "updated_at": updated.isoformat().replace("+00:00", "Z")}


def _page(reply_field: str, newest: list[Doc], req: m.PagedRequest) -> Reply:
    """The page of ``newest`` (each with its ``id``) that starts at ``Start-Key``, and the
    ``Next-Start-Key`` of the next one if there is one."""
    keys = [entry["id"] for entry in newest]
    if req.start_key is not None and req.start_key not in keys:
        raise Rejected("invalid", f"no entry {req.start_key} to start at",
                       [{"path": "$.Start-Key", "rule": "the id of an entry of this list"}])
    start = 0 if req.start_key is None else keys.index(req.start_key)
    end = start + req.page_size
    reply = {reply_field: newest[start:end]}
    if end < len(keys):
        reply["Next-Start-Key"] = keys[end]
    return Reply(reply)


async def deliveries(repo: Repository, req: m.DeliveriesReq) -> Reply:
    await repo.existing_account(req.account_id)
    keys = await repo.store.find_keys("deliveries", "account_id", req.account_id)
    found = (await repo.store.get_many("deliveries", keys)).values()
    newest = sorted(found, key=lambda d: (float(d.doc["updated_at"]), d.key), reverse=True)
    return _page("Deliveries", [delivery_json(d) for d in newest], req)


AUDIT_FIELDS = ("id", "account_id", "at", "who", "action", "reason", "before", "after")


async def audit_trail(repo: Repository, req: m.AuditReq) -> Reply:
    await repo.existing_account(req.account_id)
    found = await audit.entries(repo.store, req.account_id, req.since, req.until)
    return _page("Entries", [{k: entry[k] for k in AUDIT_FIELDS} for entry in found], req)


def delivery_retry_handler(sync_now: Callable[[str], Awaitable[Any]]) -> Handler:
    """``delivery_retry_req``: a failed delivery goes again by syncing its account now, which
    re-sends exactly the failed invoices of the snapshot with their records' keys."""
    async def retry(repo: Repository, req: m.DeliveryRetryReq) -> Reply:
        async def delivery() -> Versioned:
            found = await repo.store.get("deliveries", req.delivery_id)
            if found is None or found.doc["account_id"] != req.account_id:
                raise Rejected("delivery_not_found", f"no delivery {req.delivery_id}")
            return found

        if (await delivery()).doc["state"] != "failed":
            raise Rejected("conflict", f"delivery {req.delivery_id} has not failed")
        await sync_now(req.account_id)
        return Reply({"Delivery": delivery_json(await delivery())})

    return retry


HANDLERS: dict[tuple[str, str], Handler] = {
    ("quote", "quote_req"): quote,
    ("summary", "summary_req"): summary,
    ("plans", "plan_put_req"): plan_put,
    ("plans", "plan_get_req"): plan_get,
    ("plans", "plan_delete_req"): plan_delete,
    ("plans", "available_plans_req"): available_plans,
    ("plans", "default_plan_set_req"): default_plan_set,
    ("plans", "default_plan_get_req"): default_plan_get,
    ("plans", "bookkeeper_set_req"): bookkeeper_set,
    ("assign", "assign_plan_req"): assign_plan,
    ("assign", "remove_plan_req"): remove_plan,
    ("overrides", "overrides_set_req"): overrides_set,
    ("overrides", "manual_set_req"): manual_set,
    ("reseller", "reseller_promote_req"): reseller_promote,
    ("reseller", "reseller_demote_req"): reseller_demote,
    ("reseller", "reseller_get_req"): reseller_get,
    ("reconcile", "reconcile_req"): reconcile_handler(None),
    ("standing", "standing_req"): standing,
    ("sync", "deliveries_req"): deliveries,
    ("audit", "audit_req"): audit_trail,
}
