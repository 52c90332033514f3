"""RPC round trips through RabbitMQ against a bare echo RPC.

``svc serve`` and the echo server (``echo_server.py``: a plain aio-pika RPC server with the
same JSON, prefetch and reply route, which confirms each reply and acks each request on its
own, as aio-pika's documentation does; svc does neither, see ``svc.amqp.publisher.Replies``
and ``svc.amqp.acks``) run as child processes on a virtual host of their own.
One ``ServicesClient`` keeps 64 requests in flight; echo, ``summary_req`` and ``quote_req``
(by account, with a small ``Changes``) take turns, 3 rounds of 10 s each (1 s at smoke size),
and the median throughputs are compared. svc's requests go through ``ServicesClient.call``
and the echo's through the ``RpcClient.request`` it wraps (same envelope, reply queue and
publish; only the routing key differs). The client decodes every reply the same way; svc's
(2-2.5 KB of exact decimals) cost it more than the echo's copy of its small request.
Target: quote/echo and summary/echo >= 1.0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import aio_pika
from processes import SVC, child, exited

from svc.amqp.client import ServicesClient
from svc.amqp.kazoo_notices import doc_change
from svc.jsonio import dumps, loads

HERE = Path(__file__).resolve().parent
PLAN = loads((HERE / "fixtures" / "ten-item-plan.json").read_text())
IN_FLIGHT = 64
PREFETCH = 200
ROUNDS = 3
ECHO_KEY = "bench.echo.request"  # what echo_server.py binds; svc's services.*.request does not
DEVICES = {"sip_device": 5, "softphone": 1}
TARGET = 1.0


# --- child processes (tests/processes.py) ----------------------------------------------------

async def wait_for_line(process: subprocess.Popen, log: Path, line: str,
                        timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while line not in log.read_text().splitlines():
        if process.poll() is not None:
            raise AssertionError(exited(process, log))
        if time.monotonic() > deadline:
            raise AssertionError(f"no {line!r} within {timeout} s:\n{log.read_text()[-4000:]}")
        await asyncio.sleep(0.05)


# --- the client ------------------------------------------------------------------------------

async def answered(client: ServicesClient, name: str, fields: dict[str, Any],
                   timeout: float = 30) -> dict[str, Any]:
    """The first successful reply to a request repeated until there is one."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            reply = await client.call(name, fields, timeout=1)
            if reply.get("Status") == "success":
                return reply
        except TimeoutError:
            reply = None
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} {fields}: no success within {timeout} s: {reply}")
        await asyncio.sleep(0.05)


async def wait_serving(client: ServicesClient, process: subprocess.Popen, log: Path,
                       timeout: float = 30) -> None:
    """Until svc answers a request (any answer: it consumes its RPC queue)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(TimeoutError):
            await client.call("standing", {"Account-ID": "nobody"}, timeout=0.5)
            return
        if process.poll() is not None:
            raise AssertionError(exited(process, log))
        if time.monotonic() > deadline:
            raise AssertionError(f"svc does not answer within {timeout} s:\n"
                                 f"{log.read_text()[-4000:]}")


# --- seeding through the broker --------------------------------------------------------------

def notice(doc: dict[str, Any], account_id: str) -> tuple[str, bytes]:
    """A Kazoo doc_edited notice that includes its ``Doc``, as bytes ready to publish."""
    routing_key, body = doc_change(doc, account_id)
    return routing_key, dumps(body)


async def seed(url: str, client: ServicesClient) -> str:
    """A master, and under it an account with the ten-item plan assigned and a few devices;
    returns the account's id once its summary shows them."""
    master, account = uuid.uuid4().hex, uuid.uuid4().hex
    devices = [{"_id": f"{kind}{n}", "pvt_type": "device", "device_type": kind}
               for kind, count in DEVICES.items() for n in range(count)]
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(on_return_raises=True)  # unroutable: DeliveryError
        configuration = await channel.declare_exchange(
            "configuration", aio_pika.ExchangeType.TOPIC, durable=False, auto_delete=False)

        async def publish(doc: dict[str, Any], account_id: str) -> None:
            """Mandatory and confirmed: unroutable (svc's queue not declared yet) raises."""
            routing_key, body = notice(doc, account_id)
            await configuration.publish(aio_pika.Message(body, content_type="application/json"),
                                        routing_key=routing_key, mandatory=True)

        deadline = time.monotonic() + 30
        while True:  # svc answers RPCs a moment before its doc-change queue exists
            try:
                await publish({"_id": master, "pvt_type": "account", "pvt_tree": [],
                               "name": "bench master"}, master)
                break
            except aio_pika.exceptions.DeliveryError:
                assert time.monotonic() < deadline, "no services_doc_changes queue in 30 s"
                await asyncio.sleep(0.05)

        await publish({"_id": account, "pvt_type": "account", "pvt_tree": [master],
                       "name": "bench account"}, account)
        await answered(client, "reseller_get", {"Account-ID": account})
        await answered(client, "plan_put", {"Account-ID": master,
                                            "Plan": {"id": "bench", "doc": PLAN}})
        await answered(client, "assign_plan", {"Account-ID": account, "Plan-ID": "bench"})
        for device in devices:
            await publish(device, account)
    finally:
        await connection.close()

    deadline = time.monotonic() + 30
    while True:
        summary = (await client.call("summary", {"Account-ID": account}))["Summary"]
        if summary["quantities"]["account"].get("devices") == DEVICES:
            break
        assert time.monotonic() < deadline, f"devices not counted within 30 s: {summary}"
        await asyncio.sleep(0.05)
    assert list(summary["plans"]) == ["bench"] and summary["invoices"], summary
    return account


