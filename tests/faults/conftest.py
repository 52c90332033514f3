"""Fixtures of the fault tests: a private RabbitMQ node, and ``svc serve`` processes that are
always reaped.

The broker-restart test stops and starts its broker, so it gets a node of its own (own node
name, ports, data and log directories, cookie, no plugins) instead of the node that other
runs share: ``rabbitmqctl stop_app`` there would break them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import rabbitnodes
from faultkit import SvcProcess
from rabbitnodes import RabbitNode


@pytest.fixture
def private_broker(tmp_path_factory) -> Iterator[RabbitNode]:
    if rabbitnodes.scripts() is None:
        pytest.skip(rabbitnodes.MISSING)
    with rabbitnodes.private_node(tmp_path_factory.mktemp("rabbit")) as node:
        yield node


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
