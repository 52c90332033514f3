"""Which adapter takes a bookkeeper's invoices, and
the last result of each, which ``/readyz`` shows ("is the bookkeeper loaded and running?")."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from ..rating import Bookkeeper
from .abc import Answer, BookkeeperAdapter, InvoiceDelivery

LOCAL_TYPES = ("local", "default")


class Unconfigured(BookkeeperAdapter):
    def __init__(self, bookkeeper_id: str) -> None:
        self.bookkeeper_id = bookkeeper_id

    async def deliver(self, delivery: InvoiceDelivery) -> Answer:
        return Answer("failed", "bookkeeper_not_configured",
                      f"no SVC_BOOKKEEPERS entry with adapter http for {self.bookkeeper_id}")


Observe = Callable[[str, str], None]  # bookkeeper label, outcome


class Recording(BookkeeperAdapter):
    """Remembers each bookkeeper's last outcome and when, and counts each attempt."""

    def __init__(self, inner: BookkeeperAdapter, label: str, last: dict[str, dict[str, Any]],
                 observe: Observe | None) -> None:
        self.inner = inner
        self.label = label
        self.last = last
        self.observe = observe

    async def deliver(self, delivery: InvoiceDelivery) -> Answer:
        answer = await self.inner.deliver(delivery)
        self.last[delivery.bookkeeper.id] = {
            "type": delivery.bookkeeper.type, "outcome": answer.outcome,
            "reason": answer.reason, "at": time.time()}
        if self.observe:
            self.observe(self.label, answer.outcome)
        return answer


class BookkeeperRouter:
    def __init__(self, local: BookkeeperAdapter, http: Mapping[str, BookkeeperAdapter],
                 kazoo: BookkeeperAdapter, observe: Observe | None = None,
                 configured: Collection[str] = ()) -> None:
        self.local = local
        self.http = http
        self.kazoo = kazoo
        self.configured = frozenset(configured)  # SVC_BOOKKEEPERS ids: the only free labels
        self.observe = observe
        self.last: dict[str, dict[str, Any]] = {}

    def adapter_for(self, bookkeeper: Bookkeeper) -> BookkeeperAdapter:
        inner: BookkeeperAdapter
        if bookkeeper.type in LOCAL_TYPES:
            inner, kind = self.local, "local"
        elif bookkeeper.type == "http":
            inner, kind = self.http.get(bookkeeper.id) or Unconfigured(bookkeeper.id), "other"
        else:  # a cluster bookkeeper app answers to its own type name on the bus
            inner, kind = self.kazoo, "kazoo"
        # metric labels come from a closed set: plan documents name bookkeepers freely
        label = bookkeeper.id if bookkeeper.id in self.configured else kind
        return Recording(inner, label, self.last, self.observe)
