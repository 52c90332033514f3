"""A CouchDB-API server of each test's own (tests stop it), and the suite's settings and
service with it as the document source."""

from __future__ import annotations

import aio_pika
import pytest
from couchdb import CouchServer

from svc.settings import Settings


@pytest.fixture
async def couch(tmp_path):
    server = CouchServer(tmp_path / "couch")
    await server.astart()
    try:
        yield server
    finally:
        await server.astop()


@pytest.fixture
def settings(settings, couch) -> Settings:
    return Settings(**{**dict(settings), "couch_url": couch.url})


@pytest.fixture
async def publisher(amqp_url):
    connection = await aio_pika.connect(amqp_url)
    try:
        yield await connection.channel(publisher_confirms=True)
    finally:
        await connection.close()
