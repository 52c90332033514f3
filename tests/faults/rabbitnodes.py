"""RabbitMQ nodes of a test's own, beside the shared broker (which is never touched): each
with its own node name, AMQP and distribution ports, data, log and config files, started from
the RabbitMQ scripts as the current user. Several nodes given the same cookie can form a
cluster (``cluster``).
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# The Debian wrappers in /usr/sbin re-run the scripts as the rabbitmq user (su), which
# cannot use a private directory of ours; the scripts themselves run as any user.
RABBITMQ_BIN = Path(os.environ.get("SVC_TEST_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))
MISSING = ("no local rabbitmq-server to run private nodes with "
           "(set SVC_TEST_RABBITMQ_BIN to its scripts' directory)")


def _script(name: str) -> str | None:
    if (RABBITMQ_BIN / name).exists():
        return str(RABBITMQ_BIN / name)
    return shutil.which(name)


def scripts() -> tuple[str, str] | None:
    """``rabbitmq-server`` and ``rabbitmqctl``, or None where RabbitMQ is not installed."""
    server, ctl = _script("rabbitmq-server"), _script("rabbitmqctl")
    return (server, ctl) if server and ctl else None


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
class RabbitNode:
    node: str
    port: int
    url: str
    env: dict[str, str]
    base: Path
    server_path: str
    ctl_path: str

    def start(self) -> None:
        subprocess.run([self.server_path, "-detached"], env=self.env, check=True,
                       capture_output=True, timeout=30)

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

    def kill9(self) -> None:
        """The node dies at once (no goodbye to its clients or its peers)."""
        pid = self.pid()
        assert pid is not None and alive(pid), f"{self.node} is not running"
        self.kill()

    def kill(self) -> None:
        pid = self.pid()
        if pid is None or not alive(pid):
            return
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while alive(pid):
            assert time.monotonic() < deadline, f"{self.node} survived SIGKILL"
            time.sleep(0.05)

    def stop(self) -> None:
        """Stopped, whatever it takes (a node that does not stop in time is killed)."""
        pid = self.pid()
        if pid is None or not alive(pid):
            return
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.ctl("stop", timeout=30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.1)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)

    def log_tail(self, lines: int = 30) -> str:
        logs = sorted((self.base / "log").glob("*.log"))
        if not logs:
            return "(no broker log)"
        return "\n".join(logs[0].read_text(errors="replace").splitlines()[-lines:])


def make_node(base: Path, name: str, cookie: str) -> RabbitNode:
    """A node's files and environment under ``base`` (not started). Nodes given the same
    ``cookie`` may talk to each other; the cookie is read from ``$HOME``."""
    found = scripts()
    assert found is not None, MISSING
    for sub in ("home", "mnesia", "log"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    port, dist_port = _free_ports(2)
    (base / "enabled_plugins").write_text("[].\n")
    (base / "rabbitmq-env.conf").write_text("")  # not the system's: it names the shared node
    (base / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{port}\n"
                                        "log.console = false\n")
    cookie_file = base / "home" / ".erlang.cookie"
    cookie_file.write_text(cookie)
    cookie_file.chmod(0o400)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("RABBITMQ_", "ERL_"))}
    env.update({
        "HOME": str(base / "home"),  # the node and rabbitmqctl read the cookie here
        "RABBITMQ_NODENAME": name,
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
    server, ctl = found
    return RabbitNode(name, port, f"amqp://guest:guest@127.0.0.1:{port}/", env, base, server,
                      ctl)


def new_cookie() -> str:
    return secrets.token_hex(20).upper()


@contextlib.contextmanager
def private_node(base: Path) -> Iterator[RabbitNode]:
    """One started node of its own; stopped at the end."""
    node = make_node(base, f"svcfault-{secrets.token_hex(4)}@localhost", new_cookie())
    try:
        node.start()
        node.await_startup()
        yield node
    finally:
        node.stop()


@contextlib.contextmanager
def cluster(base: Path, size: int = 3) -> Iterator[list[RabbitNode]]:
    """``size`` nodes in one cluster: the first is started alone, then the others side by
    side, each joining it as it boots (classic-config peer discovery: what ``join_cluster``
    does, without stopping and starting each node again). Every one is killed at the end
    (its data is thrown away: a clean stop would only take longer)."""
    cookie, tag = new_cookie(), secrets.token_hex(3)
    nodes = [make_node(base / f"n{n}", f"svcclu-{tag}-{n}@localhost", cookie)
             for n in range(size)]
    for node in nodes[1:]:
        with (node.base / "rabbitmq.conf").open("a") as conf:
            conf.write("cluster_formation.peer_discovery_backend = classic_config\n"
                       f"cluster_formation.classic_config.nodes.1 = {nodes[0].node}\n")
    try:
        nodes[0].start()
        nodes[0].await_startup()
        for node in nodes[1:]:
            node.start()
        for node in nodes[1:]:
            node.await_startup()
        running = nodes[0].ctl("eval", "length(rabbit_nodes:all_running()).").strip()
        assert running == str(size), f"{running} of {size} nodes running in the cluster"
        yield nodes
    finally:
        for node in nodes:
            node.kill()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return True
