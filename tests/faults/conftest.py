"""Fixtures of the fault tests: a private RabbitMQ node, and ``svc serve`` processes that are
always reaped.

The broker-restart test stops and starts its broker, so it gets a node of its own (own node
name, ports, data and log directories, cookie, no plugins) instead of the node that other
runs share: ``rabbitmqctl stop_app`` there would break them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from faultkit import SvcProcess

# The Debian wrappers in /usr/sbin re-run the scripts as the rabbitmq user (su), which
# cannot use a private directory of ours; the scripts themselves run as any user.
RABBITMQ_BIN = Path(os.environ.get("SVC_TEST_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))


def _script(name: str) -> str | None:
    if (RABBITMQ_BIN / name).exists():
        return str(RABBITMQ_BIN / name)
    return shutil.which(name)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class PrivateBroker:
    node: str
    port: int
    url: str
    env: dict[str, str]
    base: Path
    ctl_path: str

    def ctl(self, *args: str, timeout: float = 60) -> str:
        result = subprocess.run([self.ctl_path, "-n", self.node, *args], env=self.env,
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: exit {result.returncode}: "
                               f"{result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def await_startup(self, timeout: float = 90) -> None:
        """Bounded: ``await_startup`` fails at once while the node is not registered yet."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.ctl("await_startup", "--timeout", "30", timeout=40)
                return
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                if time.monotonic() > deadline:
                    raise AssertionError(f"RabbitMQ node {self.node} not up within {timeout} s:"
                                         f" {error}\n{self.log_tail()}") from None
                time.sleep(0.3)

    def pid(self) -> int | None:
        try:
            return int((self.base / "node.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def log_tail(self, lines: int = 30) -> str:
        logs = sorted((self.base / "log").glob("*.log"))
        if not logs:
            return "(no broker log)"
        return "\n".join(logs[0].read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def private_broker(tmp_path_factory) -> Iterator[PrivateBroker]:
    server, ctl = _script("rabbitmq-server"), _script("rabbitmqctl")
    if server is None or ctl is None:
        pytest.skip("no local rabbitmq-server to run a private node with "
                    "(set SVC_TEST_RABBITMQ_BIN to its scripts' directory)")
    base = tmp_path_factory.mktemp("rabbit")
    for sub in ("home", "mnesia", "log"):
        (base / sub).mkdir()
    port, dist_port = _free_ports(2)
    node = f"svcfault-{secrets.token_hex(4)}@localhost"
    (base / "enabled_plugins").write_text("[].\n")
    (base / "rabbitmq-env.conf").write_text("")  # not the system's: it names the shared node
    (base / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{port}\n"
                                        "log.console = false\n")
    cookie = base / "home" / ".erlang.cookie"
    cookie.write_text(secrets.token_hex(20).upper())
    cookie.chmod(0o400)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("RABBITMQ_", "ERL_"))}
    env.update({
        "HOME": str(base / "home"),  # the node and rabbitmqctl read the cookie here
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_PID_FILE": str(base / "node.pid"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
    })
    broker = PrivateBroker(node, port, f"amqp://guest:guest@127.0.0.1:{port}/", env, base, ctl)
    subprocess.run([server, "-detached"], env=env, check=True, capture_output=True, timeout=30)
    try:
        broker.await_startup()
        yield broker
    finally:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            broker.ctl("stop", timeout=60)
        pid = broker.pid()
        if pid is not None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return True


@pytest.fixture
def svc_processes() -> Iterator[Callable[..., SvcProcess]]:
    """``svc_processes(amqp_url, db, log, node, **settings)`` → a (not yet started)
    ``SvcProcess``; every one is killed at teardown if still running."""
    made: list[SvcProcess] = []

    def make(*args, **kwargs) -> SvcProcess:
        made.append(SvcProcess(*args, **kwargs))
        return made[-1]

    yield make
    for process in made:
        process.reap()
