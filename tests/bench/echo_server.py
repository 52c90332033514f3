"""The RPC baseline: a bare aio-pika echo server, run in a process of its own.

    python tests/bench/echo_server.py AMQP_URL [PREFETCH]

It is the RPC server aio-pika's documentation leads to, doing what svc's does around a
request and nothing in between: one robust connection and channel (publisher confirms on, as
aio-pika opens them) with the same prefetch (``SVC_RPC_PREFETCH``, default 200), a quorum
queue of its own as svc's is (``bench_echo_requests``, bound on ``services`` with
``bench.echo.request``), the body decoded and encoded with svc's own JSON (``svc.jsonio``),
the request itself published back Kazoo's way on ``targeted`` under its ``Server-ID`` (so it
keeps the ``Msg-ID``; ``mandatory``, confirmed), then ``message.ack()``, one per request.
svc does the same work and more (validation, the store, its envelope), but acks the requests
answered in one turn of the event loop in one frame, and publishes its replies without
publisher confirms (``svc.amqp.publisher.Replies`` says why). Prints ``ready`` once it
consumes; stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from svc.jsonio import dumps, loads

QUEUE = "bench_echo_requests"
ROUTING_KEY = "bench.echo.request"


async def serve(amqp_url: str, prefetch: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    connection = await aio_pika.connect_robust(
        amqp_url, client_properties={"connection_name": "bench-echo"})
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        # Kazoo's exchanges, declared exactly as svc declares them (or the broker says 406)
        await channel.declare_exchange("services", aio_pika.ExchangeType.TOPIC,
                                       durable=False, auto_delete=False)
        targeted = await channel.declare_exchange("targeted", aio_pika.ExchangeType.DIRECT,
                                                  durable=False, auto_delete=False)
        queue = await channel.declare_queue(QUEUE, durable=True,
                                            arguments={"x-queue-type": "quorum"})
        await queue.bind("services", routing_key=ROUTING_KEY)

        async def on_message(message: AbstractIncomingMessage) -> None:
            request = loads(message.body)
            server_id = request.get("Server-ID") if isinstance(request, dict) else None
            if isinstance(server_id, str) and server_id:
                await targeted.publish(
                    aio_pika.Message(dumps(request), content_type="application/json",
                                     correlation_id=message.correlation_id),
                    routing_key=server_id)
            await message.ack()

        tag = await queue.consume(on_message)
        print("ready", flush=True)
        await stop.wait()
        await queue.cancel(tag)
    finally:
        await connection.close()


def main() -> None:
    if len(sys.argv) not in (2, 3):
        sys.exit(f"usage: {sys.argv[0]} AMQP_URL [PREFETCH]")
    prefetch = int(sys.argv[2]) if len(sys.argv) == 3 else int(
        os.environ.get("SVC_RPC_PREFETCH", "200"))
    asyncio.run(serve(sys.argv[1], prefetch))


if __name__ == "__main__":
    main()
