"""Syncing one claimed account: every invoice that changed since the last successful sync
goes to its bookkeeper, once per content, with a key stable across retries.

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

Standing is per bookkeeper (``standing`` on the services document: each bookkeeper's latest
answer): the account is delinquent while any of them last declined, whatever the others say.
A declined invoice is presented again once ``recheck_s`` has passed; each presentation is a new
attempt at the bookkeeper, so its idempotency key names the presentation (a bookkeeper such as
Stripe keeps a declined answer under its key).

A bookkeeper that is no longer among the account's present bookkeepers (removed from the
reseller's setting or from the plan) is retired: what a frozen snapshot still owes it is
re-rated for the present bookkeeper, as an audited change, so billing never waits on it.
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
from ..rating.quote import QuoteRequest, rate_quote, rate_state, rate_switch
from ..store import Repository
from ..store.audit import Change
from ..store.leases import DirtyAccountClaim, SyncLeases, delivery_key

Doc = dict[str, Any]
SEVERITY = {"good_standing": 0, "delinquent": 1}
STATUS_OF = {"failed": "failed", "abandoned": "abandoned"}  # a result's status, by outcome


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
                    content: str, presentation: int = 0) -> str:
    material = f"{account_id}\n{bookkeeper.id}\n{snapshot_seq}\n{content}"
    if presentation:  # a declined invoice presented again is a new attempt
        material += f"\npresentation {presentation}"
    return hashlib.sha256(material.encode()).hexdigest()


def has_changes(invoice: Invoice) -> bool:
    return bool(invoice.activation_charges) or any(item.changes for item in invoice.items)


@dataclass(frozen=True)
class Presentation:
    """One invoice put to its bookkeeper: a snapshot's own (``number`` 0), or a declined one
    presented again (``number`` n for the n-th time)."""

    bookkeeper: Bookkeeper
    body: Doc
    seq: int
    number: int = 0

    @property
    def key(self) -> str:
        return bookkeeper_key(self.bookkeeper)


def relabelled(snapshot: Doc, present: Doc) -> Doc:
    """``snapshot`` with each plan's bookkeeper as the account's present plans name it: the
    same quantities and prices, billed to whoever bills them now."""
    now = {plan["id"]: plan["doc"].get("bookkeeper") for plan in present["plans"]}
    if all(now.get(p["id"], p["doc"].get("bookkeeper")) == p["doc"].get("bookkeeper")
           for p in snapshot["plans"]):
        return snapshot  # the same bookkeepers: kept as stored, cached loads and all
    plans = []
    for plan in snapshot["plans"]:
        if plan["id"] in now:
            doc = {k: v for k, v in plan["doc"].items() if k != "bookkeeper"}
            if now[plan["id"]] is not None:
                doc["bookkeeper"] = now[plan["id"]]
            plan = {**plan, "doc": doc, "version": None}  # no longer the stored version
        plans.append(plan)
    return {**snapshot, "plans": plans}


def rate_billing(target: State, services: Doc, bookkeeper: Doc, present: Doc, source: str
                 ) -> list[Invoice]:
    """The invoices that bill ``target`` (with ``bookkeeper`` as the default) against what was
    last billed; when the bookkeepers changed since (the reseller's setting, a plan's), the old
    ones get the removal of what they billed and the present ones no activation charge again
    for units already billed."""
    billed = services.get("billed")
    billed_bookkeeper = services.get("billed_bookkeeper") or bookkeeper
    billed_as_now = billed and relabelled(billed, present)
    if billed_as_now is billed and billed_bookkeeper == bookkeeper:
        return rate_quote(QuoteRequest(target, billed_state(services, source), bookkeeper))
    return rate_switch(target, state_of(billed, source), state_of(billed_as_now, source),
                       bookkeeper, billed_bookkeeper)


async def sync_account(repo: Repository, leases: SyncLeases,
                       adapter_for: Callable[[Bookkeeper], BookkeeperAdapter],
                       claim: DirtyAccountClaim, node: str, *, recheck_s: float = 3600,
                       now: float = 0) -> SyncOutcome:
    """``LeaseLost`` as soon as the claim's lease is gone: nothing more is sent or written.
    ``now``: the loop's clock, for the re-presentation of declines."""
    services, account_id = claim.services, claim.account_id
    account = await repo.account(account_id) or {"id": account_id, "reseller_id": None}
    present = await current_state(repo, services)
    if account.get("deleted"):  # one final invoice: nothing is used any more
        present = State(present.plans, present.overrides, Quantities())
    seq = services.get("billed_seq", 0) + 1  # the snapshot this sync would bill
    present_snapshot = snapshot_of(present)
    present_bookkeeper = await default_bookkeeper(repo, account)
    billing, frozen = services.get("billing"), True
    if billing is None or billing["seq"] != seq:  # none of this snapshot's invoices sent yet
        billing, frozen = {"seq": seq, "state": present_snapshot,
                           "bookkeeper": present_bookkeeper}, False
    source = repo.store.identity
    invoices = rate_billing(state_of(billing["state"], source) if frozen else present,
                            services, billing["bookkeeper"], present_snapshot, source)
    standing: Doc = dict(services.get("standing") or {})
    rerouted: Change | None = None
    if frozen or any(e["outcome"] == "delinquent" for e in standing.values()):
        present_books = {bookkeeper_key(i.bookkeeper)
                         for i in rate_state(present, present_bookkeeper)}
        standing = {key: entry for key, entry in standing.items() if key in present_books}
    if frozen and (retired := await _retired(leases, claim, invoices, seq, present_books)):
        billing = {"seq": seq, "state": relabelled(billing["state"], present_snapshot),
                   "bookkeeper": present_bookkeeper}
        invoices = rate_billing(state_of(billing["state"], source), services,
                                present_bookkeeper, present_snapshot, source)
        rerouted = Change(account_id, "delivery_rerouted", {
            "bookkeepers": [r["bookkeeper"] for r in retired.values()], "seq": seq},
            {"bookkeeper": present_bookkeeper, "seq": seq})
        for key, record in retired.items():  # no longer owed: never stuck
            if record.get("state"):
                await leases.record_delivery(claim, key, seq, {**record, "state": "rerouted"})
    presentations = [Presentation(i.bookkeeper, i.as_json(), seq) for i in invoices
                     if has_changes(i)]
    presentations += await _declined_again(leases, claim, standing, presentations, now)
    billing_stored = frozen and rerouted is None
    results, answered, attempts = [], [], 0
    for presentation in presentations:
        body, bookkeeper = presentation.body, presentation.bookkeeper
        key, content, pseq = presentation.key, fingerprint(body), presentation.seq
        prior = await leases.delivery(claim, key, pseq, presentation.number) or {}
        same = prior.get("content") == content
        if same and prior.get("answer"):  # delivered already: only failed invoices go again
            answer = Answer(**prior["answer"])
        else:
            attempt = prior["attempts"] + 1 if same else 1
            record = {"bookkeeper": bookkeeper.as_json(), "content": content,
                      "since": prior.get("since", now) if same else now,
                      "idempotency_key": idempotency_key(account_id, bookkeeper, pseq,
                                                         content, presentation.number),
                      "invoice": body, "attempts": attempt, "node": node}
            await leases.record_delivery(claim, key, pseq, {
                **record, "state": "sending", "answer": None,
                "results": prior.get("results", []) if same else []},
                billing=None if billing_stored else billing,
                presentation=presentation.number, audited=rerouted)
            billing_stored, rerouted = True, None
            answer = await adapter_for(bookkeeper).deliver(InvoiceDelivery(
                account_id, str(pseq), record["idempotency_key"], bookkeeper, body))
            failed = answer.outcome == "failed"
            state = "failed" if failed else "answered"
            audited = Change(account_id, "delivery", {"state": prior.get("state")} if same
                             else None, {"id": delivery_key(account_id, key, pseq,
                                                            presentation.number),
                                         "state": state, "attempts": attempt,
                                         "idempotency_key": record["idempotency_key"],
                                         "outcome": answer.outcome, "reason": answer.reason})
            await leases.record_delivery(claim, key, pseq, {
                **record, "state": state,
                "answer": None if failed else answer.__dict__,
                "results": [*(prior.get("results", []) if same else []),
                            {"attempt": attempt, **answer.__dict__, "at": gregorian_now()}]},
                BookkeeperSync(
                    account_id=account_id, bookkeeper_id=bookkeeper.id,
                    bookkeeper_type=bookkeeper.type, vendor_id=bookkeeper.vendor_id,
                    status="failed" if failed else "completed",
                    reason=answer.reason, message=answer.message,
                    items=body["items"], activation_charges=body["activation_charges"],
                    summary=body["summary"], attempt=attempt), audited,
                presentation=presentation.number)
            attempts = max(attempts, attempt)
        if answer.outcome in SEVERITY:  # answered: not failed, not abandoned by an operator
            standing[key] = {"bookkeeper": bookkeeper.as_json(), "outcome": answer.outcome,
                             "seq": pseq, "presentation": presentation.number,
                             "recheck_at": now + recheck_s}
        results.append({"bookkeeper": bookkeeper.as_json(),
                        "status": STATUS_OF.get(answer.outcome, "completed"),
                        "reason": answer.reason, "message": answer.message})
        answered.append(answer)
    synced = all(a.outcome != "failed" for a in answered)
    status = services["status"]
    if standing:  # the worst of each bookkeeper's latest answer
        status = max((entry["outcome"] for entry in standing.values()),
                     key=SEVERITY.__getitem__)
    updates: Doc = {"last_sync": {"timestamp": gregorian_now(), "results": results,
                                  "node": node, "sync_id": str(seq)}, "standing": standing}
    if synced:
        updates.update(billed=billing["state"], billed_bookkeeper=billing["bookkeeper"],
                       billed_seq=seq, status=status, billing=None)
    elif standing:
        updates.update(status=status)
    return SyncOutcome(account_id, synced, services["status"], status, results, updates,
                       attempts, caught_up=billing["state"] == present_snapshot)


