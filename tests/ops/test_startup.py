"""What an operator meets when starting svc, with real ``svc serve`` processes: a bad
setting or a taken port exits 2 at once with one line naming the variable (never a
traceback); a good start says in one line what it serves, with no secret in it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time

import pytest
from processes import SVC, child, exited, free_port
from waiting import eventually

from svc import __version__
from svc.ops.startup import broker_hosts, store_location

START_BOUND_S = 15  # an interpreter start on a busy machine; the failure itself is at once


def serve(env: dict[str, str], tmp_path) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "SVC_STORE_URL": f"sqlite:///{tmp_path}/s.db",
           "SVC_HTTP_HOST": "127.0.0.1", "SVC_HTTP_PORT": str(free_port()), **env}
    started = time.monotonic()
    result = subprocess.run([str(SVC), "serve"], env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    return result, time.monotonic() - started


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    return line


def test_a_taken_http_port_exits_2_at_once_naming_svc_http_port(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result, took = serve({"SVC_HTTP_PORT": str(port)}, tmp_path)
    assert took < START_BOUND_S
    assert one_error_line(result) == (
        f"error: SVC_HTTP_PORT: cannot listen on 127.0.0.1:{port}: Address already in use")


@pytest.mark.parametrize(("env", "line"), [
    ({"SVC_API_TOKENS": '{"ops": {"token": "s3cret"'},
     "error: SVC_API_TOKENS: not valid JSON: Expecting ',' delimiter: line 1 column 27 "
     "(char 26)"),
    ({"SVC_API_TOKENS": '{"ops": {"token": "s3cret"}}'},
     "error: SVC_API_TOKENS[ops].account_id: field required"),
    ({"SVC_BOOKKEEPERS": "{'b': 1}"},
     "error: SVC_BOOKKEEPERS: not valid JSON: Expecting property name enclosed in double "
     "quotes: line 1 column 2 (char 1)"),
    ({"SVC_BOOKKEEPERS": '{"billing": {"adapter": "http", "url": "http://b"}}'},
     "error: SVC_BOOKKEEPERS[billing]: an http bookkeeper needs a url and a secret"),
    ({"SVC_BOOKKEEPERS": '{"billing": {"adapter": "local", "timeout_s": 0}}'},
     "error: SVC_BOOKKEEPERS[billing].timeout_s: input should be greater than 0"),
    ({"SVC_STORE_URL": "postgres://db/svc"},
     "error: SVC_STORE_URL: must start with sqlite:///, mongodb:// or mongodb+srv://"),
    ({"SVC_STORE_URL": "sqlite:////proc/svc/s.db"},  # not even root creates a folder there
     "error: SVC_STORE_URL: cannot open the store: [Errno 2] No such file or directory: "
     "'/proc/svc'"),
])
def test_a_bad_setting_exits_2_with_one_line_naming_the_variable_and_field(env, line,
                                                                          tmp_path):
    result, took = serve(env, tmp_path)
    assert took < START_BOUND_S
    assert one_error_line(result) == line
    assert "s3cret" not in result.stderr


@pytest.mark.timeout(60)
async def test_the_start_up_line_says_what_svc_serves_without_secrets(amqp_url, tmp_path):
    port, log = free_port(), tmp_path / "svc.log"
    env = {**os.environ, "SVC_AMQP_URL": amqp_url, "SVC_STORE_URL": f"sqlite:///{tmp_path}/s.db",
           "SVC_HTTP_HOST": "127.0.0.1", "SVC_HTTP_PORT": str(port), "SVC_LOG_FORMAT": "json",
           "SVC_NODE": "services@startup"}
    with child([str(SVC), "serve"], env, log) as service:
        async def started():
            assert service.poll() is None, exited(service, log)
            lines = [json.loads(line) for line in log.read_text().splitlines()]
            return [line for line in lines if line.get("event") == "started"]

        [line] = await eventually(started, timeout=30)
        service.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(service.wait, 30) == 0, exited(service, log)
    [broker] = broker_hosts(amqp_url)
    assert line["message"] == (
        f"svc {__version__} serving HTTP on http://127.0.0.1:{port}, store sqlite "
        f"{tmp_path}/s.db, broker {broker}, node services@startup")
    assert (line["version"], line["brokers"], line["node"]) == (
        __version__, [broker], "services@startup")
    assert "guest" not in log.read_text()  # the broker's user and password


def test_store_and_broker_locations_name_hosts_never_credentials():
    assert store_location("mongodb://svc:pw@db1:27017,db2/billing?replicaSet=rs0") == (
        "mongodb db1:27017,db2/billing")
    assert store_location("sqlite:///./svc-data/svc.db") == "sqlite ./svc-data/svc.db"
    assert broker_hosts("amqp://u:pw@rabbit-1:5673/svc, amqps://u:pw@rabbit-2") == [
        "rabbit-1:5673/svc", "rabbit-2:5671"]
    assert broker_hosts("amqp://guest:guest@127.0.0.1:5672/") == ["127.0.0.1:5672"]


def test_version():
    result = subprocess.run([str(SVC), "--version"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert (result.returncode, result.stdout) == (0, f"svc {__version__}\n")
