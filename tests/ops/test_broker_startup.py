"""Start-up and the broker list: ``svc serve`` with no broker answering serves HTTP from the
first second (``/healthz`` 200, ``/readyz`` 503 naming ``amqp``), keeps trying with back-off
and says so in one line, and SIGTERM stops it at once (a real process, its exit code and its
output); a malformed list is refused naming the variable, and a queue the broker holds with other
arguments stops svc saying what to do; a client takes the first broker of the list that
answers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid

import aio_pika
import aiohttp
import pytest
from broker import rabbitmqctl, url_for
from processes import SVC, child, exited, free_port
from waiting import eventually

from svc.amqp import topology
from svc.amqp.client import ServicesClient

# from the spawn: the interpreter's start and imports take most of it, seconds on a busy
# machine; the broker never answers, so whatever answers does so without one
HTTP_WITHIN_S = 10.0


async def get(port: int, path: str) -> tuple[int, dict] | None:
    try:
        async with aiohttp.ClientSession() as http, http.get(
                f"http://127.0.0.1:{port}{path}",
                timeout=aiohttp.ClientTimeout(total=1)) as answer:
            return answer.status, await answer.json()
    except (aiohttp.ClientError, TimeoutError):
        return None  # not listening yet


@pytest.mark.timeout(60)
async def test_no_broker_http_answers_at_once_and_sigterm_stops_it(tmp_path):
    port, dead_brokers = free_port(), [free_port(), free_port()]  # nothing listens there
    log = tmp_path / "svc.log"
    env = {**os.environ, "SVC_STORE_URL": f"sqlite:///{tmp_path}/s.db",
           "SVC_AMQP_URL": ",".join(f"amqp://guest:s3cret-pw@127.0.0.1:{p}/"
                                    for p in dead_brokers),
           "SVC_HTTP_HOST": "127.0.0.1", "SVC_HTTP_PORT": str(port), "SVC_LOG_FORMAT": "text",
           "SVC_LOG_LEVEL": "INFO", "SVC_DRAIN_TIMEOUT_S": "20"}
    with child([str(SVC), "serve"], env, log) as service:

        async def healthy():
            assert service.poll() is None, exited(service, log)
            return await get(port, "/healthz")
        status, _ = await eventually(healthy, timeout=HTTP_WITHIN_S)
        assert status == 200
        status, body = await get(port, "/readyz")
        assert status == 503 and "amqp" in body["down"], body

        async def said_so():
            return "broker unreachable" in log.read_text()
        await eventually(said_so, timeout=10)
        await asyncio.sleep(2)  # several rounds of the list: the line is not repeated
        assert service.poll() is None, exited(service, log)

        stopping = time.monotonic()
        service.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(service.wait, 10)
        stopped_in = time.monotonic() - stopping
    output = log.read_text()
    assert code == 0, output
    assert stopped_in < 3, f"stopped {stopped_in:.1f} s after SIGTERM\n{output}"
    assert "Traceback" not in output and "s3cret-pw" not in output, output
    unreachable = [line for line in output.splitlines() if "broker unreachable" in line]
    assert len(unreachable) == 1, output
    assert all(f"127.0.0.1:{p}" in unreachable[0] for p in dead_brokers), unreachable


@pytest.mark.timeout(30)
async def test_a_malformed_broker_list_exits_2_naming_the_variable(tmp_path):
    env = {**os.environ, "SVC_STORE_URL": f"sqlite:///{tmp_path}/s.db",
           "SVC_AMQP_URL": "amqp://guest:s3cret-pw@127.0.0.1:5672/,rabbit-2:5672"}
    result = await asyncio.to_thread(subprocess.run, [str(SVC), "serve"], env=env,
                                     capture_output=True, text=True, timeout=20)
    assert result.returncode == 2, result
    assert "SVC_AMQP_URL" in result.stderr and "entry 2" in result.stderr, result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


async def test_a_client_takes_the_first_broker_that_answers(service, amqp_url):
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    async with ServicesClient(f"{dead},{amqp_url}") as client:
        reply = await client.call("reseller_get_req", {"Account-ID": "nobody"}, timeout=5)
    assert reply["Reason"] == "account_not_found"
    with pytest.raises(ConnectionError, match="no broker answered"):
        async with ServicesClient(f"{dead},{dead}"):
            pass


@pytest.mark.timeout(60)
async def test_a_classic_rpc_queue_left_by_an_older_svc_exits_2_saying_what_to_do(tmp_path):
    vhost = f"svc_test_{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        url = url_for(vhost)
        async with await aio_pika.connect(url) as connection:  # as svc declared it before
            await (await connection.channel()).declare_queue(topology.RPC_QUEUE, durable=True)
        env = {**os.environ, "SVC_STORE_URL": f"sqlite:///{tmp_path}/s.db",
               "SVC_AMQP_URL": url, "SVC_HTTP_HOST": "127.0.0.1", "SVC_HTTP_PORT": "0",
               "SVC_LOG_FORMAT": "text"}
        result = await asyncio.to_thread(subprocess.run, [str(SVC), "serve"], env=env,
                                         capture_output=True, text=True, timeout=40)
    finally:
        rabbitmqctl("delete_vhost", vhost)
    assert result.returncode == 2, result
    assert f"rabbitmqctl delete_queue {topology.RPC_QUEUE}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
