"""Shared fixtures. Broker tests talk to the real RabbitMQ, each module in a virtual host of
its own so that fixed queue names (services_shared_listener, …) never steal another run's
messages."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import pytest
from broker import rabbitmqctl, url_for
from processes import local_server

from svc.amqp.client import ServicesClient
from svc.app import Service
from svc.settings import Settings
from svc.store import Repository
from svc.store.sqlite import SQLiteStore


@pytest.fixture(scope="module")
def amqp_url() -> Iterator[str]:
    vhost = f"svc_test_{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        yield url_for(vhost)
    finally:
        rabbitmqctl("delete_vhost", vhost)


@pytest.fixture
def settings(amqp_url, tmp_path) -> Settings:
    return Settings(amqp_url=amqp_url, store_url=f"sqlite:///{tmp_path}/svc.db",
                    node="services@test", max_message_bytes=64 * 1024, delivery_limit=2,
                    http_host="127.0.0.1", http_port=0)


@pytest.fixture
def http_bookkeeper() -> Iterator[str]:
    """The webhook bookkeeper process (``sync/http_bookkeeper.py``); yields its base URL."""
    script = Path(__file__).resolve().parent / "sync" / "http_bookkeeper.py"
    with local_server(script, "s3cret,s3cret-2027") as url:
        yield url


@pytest.fixture
async def repo(tmp_path) -> AsyncIterator[Repository]:
    """The domain operations on a fresh embedded store."""
    store = SQLiteStore(tmp_path / "svc.db")
    await store.open()
    try:
        yield Repository(store)
    finally:
        await store.close()


@pytest.fixture
async def service(settings) -> AsyncIterator[Service]:
    running = Service(settings)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def client(service, amqp_url) -> AsyncIterator[ServicesClient]:
    async with ServicesClient(amqp_url) as connected:
        yield connected


@pytest.fixture
async def channel(amqp_url) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        yield await connection.channel()
    finally:
        await connection.close()


# --- CouchDB: a real CouchDB-API server (pouchdb-server, `make couch`) on loopback -----------

@pytest.fixture(scope="session")
def couch_server(tmp_path_factory):
    """One pouchdb-server for the session (tests/couchdb.py), leveldb data in a temporary
    directory. A test that needs to stop or kill its server starts a CouchServer of its own."""
    from couchdb import CouchNotInstalled, CouchServer, CouchStartError

    server = CouchServer(tmp_path_factory.mktemp("couch"))
    failure = None
    try:
        server.start()
    except (CouchNotInstalled, CouchStartError) as error:
        failure = str(error)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def couch_url(couch_server) -> str:
    """The session server's URL, started again if a test left it stopped. Each test makes
    databases of its own names."""
    if not couch_server.running:
        couch_server.start()
    return couch_server.url
