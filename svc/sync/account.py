"""Syncing one claimed account: every invoice that changed since the last successful sync
goes to its bookkeeper, once per content, with a key stable across retries (SPEC §12, §14).

The snapshot to bill next has a sequence number (one more than the last billed). Before each
call a delivery record is written under the claim's lease: the idempotency key comes from
(account, bookkeeper, snapshot sequence, content), never from a claim, so whatever fails after
the bookkeeper answered (this process, the lease, the event, the record) the retry, here or on
another replica, carries the same key; an answered delivery is not sent again.

Once the first of its invoices is sent, a snapshot is frozen (``billing`` on the services
document, written with that first record): every retry bills the same state, so a bookkeeper
that answered is not sent the same activation charges again under another content when the
quantities move before the others answer, and one that failed gets the same content and key.
What moved is billed by the next snapshot.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..amqp.envelope import gregorian_now
from ..bookkeepers.abc import Answer, BookkeeperAdapter, InvoiceDelivery
from ..invoicing import billed_state, current_state, default_bookkeeper, snapshot_of, state_of
from ..jsonio import fingerprint
from ..models.events import BookkeeperSync
from ..rating import Bookkeeper, Invoice, Quantities, State
from ..rating.quote import QuoteRequest, rate_quote
from ..store import Repository
from ..store.audit import Change
from ..store.leases import DirtyAccountClaim, SyncLeases, delivery_key

Doc = dict[str, Any]
SEVERITY = {"good_standing": 0, "delinquent": 1}


@dataclass(frozen=True)
class SyncOutcome:
    account_id: str
    synced: bool  # every changed invoice was answered (good standing or delinquent)
    previous_status: str
    status: str
    results: list[Doc]
    updates: Doc  # what to store on the services document when the lease is released
    attempts: int  # how many times the failed content has been tried, for the back-off
    caught_up: bool  # what was billed is the present state: nothing left for a next snapshot


def bookkeeper_key(bookkeeper: Bookkeeper) -> str:
    return f"{bookkeeper.id}|{bookkeeper.type}|{bookkeeper.vendor_id}"


def idempotency_key(account_id: str, bookkeeper: Bookkeeper, snapshot_seq: int,
                    content: str) -> str:
    material = f"{account_id}\n{bookkeeper.id}\n{snapshot_seq}\n{content}".encode()
    return hashlib.sha256(material).hexdigest()


def has_changes(invoice: Invoice) -> bool:
    return bool(invoice.activation_charges) or any(item.changes for item in invoice.items)


async def sync_account(repo: Repository, leases: SyncLeases,
                       adapter_for: Callable[[Bookkeeper], BookkeeperAdapter],
                       claim: DirtyAccountClaim, node: str) -> SyncOutcome:
    """``LeaseLost`` as soon as the claim's lease is gone: nothing more is sent or written."""
    services, account_id = claim.services, claim.account_id
    account = await repo.account(account_id) or {"id": account_id, "reseller_id": None}
    present = await current_state(repo, services)
    if account.get("deleted"):  # one final invoice: nothing is used any more
        present = State(present.plans, present.overrides, Quantities())
    seq = services.get("billed_seq", 0) + 1  # the snapshot this sync would bill
    present_snapshot = snapshot_of(present)
    billing, frozen = services.get("billing"), True
    if billing is None or billing["seq"] != seq:  # none of this snapshot's invoices sent yet
        billing, frozen = {"seq": seq, "state": present_snapshot,
                           "bookkeeper": await default_bookkeeper(repo, account)}, False
    source = repo.store.identity
    invoices = rate_quote(QuoteRequest(
        state_of(billing["state"], source) if frozen else present,
        billed_state(services, source), billing["bookkeeper"]))
    billing_stored = frozen
    results, answered, attempts = [], [], 0
    for invoice in invoices:
        if not has_changes(invoice):
            continue
        body = invoice.as_json()
        key, content = bookkeeper_key(invoice.bookkeeper), fingerprint(body)
        prior = await leases.delivery(claim, key, seq) or {}
        same = prior.get("content") == content
        if same and prior.get("answer"):  # delivered already: only failed invoices go again
            answer = Answer(**prior["answer"])
        else:
            attempt = prior["attempts"] + 1 if same else 1
            record = {"bookkeeper": invoice.bookkeeper.as_json(), "content": content,
                      "idempotency_key": idempotency_key(account_id, invoice.bookkeeper,
                                                         seq, content),
                      "invoice": body, "attempts": attempt, "node": node}
            await leases.record_delivery(claim, key, seq, {
                **record, "state": "sending", "answer": None,
                "results": prior.get("results", []) if same else []},
                billing=None if billing_stored else billing)
            billing_stored = True
            answer = await adapter_for(invoice.bookkeeper).deliver(InvoiceDelivery(
                account_id, str(seq), record["idempotency_key"], invoice.bookkeeper, body))
            failed = answer.outcome == "failed"
            state = "failed" if failed else "answered"
            audited = Change(account_id, "delivery", {"state": prior.get("state")} if same
                             else None, {"id": delivery_key(account_id, key, seq),
                                         "state": state, "attempts": attempt,
                                         "idempotency_key": record["idempotency_key"],
                                         "outcome": answer.outcome, "reason": answer.reason})
            await leases.record_delivery(claim, key, seq, {
                **record, "state": state,
                "answer": None if failed else answer.__dict__,
                "results": [*(prior.get("results", []) if same else []),
                            {"attempt": attempt, **answer.__dict__, "at": gregorian_now()}]},
                BookkeeperSync(
                    account_id=account_id, bookkeeper_id=invoice.bookkeeper.id,
                    bookkeeper_type=invoice.bookkeeper.type,
                    vendor_id=invoice.bookkeeper.vendor_id,
                    status="failed" if failed else "completed",
                    reason=answer.reason, message=answer.message,
                    items=body["items"], activation_charges=body["activation_charges"],
                    summary=body["summary"], attempt=attempt), audited)
            attempts = max(attempts, attempt)
        results.append({"bookkeeper": invoice.bookkeeper.as_json(),
                        "status": "failed" if answer.outcome == "failed" else "completed",
                        "reason": answer.reason, "message": answer.message})
        answered.append(answer)
    synced = all(a.outcome != "failed" for a in answered)
    status = services["status"]
    if synced and answered:  # an account's status is the worst of its invoices (SPEC §12)
        status = max((a.outcome for a in answered), key=SEVERITY.__getitem__)
    updates: Doc = {"last_sync": {"timestamp": gregorian_now(), "results": results,
                                  "node": node, "sync_id": str(seq)}}
    if synced:
        updates.update(billed=billing["state"], billed_seq=seq, status=status, billing=None)
    return SyncOutcome(account_id, synced, services["status"], status, results, updates,
                       attempts, caught_up=billing["state"] == present_snapshot)
