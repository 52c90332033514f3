"""A cluster bookkeeper app over AMQP: ``update_req`` on the ``bookkeepers`` exchange
(docs/amqp-api.md); ``success`` → good standing, ``error`` → delinquent with its reason,
anything else or no answer → failed."""

from __future__ import annotations

from ..amqp.client import RpcClient
from .abc import Answer, BookkeeperAdapter, InvoiceDelivery


class KazooBookkeeper(BookkeeperAdapter):
    def __init__(self, rpc: RpcClient, timeout_s: float) -> None:
        self.rpc = rpc
        self.timeout_s = timeout_s

    async def deliver(self, delivery: InvoiceDelivery) -> Answer:
        bookkeeper = delivery.bookkeeper
        try:
            reply = await self.rpc.request(
                "bookkeepers", "bookkeepers.update.request", "bookkeepers", "update_req", {
                    "Account-ID": delivery.account_id, "Bookkeeper-ID": bookkeeper.id,
                    "Bookkeeper-Type": bookkeeper.type, "Vendor-ID": bookkeeper.vendor_id,
                    "Invoice": {**delivery.invoice, "idempotency_key": delivery.idempotency_key},
                }, self.timeout_s)
        except TimeoutError:
            return Answer("failed", "timeout", f"no update_resp within {self.timeout_s} s")
        status = reply.get("Status")
        if status == "success":
            return Answer("good_standing")
        if status == "error":
            return Answer("delinquent", reply.get("Reason") or "bookkeeper_rejection",
                          reply.get("Message"))
        return Answer("failed", reply.get("Reason") or f"status {status!r}",
                      reply.get("Message"))
