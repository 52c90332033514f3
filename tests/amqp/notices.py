"""Publishing Kazoo-shaped document-change notices (kazoo-amqp.md §3)."""

from __future__ import annotations

import aio_pika

from svc.jsonio import dumps


def account_db(account_id: str) -> str:
    return f"account%2F{account_id[:2]}%2F{account_id[2:4]}%2F{account_id[4:]}"


def notice(doc: dict, account_id: str, rev: int | None = 1, event: str = "doc_edited",
           with_doc: bool = True) -> tuple[str, dict]:
    doc_type = doc.get("pvt_type", doc["_id"])
    database = "accounts" if doc_type == "account" else account_db(account_id)
    body = {"Event-Category": "configuration", "Event-Name": event, "App-Name": "datamgr",
            "App-Version": "4.0.0", "Msg-ID": f"n{rev}{doc['_id']}", "Node": "kz@test",
            "ID": doc["_id"], "Database": database, "Type": doc_type,
            "Account-ID": account_id, "Is-Soft-Deleted": event == "doc_deleted"}
    if rev is not None:
        body["Rev"] = f"{rev}-abc"
    if with_doc:
        body["Doc"] = doc
    return f"{event}.{database}.{doc_type}.{doc['_id']}", body


async def publish(channel: aio_pika.abc.AbstractChannel, routing_key: str, body: dict) -> None:
    exchange = await channel.declare_exchange("configuration", aio_pika.ExchangeType.TOPIC,
                                              durable=False, auto_delete=False)
    await exchange.publish(aio_pika.Message(dumps(body), content_type="application/json"),
                           routing_key=routing_key)
