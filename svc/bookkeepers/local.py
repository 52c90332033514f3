"""The local bookkeeper: the invoice goes to a ledger in the store; always good standing."""

from __future__ import annotations

from ..store import Repository
from .abc import Answer, BookkeeperAdapter, InvoiceDelivery


class LocalBookkeeper(BookkeeperAdapter):
    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    async def deliver(self, delivery: InvoiceDelivery) -> Answer:
        # keyed by the idempotency key: a retried invoice is written once
        await self.repo.append_book_ledger(delivery.account_id, delivery.idempotency_key,
                                           delivery.body())
        return Answer("good_standing")