# --- measuring -------------------------------------------------------------------------------

def check_echo(reply: dict[str, Any]) -> bool:
    return reply.get("Event-Name") == "echo_req"


def check_success(reply: dict[str, Any]) -> bool:
    return reply.get("Status") == "success"


async def measure(request: tuple[Callable[..., Awaitable[dict[str, Any]]],
                                  Callable[[dict[str, Any]], bool]],
                  seconds: float) -> tuple[float, list[float]]:
    """(requests per second, latencies in seconds) with IN_FLIGHT requests always pending."""
    send, check = request
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    deadline = loop.time() + seconds

    async def worker() -> None:
        while loop.time() < deadline:
            sent = time.perf_counter()
            reply = await send(timeout=10)
            latencies.append(time.perf_counter() - sent)
            if not check(reply):
                raise AssertionError(f"unexpected reply {reply}")

    started = time.perf_counter()
    async with asyncio.timeout(seconds + 30), asyncio.TaskGroup() as workers:
        for _ in range(IN_FLIGHT):
            workers.create_task(worker())
    return len(latencies) / (time.perf_counter() - started), latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def test_rpc_throughput_against_echo(full_size, amqp_url, tmp_path):
    seconds, warm_up = (10.0, 2.0) if full_size else (1.0, 0.3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SVC_")}
    svc_env = {**env, "SVC_AMQP_URL": amqp_url, "SVC_STORE_URL": f"sqlite:///{tmp_path}/svc.db",
               "SVC_RPC_PREFETCH": str(PREFETCH), "SVC_NODE": "services@bench",
               "SVC_HTTP_HOST": "127.0.0.1", "SVC_HTTP_PORT": "0", "SVC_LOG_LEVEL": "WARNING"}
    echo_log, svc_log = tmp_path / "echo.log", tmp_path / "svc.log"
    with child([sys.executable, str(HERE / "echo_server.py"), amqp_url, str(PREFETCH)],
               env, echo_log) as echo, \
            child([str(SVC), "serve"], svc_env, svc_log) as service:
        await wait_for_line(echo, echo_log, "ready")
        async with ServicesClient(amqp_url, node="bench-client@localhost") as client:
            await wait_serving(client, service, svc_log)
            account = await seed(amqp_url, client)
            requests = {
                # ServicesClient.call is rpc.request to services.<category>.request
                "echo": (partial(client.rpc.request, "services", ECHO_KEY, "services",
                                 "echo_req", {"Account-ID": account}), check_echo),
                "summary": (partial(client.call, "summary_req", {"Account-ID": account}),
                            check_success),
                "quote": (partial(client.call, "quote_req", {
                    "Account-ID": account, "Changes": {"devices": {"sip_device": 2}}}),
                          check_success),
            }
            for request in requests.values():
                await measure(request, warm_up)
            throughput: dict[str, list[float]] = {kind: [] for kind in requests}
            latencies: dict[str, list[float]] = {kind: [] for kind in requests}
            for _ in range(ROUNDS):
                for kind, request in requests.items():
                    rate, taken = await measure(request, seconds)
                    throughput[kind].append(rate)
                    latencies[kind].extend(taken)
        for process, log in ((echo, echo_log), (service, svc_log)):
            assert process.poll() is None, exited(process, log)

    median = {kind: statistics.median(rates) for kind, rates in throughput.items()}
    figures = "; ".join(
        f"{kind} {median[kind]:,.0f} req/s (p50 {percentile(latencies[kind], 0.5) * 1e3:.1f} ms, "
        f"p99 {percentile(latencies[kind], 0.99) * 1e3:.1f} ms)" for kind in requests)
    quote_ratio = median["quote"] / median["echo"]
    summary_ratio = median["summary"] / median["echo"]
    print(f"\nrpc: {IN_FLIGHT} in flight, prefetch {PREFETCH}, median of {ROUNDS} x {seconds:g} s "
          f"interleaved: {figures}; quote/echo {quote_ratio:.2f}x, "
          f"summary/echo {summary_ratio:.2f}x")
    if full_size:
        assert quote_ratio >= TARGET, f"target: quote >= {TARGET:.1f}x echo: {quote_ratio:.2f}x"
        assert summary_ratio >= TARGET, (
            f"target: summary >= {TARGET:.1f}x echo: {summary_ratio:.2f}x")
