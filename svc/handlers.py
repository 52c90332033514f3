"""What each request does, independent of the wire: a request model in, its reply model out
(``svc.models``); the events of a change are written with it
(``svc.store.outbox``). The RPC server and the HTTP API validate, dispatch here and answer."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from weakref import WeakKeyDictionary

from .audit_summary import day_summaries
from .bookkeepers.local import ledger as local_ledger
from .crossbar_filter import crossbar_filter
from .editable import editable_fields
from .invoicing import (
    apply_changes,
    assigned_plans,
    current_state,
    default_bookkeeper,
    live_invoices,
    with_plans,
)
from .jsonio import dumps
from .memo import AnswerMemo
from .models import replies as r
from .models import requests as m
from .models.documents import AuditEntry, Delivery, Plan, Summary
from .models.fields import gregorian_of, iso_of
from .rating import PlanInvalid, QuoteInvalid, State, lint_plan, load_overrides
from .rating.lint import COUNTED_CATEGORIES
from .rating.plan import key_path
from .rating.quote import QuoteRequest, current_under_proposed, parse_quote, quote_json, rate_quote
from .sources import SourceUnavailable
from .store import Repository, StoreError, Versioned, audit
from .sync.billed import owing

if TYPE_CHECKING:
    from .ingest.importer import Importer

Doc = dict[str, Any]
RECONCILE_ALL_LIMIT = 1000


@dataclass
class Rejected(Exception):
    """A domain error: the reply says ``Status: error`` with this ``Reason``."""

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


Handler = Callable[[Repository, Any], Awaitable[r.ReplyFields]]
_MEMOS: WeakKeyDictionary[Repository, AnswerMemo[r.ReplyFields]] = WeakKeyDictionary()


def memoized(key_of: Callable[[Any], Hashable | None]) -> Callable[[Handler], Handler]:
    """A read-only handler whose reply is kept while what it read is unchanged; the reply
    is kept encoded, so a repeat costs one version check (``svc/memo.py``)."""
    def wrap(handler: Handler) -> Handler:
        async def encoded(repo: Repository, req: Any) -> r.ReplyFields:
            reply = await handler(repo, req)
            reply.encode()
            return reply

        @functools.wraps(handler)
        async def answer(repo: Repository, req: Any) -> r.ReplyFields:
            key = key_of(req)
            if key is None:
                return await handler(repo, req)
            memo = _MEMOS.get(repo)
            if memo is None:
                memo = _MEMOS[repo] = AnswerMemo(repo.store)
            return await memo.answer(key, lambda: encoded(repo, req))

        return answer

    return wrap


def plan_of(found: Versioned) -> Plan:
    record = found.doc
    return Plan(id=record["id"], vendor_id=record["vendor_id"], name=record.get("name"),
                description=record.get("description"), version=found.version,
                doc=record["doc"])


async def summary_of(repo: Repository, account_id: str) -> Summary:
    account = await repo.existing_account(account_id)
    services = await repo.services(account_id)
    invoices = await live_invoices(repo, account, services)
    return Summary(
        account_id=account_id,
        reseller_id=account["reseller_id"],
        is_reseller=account["is_reseller"],
        status=services["status"],
        plans=services["plans"],
        overrides=services["overrides"],
        quantities={k: services["quantities"][k] for k in ("account", "cascade", "manual")},
        invoices=invoices,
        dirty=services["dirty"] or owing(services),
        last_sync=services.get("last_sync"),
    )


def _quote_key(req: m.QuoteReq) -> Hashable | None:
    if req.quote_request is not None:  # no store reads; its merged plans are cached
        return None
    return ("quote", req.account_id, dumps(
        req.model_dump(include={"plans", "add", "delete", "overrides", "changes"}),
        sort_keys=True))


@memoized(_quote_key)
async def quote(repo: Repository, req: m.QuoteReq) -> r.QuoteReply:
    if req.quote_request is not None:
        request = parse_quote(req.quote_request.model_dump())
        return r.QuoteReply(quote=quote_json(rate_quote(request)))
    account = await repo.existing_account(req.account_id)
    services = await repo.services(req.account_id)
    current = await current_state(repo, services)
    plans = current.plans
    if (quoted := req.quoted_plans()) is not None:
        reseller = account["reseller_id"] or account["id"]
        refs = {ref.id: {"vendor_id": ref.vendor_id or reseller,
                         "overrides": ref.overrides or {}} for ref in quoted}
        for plan_id, entry in refs.items():
            await repo.get_plan(entry["vendor_id"], plan_id)  # plan_not_found if missing
        plans = await assigned_plans(repo, refs)
    overrides = current.overrides if req.overrides is None else load_overrides(req.overrides)
    try:
        quantities = apply_changes(current.quantities, req.changes or {})
    except ValueError as error:
        raise Rejected("invalid_changes", str(error)) from None
    proposed = State(plans, overrides, quantities, current.object_plans)
    compared = current_under_proposed(current.plans, proposed, current.quantities)
    request = QuoteRequest(proposed, compared, await default_bookkeeper(repo, account))
    return r.QuoteReply(quote={"invoices": with_plans(rate_quote(request), request)})


@memoized(lambda req: ("summary", req.account_id))
async def summary(repo: Repository, req: m.AccountRequest) -> r.SummaryReply:
    return r.SummaryReply(summary=await summary_of(repo, req.account_id))


async def plan_put(repo: Repository, req: m.PlanPutReq) -> r.PlanReply:
    plan_id = req.plan.id or req.plan.doc.get("_id")
    if not isinstance(plan_id, str) or not plan_id:
        raise Rejected("plan_invalid", "the plan needs an id (Plan.id or the doc's _id)",
                       [{"path": "$.Plan.id", "rule": "required"}])
    await repo.existing_account(req.account_id)
    found = await repo.put_plan(req.account_id, plan_id, req.plan.doc, req.plan.version)
    warnings = [w.as_json() for w in lint_plan(req.plan.doc, "$.Plan.doc")]  # logged too
    return r.PlanPutReply(plan=plan_of(found), warnings=warnings or None)


async def plan_get(repo: Repository, req: m.PlanIdRequest) -> r.PlanReply:
    return r.PlanReply(plan=plan_of(await repo.get_plan(req.account_id, req.plan_id)))


async def plan_delete(repo: Repository, req: m.PlanIdRequest) -> r.PlanIdReply:
    await repo.delete_plan(req.account_id, req.plan_id)
    return r.PlanIdReply(plan_id=req.plan_id)


async def available_plans(repo: Repository, req: m.AvailablePlansReq
                          ) -> r.AvailablePlansReply:
    wanted = crossbar_filter(req.filters)
    return r.AvailablePlansReply(plans=[
        {**{k: p.doc.get(k) for k in ("id", "vendor_id", "name", "description", "category")},
         "doc": p.doc.get("doc") if req.details else None}
        for p in await repo.available_plans(req.account_id) if wanted(p.doc.get("doc") or {})])


async def default_plan_set(repo: Repository, req: m.DefaultPlanSetReq) -> r.PlanIdReply:
    if req.account_id == await repo.master_id():
        await repo.existing_account(req.account_id)
    services = await repo.set_default_plan(req.account_id, req.plan_id)
    return r.PlanIdReply(plan_id=services["default_plan"])


async def default_plan_get(repo: Repository, req: m.AccountRequest) -> r.PlanIdReply:
    await repo.existing_account(req.account_id)
    services = await repo.services(req.account_id)
    return r.PlanIdReply(plan_id=services.get("default_plan"))


async def bookkeeper_set(repo: Repository, req: m.BookkeeperSetReq) -> r.BookkeeperReply:
    services = await repo.edit_services(
        req.account_id, lambda doc: {**doc, "bookkeeper": req.bookkeeper},
        audited=("bookkeeper_set", lambda doc: doc.get("bookkeeper")))
    await repo.touch_billed_by(req.account_id)
    return r.BookkeeperReply(bookkeeper=services["bookkeeper"])


async def _refuse_plan_ids(repo: Repository, account_id: str, overrides: Doc | None) -> None:
    """Overrides are by category; a top-level key that is one of the account's plan ids
    (``{"<plan id>": {…}}``, a common slip) would be read as a category and change
    nothing, so it is refused with its path."""
    if not overrides:
        return
    account = await repo.existing_account(account_id)
    plan_ids = {*(await repo.services(account_id))["plans"], *(
        found.doc["id"] for found in await repo.list_plans(account["reseller_id"] or account_id))}
    slips = sorted(key for key in overrides if key in plan_ids and key not in COUNTED_CATEGORIES)
    if slips:
        raise Rejected("plan_invalid", "overrides are by category, not by plan id", [
            {"path": key_path("$.Overrides", key), "rule": "a plan id, not a category: overrides "
             'are {"<category>": {"<item>": {…}}}; a plan\'s own overrides go with '
             "assigning it"} for key in slips])


async def _plan_change(repo: Repository, req: m.AssignReq | m.RemoveReq,
                       adding: bool) -> r.PlanChangeReply:
    if adding:
        await _refuse_plan_ids(repo, req.account_id, req.overrides)
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
        proposed = State(await assigned_plans(repo, plans), current.overrides, current.quantities,
                         current.object_plans)
        request = QuoteRequest(proposed, current, await default_bookkeeper(repo, account))
        return r.PlanChangeReply(plans=plans, quote=quote_json(rate_quote(request)))
    if adding:
        services = await repo.assign_plan(req.account_id, req.plan_id, req.overrides, req.merge)
    else:
        services = await repo.remove_plan(req.account_id, req.plan_id)
    return r.PlanChangeReply(plans=services["plans"])


async def assign_plan(repo: Repository, req: m.AssignReq) -> r.PlanChangeReply:
    return await _plan_change(repo, req, adding=True)


async def remove_plan(repo: Repository, req: m.RemoveReq) -> r.PlanChangeReply:
    return await _plan_change(repo, req, adding=False)


async def plans_change(repo: Repository, req: m.PlansChangeReq) -> r.PlanChangeReply:
    for overrides in (req.overrides, *(plan.overrides for plan in req.additions())):
        await _refuse_plan_ids(repo, req.account_id, overrides)
    if req.overrides is not None:
        load_overrides(req.overrides, "$.Overrides")  # plan_invalid before anything is written
    services = await repo.change_plans(
        req.account_id, [(plan.id, plan.overrides) for plan in req.additions()], req.delete,
        req.overrides, req.merge)
    return r.PlanChangeReply(plans=services["plans"])


async def overrides_set(repo: Repository, req: m.OverridesSetReq) -> r.SummaryReply:
    load_overrides(req.overrides, "$.Overrides")  # plan_invalid before anything is written
    await _refuse_plan_ids(repo, req.account_id, req.overrides)
    await repo.set_overrides(req.account_id, req.overrides, req.merge)
    return r.SummaryReply(summary=await summary_of(repo, req.account_id))


async def manual_set(repo: Repository, req: m.ManualSetReq) -> r.SummaryReply:
    await repo.set_manual(req.account_id, req.quantities, req.merge)
    return r.SummaryReply(summary=await summary_of(repo, req.account_id))


def _reseller_reply(account: Doc) -> r.ResellerReply:
    return r.ResellerReply(reseller_id=account["reseller_id"],
                           is_reseller=account["is_reseller"])


async def reseller_promote(repo: Repository, req: m.AccountRequest) -> r.ResellerReply:
    return _reseller_reply(await repo.set_reseller(req.account_id, True))


async def reseller_demote(repo: Repository, req: m.AccountRequest) -> r.ResellerReply:
    return _reseller_reply(await repo.set_reseller(req.account_id, False))


async def reseller_get(repo: Repository, req: m.AccountRequest) -> r.ResellerReply:
    return _reseller_reply(await repo.existing_account(req.account_id))


def reconcile_handler(importer: Importer | None) -> Handler:
    """``reconcile_req``: recount from the ledger, or with ``Source: couch`` rebuild from the
    document source first."""
    async def reconcile(repo: Repository, req: m.ReconcileReq) -> r.ReconcileReply:
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
        return r.ReconcileReply(changed=bool(changes), changes=changes[:RECONCILE_ALL_LIMIT],
                                changes_total=len(changes))

    return reconcile


async def standing(repo: Repository, req: m.AccountRequest) -> r.StandingReply:
    await repo.existing_account(req.account_id)
    status = (await repo.services(req.account_id))["status"]
    if status == "good_standing":
        return r.StandingReply(status="good_standing")
    return r.StandingReply(status="error", reason=status)


def sync_handler(sync_now: Callable[[str], Awaitable[Any]]) -> Handler:
    """``sync_req``: lease the account now, sync it, answer with the results."""
    async def sync(repo: Repository, req: m.AccountRequest) -> r.SyncReply:
        outcome = await sync_now(req.account_id)
        return r.SyncReply(results=outcome.results, account_status=outcome.status)

    return sync


def delivery_of(found: Versioned) -> Delivery:
    record = found.doc
    updated = float(record["updated_at"])
    return Delivery(id=found.key, bookkeeper=record["bookkeeper"],
                    snapshot_seq=record["snapshot_seq"],
                    idempotency_key=record["idempotency_key"], content=record["content"],
                    invoice=record["invoice"], attempts=record["attempts"],
                    state=record["state"], results=record["results"],
                    updated_at=gregorian_of(updated), updated_at_iso=iso_of(updated))


Listed = TypeVar("Listed", Delivery, AuditEntry)


def _page(newest: list[Listed], req: m.PagedRequest) -> tuple[list[Listed], str | None]:
    """The page of ``newest`` that starts at ``Start-Key``, and the ``Next-Start-Key`` of
    the next one if there is one."""
    keys = [entry.id for entry in newest]
    if req.start_key is not None and req.start_key not in keys:
        raise Rejected("invalid", f"no entry {req.start_key} to start at",
                       [{"path": "$.Start-Key", "rule": "the id of an entry of this list"}])
    start = 0 if req.start_key is None else keys.index(req.start_key)
    end = start + req.page_size
    return newest[start:end], keys[end] if end < len(keys) else None


async def deliveries(repo: Repository, req: m.DeliveriesReq) -> r.DeliveriesReply:
    await repo.existing_account(req.account_id)
    keys = await repo.store.find_keys("deliveries", "account_id", req.account_id)
    found = (await repo.store.get_many("deliveries", keys)).values()
    newest = sorted(found, key=lambda d: (float(d.doc["updated_at"]), d.key), reverse=True)
    page, next_key = _page([delivery_of(d) for d in newest], req)
    return r.DeliveriesReply(deliveries=page, next_start_key=next_key)


async def audit_trail(repo: Repository, req: m.AuditReq) -> r.AuditReply:
    await repo.existing_account(req.account_id)
    found = await audit.entries(repo.store, req.account_id, req.since, req.until)
    page, next_key = _page([AuditEntry.model_validate(entry) for entry in found], req)
    return r.AuditReply(entries=page, next_start_key=next_key)


async def audit_entry(repo: Repository, req: m.AuditEntryReq) -> r.AuditEntryReply:
    await repo.existing_account(req.account_id)
    found = await audit.entry(repo.store, req.account_id, req.entry_id)
    if found is None:
        raise Rejected("audit_entry_not_found", f"no audit entry {req.entry_id}")
    return r.AuditEntryReply(entry=found)


def editable_handler(number_classifiers: tuple[str, ...]) -> Handler:
    async def editable(repo: Repository, req: m.EditableReq) -> r.EditableReply:
        if req.account_id is not None:
            await repo.existing_account(req.account_id)
        return r.EditableReply(fields=editable_fields(number_classifiers))

    return editable


async def audit_summary(repo: Repository, req: m.AuditSummaryReq) -> r.AuditSummaryReply:
    await repo.existing_account(req.account_id)
    keys = await repo.store.find_keys("deliveries", "account_id", req.account_id)
    records = [found.doc for found in (await repo.store.get_many("deliveries", keys)).values()]
    days = day_summaries(records, req.since and req.since.timestamp(),
                         req.until and req.until.timestamp())
    if req.item is not None:
        days = {req.item: days.get(req.item, {})}
    return r.AuditSummaryReply(days=days)


async def ledger(repo: Repository, req: m.LedgerReq) -> r.LedgerReply:
    await repo.existing_account(req.account_id)
    return r.LedgerReply(entries=await local_ledger(repo, req.account_id, req.from_, req.to))


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
    ("assign", "plans_change_req"): plans_change,
    ("overrides", "overrides_set_req"): overrides_set,
    ("overrides", "manual_set_req"): manual_set,
    ("reseller", "reseller_promote_req"): reseller_promote,
    ("reseller", "reseller_demote_req"): reseller_demote,
    ("reseller", "reseller_get_req"): reseller_get,
    ("reconcile", "reconcile_req"): reconcile_handler(None),
    ("standing", "standing_req"): standing,
    ("sync", "deliveries_req"): deliveries,
    ("audit", "audit_req"): audit_trail,
    ("audit", "audit_entry_req"): audit_entry,
    ("audit", "audit_summary_req"): audit_summary,
    ("sync", "ledger_req"): ledger,
}
