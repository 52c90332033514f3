"""The bookkeeper port: an invoice in, good standing / delinquent / failed out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal

from ..rating import Bookkeeper

Outcome = Literal["good_standing", "delinquent", "failed"]


@dataclass(frozen=True)
class InvoiceDelivery:
    account_id: str
    sync_id: str  # the billed-snapshot sequence this delivery would bill
    idempotency_key: str  # same account, bookkeeper, snapshot sequence and content: same key
    bookkeeper: Bookkeeper
    invoice: dict[str, Any]  # the invoice JSON: bookkeeper, items, activation, summary

    def body(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "sync_id": self.sync_id,
                "idempotency_key": self.idempotency_key,
                "bookkeeper": self.bookkeeper.as_json(), "items": self.invoice["items"],
                "activation_charges": self.invoice["activation_charges"],
                "summary": self.invoice["summary"]}


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    reason: str | None = None
    message: str | None = None


class BookkeeperAdapter(ABC):
    @abstractmethod
    async def deliver(self, delivery: InvoiceDelivery) -> Answer:
        """Never raises for the bookkeeper's own failures: they are ``failed`` answers."""
