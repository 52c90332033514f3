"""Exchanges, queues and bindings (SPEC §5, §6, §12 "Broker details"), declared on every
(re)connection: Kazoo's exchanges are not durable and vanish with a broker restart."""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

# Kazoo declares every exchange durable=false, auto_delete=false; declaring them otherwise
# fails with 406 PRECONDITION_FAILED against a Kazoo cluster (kazoo-amqp.md §2.1).
KAZOO_EXCHANGES = {
    "services": aio_pika.ExchangeType.TOPIC,
    "targeted": aio_pika.ExchangeType.DIRECT,
    "configuration": aio_pika.ExchangeType.TOPIC,
    "bookkeepers": aio_pika.ExchangeType.TOPIC,
    "notifications": aio_pika.ExchangeType.TOPIC,
}
DEAD_LETTER_EXCHANGE = "services.dlx"
DEAD_LETTER_QUEUE = "services_dead_letters"
RPC_QUEUE = "services_shared_listener"
DOC_CHANGES_QUEUE = "services_doc_changes"
RPC_BINDING = "services.*.request"
BILLABLE_TYPES = (
    "account", "user", "device", "limits", "vmbox", "faxbox", "conference", "whitelabel",
    "dedicated_ip", "number", "qubicle_queue", "service_plan",
)
# <action>.<db>.<type>.<id>; the apps_store document has no pvt_type, so it goes by its id;
# KAZOO deletes a number from the account it leaves by id, with no type (SPEC §13)
DOC_CHANGE_BINDINGS = (*(f"*.*.{t}.*" for t in BILLABLE_TYPES), "*.*.*.apps_store",
                       "doc_deleted.*.undefined.*")


async def declare_exchanges(channel: AbstractChannel) -> dict[str, AbstractExchange]:
    exchanges = {
        name: await channel.declare_exchange(name, kind, durable=False, auto_delete=False)
        for name, kind in KAZOO_EXCHANGES.items()
    }
    exchanges[DEAD_LETTER_EXCHANGE] = await channel.declare_exchange(
        DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)
    return exchanges


async def declare_dead_letters(channel: AbstractChannel) -> AbstractQueue:
    queue = await channel.declare_queue(DEAD_LETTER_QUEUE, durable=True,
                                        arguments={"x-queue-type": "quorum"})
    await queue.bind(DEAD_LETTER_EXCHANGE, routing_key="#")
    return queue


async def declare_rpc_queue(channel: AbstractChannel, delivery_limit: int) -> AbstractQueue:
    """Shared by every replica (competing consumers). A quorum queue: it lives on every node
    of a cluster, so RPC stays routable when the node svc was connected to dies (a classic
    queue would die with its node). What cannot be answered, and a request delivered
    ``delivery_limit`` times without an ack (one that keeps crashing its consumer), is
    dead-lettered rather than lost or looping."""
    queue = await channel.declare_queue(RPC_QUEUE, durable=True, arguments={
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-delivery-limit": delivery_limit,
    })
    await queue.bind("services", routing_key=RPC_BINDING)
    return queue


async def declare_doc_changes_queue(channel: AbstractChannel, delivery_limit: int
                                    ) -> AbstractQueue:
    """At-least-once: a quorum queue (replicated on the cluster's nodes), acked after the
    store write, with a delivery limit so a message that keeps failing is dead-lettered
    instead of looping."""
    queue = await channel.declare_queue(DOC_CHANGES_QUEUE, durable=True, arguments={
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-delivery-limit": delivery_limit,
    })
    for binding in DOC_CHANGE_BINDINGS:
        await queue.bind("configuration", routing_key=binding)
    return queue
