"""Real child processes for tests: ``svc serve`` and helpers, never outliving the test."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SVC = Path(sys.executable).with_name("svc")  # .venv/bin/svc next to .venv/bin/python


def _die_with_parent() -> None:
    """Children get SIGTERM should this process die without cleaning up (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def child(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A child process, output to ``log``; SIGTERM at the end, SIGKILL after 10 s."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@contextlib.contextmanager
def local_server(script: Path, *args: str) -> Iterator[str]:
    """A test server script on a free port, which prints ``ready`` once it listens; yields
    its base URL."""
    port = free_port()
    process = subprocess.Popen([sys.executable, str(script), str(port), *args],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "ready"
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(timeout=10)


def exited(process: subprocess.Popen, log: Path) -> str:
    return f"{process.args[0]} exited with {process.returncode}:\n{log.read_text()[-4000:]}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
