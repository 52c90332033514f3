"""The contract suite runs every test against each adapter: SQLite always, MongoDB when
SVC_TEST_MONGO_URL names a replica set (GitHub Actions does; this machine has no MongoDB)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

from svc.store import DocumentStore, Repository

MONGO_URL = os.environ.get("SVC_TEST_MONGO_URL")


@pytest.fixture(params=["sqlite", "mongo"])
async def store(request, tmp_path) -> AsyncIterator[DocumentStore]:
    if request.param == "sqlite":
        from svc.store.sqlite import SQLiteStore

        adapter: DocumentStore = SQLiteStore(tmp_path / "svc.db")
    else:
        if not MONGO_URL:
            pytest.skip("MongoDB leg: set SVC_TEST_MONGO_URL (runs in GitHub Actions)")
        from svc.store.mongo import MongoStore

        adapter = MongoStore(MONGO_URL, database=f"svc_test_{uuid.uuid4().hex[:12]}")
    await adapter.open()
    try:
        yield adapter
    finally:
        if request.param == "mongo":
            await adapter._client.drop_database(adapter.database_name)  # type: ignore[attr-defined]
        await adapter.close()


@pytest.fixture
def clock():
    class Clock:
        now = 1_000_000.0

        def __call__(self) -> float:
            return self.now

    return Clock()


@pytest.fixture
async def repo(store, clock) -> Repository:
    return Repository(store, clock=clock)
