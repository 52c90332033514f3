"""Exchanges, queues and bindings, declared on every
(re)connection: Kazoo's exchanges are not durable and vanish with a broker restart."""

from __future__ import annotations

from typing import Any

import aio_pika
import aio_pika.exceptions
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

# Kazoo declares every exchange durable=false, auto_delete=false; declaring them otherwise
# fails with 406 PRECONDITION_FAILED against a Kazoo cluster (docs/amqp-api.md).
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
# KAZOO deletes a number from the account it leaves by id, with no type
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


class QueueMismatch(Exception):
    """The broker has one of svc's queues with other arguments than svc declares."""


async def _quorum_queue(channel: AbstractChannel, name: str, **arguments: Any
                        ) -> AbstractQueue:
    """svc's queues are quorum queues: replicated on a cluster's nodes, they survive the loss
    of any one of them."""
    try:
        return await channel.declare_queue(name, durable=True, arguments={
            "x-queue-type": "quorum", **arguments})
    except aio_pika.exceptions.ChannelPreconditionFailed as error:
        raise QueueMismatch(
            f"the broker refused queue {name}: {error.args[0] if error.args else error}; it "
            f"exists with other arguments (a classic queue left by an older svc, or another "
            f"SVC_DELIVERY_LIMIT): delete it (rabbitmqctl delete_queue {name}) or stop the "
            f"replicas that declare it otherwise") from None


async def declare_dead_letters(channel: AbstractChannel) -> AbstractQueue:
    queue = await _quorum_queue(channel, DEAD_LETTER_QUEUE)
    await queue.bind(DEAD_LETTER_EXCHANGE, routing_key="#")
    return queue


async def declare_rpc_queue(channel: AbstractChannel, delivery_limit: int) -> AbstractQueue:
    """Shared by every replica (competing consumers). A quorum queue: it lives on every node
    of a cluster, so RPC stays routable when the node svc was connected to dies (a classic
    queue would die with its node). What cannot be answered, and a request delivered
    ``delivery_limit`` times without an ack (one that keeps crashing its consumer), is
    dead-lettered rather than lost or looping."""
    queue = await _quorum_queue(channel, RPC_QUEUE, **{
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE, "x-delivery-limit": delivery_limit})
    await queue.bind("services", routing_key=RPC_BINDING)
    return queue


async def declare_doc_changes_queue(channel: AbstractChannel, delivery_limit: int
                                    ) -> AbstractQueue:
    """At-least-once: a quorum queue (replicated on the cluster's nodes), acked after the
    store write, with a delivery limit so a message that keeps failing is dead-lettered
    instead of looping."""
    queue = await _quorum_queue(channel, DOC_CHANGES_QUEUE, **{
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE, "x-delivery-limit": delivery_limit})
    for binding in DOC_CHANGE_BINDINGS:
        await queue.bind("configuration", routing_key=binding)
    return queue
