"""Sync tests: the real broker (a virtual host per module), real child processes."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def http_bookkeeper() -> Iterator[str]:
    """The webhook bookkeeper process; yields its base URL."""
    port = free_port()
    child = subprocess.Popen([sys.executable, str(HERE / "http_bookkeeper.py"), str(port),
                              "s3cret,s3cret-2027"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        yield f"http://127.0.0.1:{port}"
    finally:
        child.kill()
        child.wait(timeout=10)
