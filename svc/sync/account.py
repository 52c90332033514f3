"""Syncing one claimed account: every invoice that changed since what its bookkeeper billed
goes to it, once per content, with a key stable across retries.

The snapshot to bill next has a sequence number (one more than the last billed). Before each
call a delivery record is written under the claim's lease: the idempotency key comes from
(account, bookkeeper, snapshot sequence, content), never from a claim, so whatever fails after
the bookkeeper answered (this process, the lease, the event, the record) the retry, here or on
another replica, carries the same key; an answered delivery is not sent again.

Once the first of its invoices is sent, a snapshot is frozen (``billing`` on the services
document, written with that first record) until the sync ends: a sync redone after a crash or
a lost lease bills the same state, so a bookkeeper that answered is not sent the same charges
again under another content. When the sync ends the snapshot is the account's billed state,
whatever the bookkeepers answered.

A bookkeeper whose invoice failed falls behind (``behind`` on the services document): it keeps
what it has billed and the invoice it owes, which goes again, unchanged and with its key, once
its back-off has passed; nothing newer goes to it before that one is answered; then it is
billed from what it billed up to the account's state. The account's other bookkeepers are
billed meanwhile as if nothing were wrong. Each bookkeeper is sent at most one invoice a sync.

Standing is per bookkeeper (``standing`` on the services document: each bookkeeper's latest
answer): the account is delinquent while any of them last declined, whatever the others say.
A declined invoice is presented again once ``recheck_s`` has passed; each presentation is a new
attempt at the bookkeeper, so its idempotency key names the presentation (a bookkeeper such as
Stripe keeps a declined answer under its key).

A bookkeeper that is behind and no longer among the account's present bookkeepers (removed
from the reseller's setting or from the plan) is retired: the invoice it owes is re-routed, and
its items, from what it billed to what the account has billed, are billed to the account's
present bookkeeper as an audited change, so billing never waits on it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..bookkeepers.abc import Answer, BookkeeperAdapter, InvoiceDelivery
from ..invoicing import current_state, default_bookkeeper, snapshot_of, state_of
from ..jsonio import fingerprint
from ..models.events import BookkeeperSync
from ..models.fields import gregorian_now
from ..rating import Bookkeeper, Quantities, State
from ..rating.quote import rate_state
from ..store import Repository
from ..store.audit import Change
from ..store.leases import DirtyAccountClaim, SyncLeases, delivery_key
from .billed import (
    arrears,
    billed_of,
    bookkeeper_key,
    default_of,
    has_changes,
    invoice_of,
    rate_billing,
    relabelled,
)

Doc = dict[str, Any]
SEVERITY = {"good_standing": 0, "delinquent": 1}
STATUS_OF = {"failed": "failed", "abandoned": "abandoned"}  # a result's status, by outcome


@dataclass(frozen=True)
class SyncOutcome:
    account_id: str
    synced: bool  # no invoice failed in this sync
    previous_status: str
    status: str
    results: list[Doc]
    updates: Doc  # what to store on the services document when the lease is released
    caught_up: bool  # what was billed is the present state: nothing left for a next sync
    due_again_at: float | None  # a failed invoice's retry or a decline's re-check


def idempotency_key(account_id: str, bookkeeper: Bookkeeper, snapshot_seq: int,
                    content: str, presentation: int = 0) -> str:
    material = f"{account_id}\n{bookkeeper.id}\n{snapshot_seq}\n{content}"
    if presentation:  # a declined invoice presented again is a new attempt
        material += f"\npresentation {presentation}"
    return hashlib.sha256(material.encode()).hexdigest()


@dataclass(frozen=True)
class Presentation:
    """One invoice put to its bookkeeper: a snapshot's own (``number`` 0), or a declined one
    presented again (``number`` n for the n-th time). ``before``: what the bookkeeper has
    billed; ``after``: what it has billed once this is answered."""

    bookkeeper: Bookkeeper
    body: Doc
    seq: int
    before: Doc
    after: Doc
    number: int = 0

    @property
    def key(self) -> str:
        return bookkeeper_key(self.bookkeeper)


@dataclass
class _Plan:
    """What one sync sends, and what it changes on the ``behind`` entries."""

    behind: Doc
    presentations: list[Presentation] = field(default_factory=list)
    rerouted: Change | None = None

    def sends_to(self, key: str) -> bool:
        return any(p.key == key for p in self.presentations)


async def sync_account(repo: Repository, leases: SyncLeases,
                       adapter_for: Callable[[Bookkeeper], BookkeeperAdapter],
                       claim: DirtyAccountClaim, node: str, *, recheck_s: float = 3600,
                       now: float = 0, retry_delay: Callable[[int], float] = lambda _: 0.0,
                       retry_owed: bool = True) -> SyncOutcome:
    """``LeaseLost`` as soon as the claim's lease is gone: nothing more is sent or written.
    ``now``: the loop's clock, for re-presentations and retries; ``retry_delay``: the back-off
    of an invoice after its n-th failed attempt; ``retry_owed``: whether failed invoices go
    again before their back-off has passed (a sync an operator asked for)."""
    services, account_id = claim.services, claim.account_id
    account = await repo.account(account_id) or {"id": account_id, "reseller_id": None}
    present = await current_state(repo, services)
    if account.get("deleted"):  # one final invoice: nothing is used any more
        present = State(present.plans, present.overrides, Quantities())
    seq = services.get("billed_seq", 0) + 1  # the snapshot this sync bills
    present_snapshot = snapshot_of(present)
    present_bookkeeper = await default_bookkeeper(repo, account)
    billing, frozen = services.get("billing"), True
    if billing is None or billing["seq"] != seq:  # none of this snapshot's invoices sent yet
        billing, frozen = {"seq": seq, "state": present_snapshot,
                           "bookkeeper": present_bookkeeper}, False
    source = repo.store.identity
    target = state_of(billing["state"], source) if frozen else present
    account_billed = billed_of(services.get("billed"), services.get("billed_bookkeeper"))
    target_billed = billed_of(billing["state"], billing["bookkeeper"])
    standing: Doc = dict(services.get("standing") or {})
    plan = _Plan(dict(services.get("behind") or {}))
    present_books: set[str] = set()
    if frozen or plan.behind or any(e["outcome"] == "delinquent" for e in standing.values()):
        present_books = {bookkeeper_key(i.bookkeeper)
                         for i in rate_state(present, present_bookkeeper)}
        standing = {key: entry for key, entry in standing.items() if key in present_books}
    base, behind = account_billed, set(plan.behind)  # billed on their own, this sync
    retired = [key for key in plan.behind if key not in present_books]
    if retired:
        base = await _retire(leases, claim, plan, retired[0], account_billed, present_snapshot,
                             present_bookkeeper, seq, source)
    for key, entry in list(plan.behind.items()):
        if key in retired or plan.sends_to(key):
            continue
        owed = entry.get("owed")
        if owed is None:  # billed from what it billed, up to the target
            invoice = invoice_of(rate_billing(target, entry["billed"], billing["bookkeeper"],
                                              present_snapshot, source), key)
            if invoice is None or not has_changes(invoice):
                del plan.behind[key]  # nothing it has not billed
            else:
                plan.presentations.append(Presentation(
                    invoice.bookkeeper, invoice.as_json(), seq, entry["billed"], target_billed))
        elif retry_owed or owed["retry_at"] <= now:  # the invoice it owes, unchanged
            record = await leases.delivery(claim, key, owed["seq"], owed["presentation"])
            assert record is not None  # written before the call that failed
            plan.presentations.append(Presentation(
                Bookkeeper(**entry["bookkeeper"]), record["invoice"], owed["seq"],
                entry["billed"], owed["billed"], owed["presentation"]))
    plan.presentations += [
        Presentation(i.bookkeeper, i.as_json(), seq, base, target_billed)
        for i in rate_billing(target, base, billing["bookkeeper"], present_snapshot, source)
        if has_changes(i) and bookkeeper_key(i.bookkeeper) not in behind | set(plan.behind)]
    plan.presentations += await _declined_again(leases, claim, standing, plan, account_billed,
                                                now)
    billing_stored, rerouted = frozen, plan.rerouted
    results, failures = [], []
    for presentation in plan.presentations:
        body, bookkeeper = presentation.body, presentation.bookkeeper
        key, content, pseq = presentation.key, fingerprint(body), presentation.seq
        prior = await leases.delivery(claim, key, pseq, presentation.number) or {}
        same = prior.get("content") == content
        if same and prior.get("answer"):  # delivered already: only failed invoices go again
            answer, attempt = Answer(**prior["answer"]), prior["attempts"]
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
        if answer.outcome == "failed":
            failures.append(presentation)
            plan.behind[key] = {"bookkeeper": bookkeeper.as_json(), "billed": presentation.before,
                                "owed": {"seq": pseq, "presentation": presentation.number,
                                         "billed": presentation.after,
                                         "retry_at": now + retry_delay(attempt)}}
        elif key in plan.behind:  # it has billed what it owed
            plan.behind[key] = {"bookkeeper": bookkeeper.as_json(),
                                "billed": presentation.after}
            if presentation.after == target_billed:
                del plan.behind[key]
        if answer.outcome in SEVERITY:  # answered: not failed, not abandoned by an operator
            standing[key] = {"bookkeeper": bookkeeper.as_json(), "outcome": answer.outcome,
                             "seq": pseq, "presentation": presentation.number,
                             "recheck_at": now + recheck_s}
        results.append({"bookkeeper": bookkeeper.as_json(),
                        "status": STATUS_OF.get(answer.outcome, "completed"),
                        "reason": answer.reason, "message": answer.message})
    status = services["status"]
    if standing:  # the worst of each bookkeeper's latest answer
        status = max((entry["outcome"] for entry in standing.values()),
                     key=SEVERITY.__getitem__)
    due = [entry["owed"]["retry_at"] for entry in plan.behind.values() if "owed" in entry]
    if status == "delinquent":
        due.append(now + recheck_s)
    return SyncOutcome(
        account_id, not failures, services["status"], status, results, {
            "last_sync": {"timestamp": gregorian_now(), "results": results, "node": node,
                          "sync_id": str(seq)},
            "standing": standing, "behind": plan.behind, "billed": billing["state"],
            "billed_bookkeeper": billing["bookkeeper"], "billed_seq": seq, "status": status,
            "billing": None},
        caught_up=billing["state"] == present_snapshot and all(
            "owed" in entry for entry in plan.behind.values()),
        due_again_at=min(due, default=None))


async def _retire(leases: SyncLeases, claim: DirtyAccountClaim, plan: _Plan, key: str,
                  account_billed: Doc, present_snapshot: Doc, present_bookkeeper: Doc,
                  seq: int, source: str) -> Doc:
    """A bookkeeper behind that is no longer the account's: the invoice it owes is re-routed,
    and its arrears go to the account's present bookkeeper, which from then on is billed
    against the account's billed state under the present bookkeepers (returned). Waits while
    the present bookkeeper is behind itself."""
    taker = default_of(present_bookkeeper)
    if bookkeeper_key(taker) in plan.behind:
        return account_billed  # retired once the present bookkeeper has caught up
    entry = plan.behind.pop(key)
    owed, its_billed = entry.get("owed"), entry["billed"]
    rerouted = Change(claim.account_id, "delivery_rerouted", {
        "bookkeepers": [entry["bookkeeper"]], "seq": owed["seq"] if owed else None},
        {"bookkeeper": present_bookkeeper, "seq": seq})
    record = owed and await leases.delivery(claim, key, owed["seq"], owed["presentation"])
    if record and record.get("answer"):  # answered (or abandoned) after all
        its_billed = owed["billed"]
    elif record and record["state"] != "rerouted":  # not yet: a sync redone re-routes once
        await leases.record_delivery(claim, key, owed["seq"], {**record, "state": "rerouted"},
                                     audited=rerouted, presentation=owed["presentation"])
        rerouted = None
    base = billed_of(account_billed["state"] and relabelled(account_billed["state"],
                                                             present_snapshot),
                     present_bookkeeper)
    owed_now = arrears(Bookkeeper(**entry["bookkeeper"]), its_billed, account_billed, taker,
                       source)
    if owed_now is not None and has_changes(owed_now):
        plan.behind[bookkeeper_key(taker)] = {"bookkeeper": taker.as_json(), "billed": base}
        plan.presentations.append(Presentation(taker, owed_now.as_json(), seq, base, base))
        plan.rerouted = rerouted
    return base


async def _declined_again(leases: SyncLeases, claim: DirtyAccountClaim, standing: Doc,
                          plan: _Plan, account_billed: Doc, now: float) -> list[Presentation]:
    """The declined invoices due to be presented again: those of bookkeepers that this
    sync sends nothing new (a new answer of theirs is their standing) and that owe nothing."""
    again = []
    for key, entry in standing.items():
        if entry["outcome"] != "delinquent" or plan.sends_to(key) or key in plan.behind \
                or entry["recheck_at"] > now:
            continue
        declined = await leases.delivery(claim, key, entry["seq"], entry["presentation"])
        if declined is not None:
            again.append(Presentation(Bookkeeper(**declined["bookkeeper"]), declined["invoice"],
                                      entry["seq"], account_billed, account_billed,
                                      entry["presentation"] + 1))
    return again
