"""Building Kazoo document-change notices as a publisher that includes ``Doc`` would send
them (docs/amqp-api.md): used by ``svc demo`` and by the tests."""

from __future__ import annotations

from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel

from ..ingest.databases import account_database
from ..jsonio import dumps
from .envelope import CONTENT_TYPE, new_msg_id


def doc_change(doc: dict[str, Any], account_id: str, rev: int | None = 1,
               event: str = "doc_edited", with_doc: bool = True) -> tuple[str, dict[str, Any]]:
    """(routing key, body) of a notice; account documents come from the accounts database."""
    doc_type = doc.get("pvt_type", doc["_id"])
    database = "accounts" if doc_type == "account" else account_database(account_id)
    body: dict[str, Any] = {
        "Event-Category": "configuration", "Event-Name": event, "App-Name": "datamgr",
        "App-Version": "4.0.0", "Msg-ID": new_msg_id(), "Node": "datamgr@svc-demo",
        "ID": doc["_id"], "Database": database, "Type": doc_type, "Account-ID": account_id,
        "Is-Soft-Deleted": event == "doc_deleted"}
    if rev is not None:
        body["Rev"] = f"{rev}-{new_msg_id()[:8]}"
    if with_doc:
        body["Doc"] = doc
    return f"{event}.{database}.{doc_type}.{doc['_id']}", body


async def publish(channel: AbstractChannel, routing_key: str, body: dict[str, Any]) -> None:
    exchange = await channel.declare_exchange("configuration", aio_pika.ExchangeType.TOPIC,
                                              durable=False, auto_delete=False)
    await exchange.publish(aio_pika.Message(dumps(body), content_type=CONTENT_TYPE),
                           routing_key=routing_key)