async def _retired(leases: SyncLeases, claim: DirtyAccountClaim, invoices: list[Invoice],
                   seq: int, present_books: set[str]) -> dict[str, Doc]:
    """The bookkeepers a frozen snapshot still owes that are no longer the account's, with
    their delivery records (empty when none was written)."""
    retired = {}
    for invoice in invoices:
        key = bookkeeper_key(invoice.bookkeeper)
        if has_changes(invoice) and key not in present_books:
            record = await leases.delivery(claim, key, seq) or {}
            if not record.get("answer"):
                retired[key] = {"bookkeeper": invoice.bookkeeper.as_json(), **record}
    return retired


async def _declined_again(leases: SyncLeases, claim: DirtyAccountClaim, standing: Doc,
                          presentations: list[Presentation], now: float
                          ) -> list[Presentation]:
    """The declined invoices due to be presented again: those of bookkeepers that this
    sync sends nothing new (a new answer of theirs is their standing)."""
    sending = {p.key for p in presentations}
    again = []
    for key, entry in standing.items():
        if entry["outcome"] != "delinquent" or key in sending or entry["recheck_at"] > now:
            continue
        declined = await leases.delivery(claim, key, entry["seq"], entry["presentation"])
        if declined is not None:
            again.append(Presentation(Bookkeeper(**declined["bookkeeper"]), declined["invoice"],
                                      entry["seq"], entry["presentation"] + 1))
    return again
