"""The audit trail: who changed what of an account, when and why.

Whatever changes the store ``note``s the change, and the unit of work making it writes the
entry to the ``audit`` collection in its own transaction (as the outbox does its events), so
an entry exists exactly when its change committed. Who made it is carried by a context
variable that each door sets around the work it does for a caller (``acting``): the HTTP
token, the RPC's App-Name and Node, the notice consumer, the sync loop. Document-driven
quantity changes are many and small: they are summed into one entry per account and UTC day.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import uuid
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from ..models.fields import gregorian_of, iso_of
from .abc import DocumentStore
from .records import Doc, QuantityChange

AUDIT = "audit"
QUANTITIES_DAILY = "quantities_daily"


@dataclass(frozen=True)
class Actor:
    kind: Literal["token", "amqp", "notice", "sync"]
    name: str
    reason: str | None = None  # the request's ``Reason`` / body ``"reason"``


@dataclass(frozen=True)
class Change:
    account_id: str
    action: str
    before: Any
    after: Any


def reason_of(request: BaseModel) -> str | None:
    """A request's optional ``Reason`` (any request may carry one)."""
    reason = getattr(request, "reason", None)
    return reason if isinstance(reason, str) else None


# breaks ties between entries of one moment (a coarse or fixed clock), in the order written
_sequence = itertools.count()
_actor: ContextVar[Actor | None] = ContextVar("svc_audit_actor", default=None)
_pending: ContextVar[list[Change] | None] = ContextVar("svc_audit_pending", default=None)


def current_actor() -> Actor | None:
    return _actor.get()


@contextlib.contextmanager
def acting(actor: Actor | None) -> Iterator[None]:
    """The changes made inside are ``actor``'s."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


def note(change: Change) -> None:
    """Keep ``change`` for the audit trail with the unit of work making it."""
    pending = _pending.get()
    if pending is None:
        raise RuntimeError(f"{change.action} noted outside a unit of work")
    pending.append(change)


def note_quantities(changes: Iterable[QuantityChange]) -> None:
    """Document-driven quantity changes, as units added and removed per item and account."""
    by_account: dict[str, Doc] = {}
    for change in changes:
        moved = change.current - change.previous
        item = by_account.setdefault(change.account_id, {}).setdefault(
            change.category, {}).setdefault(change.item, {"added": 0, "removed": 0})
        item["added" if moved > 0 else "removed"] += abs(moved)
    for account_id, items in by_account.items():
        note(Change(account_id, QUANTITIES_DAILY, None, items))


@contextlib.contextmanager
def collecting() -> Iterator[list[Change]]:
    """The changes noted by one attempt of a unit of work."""
    changes: list[Change] = []
    token = _pending.set(changes)
    try:
        yield changes
    finally:
        _pending.reset(token)


async def write(store: DocumentStore, changes: list[Change], now: float) -> None:
    """Inside the unit's transaction: one entry per change that changed something, in the
    order noted; a day's quantity changes add to that day's entry of the account."""
    actor = _actor.get()
    who = None if actor is None else {"kind": actor.kind, "name": actor.name}
    changed = [change for change in changes if change.before != change.after]
    for n, change in enumerate(changed):
        order = now + n * 1e-6  # entries of one unit keep their order
        entry = {"account_id": change.account_id, "at": iso_of(order), "order": order,
                 "sequence": next(_sequence),
                 "who": who, "action": change.action,
                 "reason": actor.reason if actor else None,
                 "before": change.before, "after": change.after}
        if change.action != QUANTITIES_DAILY:
            key = uuid.uuid4().hex
            await store.put(AUDIT, key, {"id": key, **entry}, 0)
            continue
        key = f"{change.account_id}|{QUANTITIES_DAILY}|{entry['at'][:10]}"
        found = await store.get(AUDIT, key)
        items = _summed(found.doc["after"] if found else {}, change.after)
        await store.put(AUDIT, key, {"id": key, **entry, "after": items},
                        found.version if found else 0)


def _summed(total: Doc, more: Doc) -> Doc:
    summed = {category: {item: dict(counts) for item, counts in items.items()}
              for category, items in total.items()}
    for category, items in more.items():
        for item, counts in items.items():
            into = summed.setdefault(category, {}).setdefault(item, {"added": 0, "removed": 0})
            into["added"] += counts["added"]
            into["removed"] += counts["removed"]
    return summed


async def entries(store: DocumentStore, account_id: str,
                  since: datetime.datetime | None = None,
                  until: datetime.datetime | None = None) -> list[Doc]:
    """The account's entries from ``since`` up to ``until``, newest first, each ``at`` in
    Gregorian seconds with its ISO 8601 form beside it (``at_iso``)."""
    keys = await store.find_keys(AUDIT, "account_id", account_id)
    found = [v.doc for v in (await store.get_many(AUDIT, keys)).values()]
    listed = [doc for doc in found
              if (since is None or since <= datetime.datetime.fromisoformat(doc["at"]))
              and (until is None or datetime.datetime.fromisoformat(doc["at"]) <= until)]
    newest = sorted(listed, key=lambda doc: (float(doc["order"]), doc["sequence"]),
                    reverse=True)
    return [_shown(doc) for doc in newest]


async def entry(store: DocumentStore, account_id: str, entry_id: str) -> Doc | None:
    """One entry of the account, by its id."""
    found = await store.get(AUDIT, entry_id)
    if found is None or found.doc["account_id"] != account_id:
        return None
    return _shown(found.doc)


def _shown(doc: Doc) -> Doc:
    """``at`` in Gregorian seconds, with its ISO 8601 form beside it (``at_iso``)."""
    return {**doc, "at": gregorian_of(float(doc["order"])), "at_iso": doc["at"]}
