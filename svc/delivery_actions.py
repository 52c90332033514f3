"""What an operator does with a delivery that did not go through: retry it with its key,
re-route it to the account's present bookkeeper, or abandon it with a reason. The account is
synced at once so that its snapshot goes on, and a re-route or an abandon is an audited change
(``delivery_retry_req``, ``delivery_reroute_req``, ``delivery_abandon_req``;
``POST …/services/deliveries/{id}/retry``, ``/reroute`` and ``/abandon``)."""

from __future__ import annotations

from typing import Any

from .handlers import Handler, Rejected, delivery_of
from .invoicing import current_state, default_bookkeeper
from .models import replies as r
from .models import requests as m
from .rating import Bookkeeper
from .rating.quote import rate_state
from .store import Repository
from .store.audit import Change
from .sync.billed import owes
from .sync.loop import SyncLoop
from .sync.stuck import UNSETTLED

Doc = dict[str, Any]


async def _delivery(repo: Repository, req: m.DeliveryRetryReq) -> Doc:
    """The delivery record, if it is of the account."""
    found = await repo.store.get("deliveries", req.delivery_id)
    if found is None or found.doc["account_id"] != req.account_id:
        raise Rejected("delivery_not_found", f"no delivery {req.delivery_id}")
    return found.doc


async def _synced(sync: SyncLoop, repo: Repository, req: m.DeliveryRetryReq
                  ) -> r.DeliveryReply:
    """The account synced now; the delivery as it is after."""
    await sync.sync_now(req.account_id)
    return r.DeliveryReply(delivery=delivery_of(
        await repo.store.get("deliveries", req.delivery_id)))


async def _unsettled(repo: Repository, req: m.DeliveryRetryReq) -> Doc:
    """The delivery record, if it is of the account and still owed by its snapshot."""
    record = await _delivery(repo, req)
    services = await repo.services(req.account_id) or {}
    if record["state"] not in UNSETTLED or not (
            record["snapshot_seq"] == services.get("billed_seq", 0) + 1  # a sync in flight
            or owes(services, record)):
        raise Rejected("conflict", f"delivery {req.delivery_id} is {record['state']}: "
                                   "only a failed or unanswered delivery can be settled")
    return record


def delivery_retry_handler(sync: SyncLoop) -> Handler:
    """A failed delivery goes again by syncing its account now, which re-sends exactly the
    failed invoices of the snapshot with their records' keys."""
    async def retry(repo: Repository, req: m.DeliveryRetryReq) -> r.DeliveryReply:
        if (await _delivery(repo, req))["state"] != "failed":
            raise Rejected("conflict", f"delivery {req.delivery_id} has not failed")
        return await _synced(sync, repo, req)

    return retry


async def _present_bookkeepers(repo: Repository, account_id: str) -> set[Bookkeeper]:
    account = await repo.account(account_id) or {"id": account_id}
    services = await repo.services(account_id) or {}
    invoices = rate_state(await current_state(repo, services),
                          await default_bookkeeper(repo, account))
    return {invoice.bookkeeper for invoice in invoices}


def delivery_reroute_handler(sync: SyncLoop) -> Handler:
    """Only a bookkeeper that is no longer the account's can be re-routed (its plan or its
    reseller's setting names another now); the sync re-rates what it was owed for the present
    one. A bookkeeper that is still the account's is fixed, or its delivery abandoned."""
    async def reroute(repo: Repository, req: m.DeliveryRetryReq) -> r.DeliveryReply:
        record = await _unsettled(repo, req)
        if Bookkeeper(**record["bookkeeper"]) in await _present_bookkeepers(
                repo, req.account_id):
            raise Rejected("conflict", f"{record['bookkeeper']['id']} is still the account's "
                                       "bookkeeper: fix it, or abandon the delivery")
        return await _synced(sync, repo, req)

    return reroute


def delivery_abandon_handler(sync: SyncLoop) -> Handler:
    """The bookkeeper is never sent this invoice: its snapshot counts as billed."""
    async def abandon(repo: Repository, req: m.DeliveryAbandonReq) -> r.DeliveryReply:
        record = await _unsettled(repo, req)

        def abandoned(doc: Doc) -> Doc:
            if doc["state"] not in UNSETTLED:  # settled since it was read
                raise Rejected("conflict", f"delivery {req.delivery_id} is {doc['state']}")
            return {**doc, "state": "abandoned", "answer": {
                "outcome": "abandoned", "reason": "abandoned", "message": req.reason}}

        await sync.leases.settle_delivery(req.delivery_id, abandoned, Change(
            req.account_id, "delivery_abandoned", {"state": record["state"]},
            {"id": req.delivery_id, "state": "abandoned", "reason": req.reason}))
        return await _synced(sync, repo, req)

    return abandon


def delivery_actions(sync: SyncLoop) -> dict[tuple[str, str], Handler]:
    return {("sync", "delivery_retry_req"): delivery_retry_handler(sync),
            ("sync", "delivery_reroute_req"): delivery_reroute_handler(sync),
            ("sync", "delivery_abandon_req"): delivery_abandon_handler(sync)}
