"""Importing a running cluster from CouchDB: ``reconcile_req`` with ``Source:
couch`` while KAZOO's notices flow, and an import stopped half-way that resumes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from kazoo_replay import EXPECTED, drained, mismatches, replay, settled, write_all

from svc.ingest.importer import Importer
from svc.quantities import DEFAULT_CLASSIFIERS
from svc.sources import DocumentSource, Fetched, SourceUnavailable
from svc.sources.couch import CouchSource


async def test_reconcile_from_couch_while_the_notices_flow(service, client, publisher, couch):
    await write_all(couch.url)
    notices = asyncio.create_task(replay(publisher, None))
    reply = await client.call("reconcile_req", {"Account-ID": "all", "Source": "couch"},
                              timeout=60)
    await notices
    assert reply["Status"] == "success", reply
    await settled(service)
    await drained(service, publisher)
    assert await mismatches(service.repo) == {}
    # what the notices and the import stored agrees with a recount of the ledger
    again = await client.call("reconcile_req", {"Account-ID": "all"}, timeout=60)
    assert (again["Status"], again["Changed"]) == ("success", False), again
    one = next(iter(EXPECTED["expected"]))
    reply = await client.call("reconcile_req", {"Account-ID": one, "Source": "couch"})
    assert (reply["Status"], reply["Changed"]) == ("success", False), reply
    missing = await client.call("reconcile_req", {"Account-ID": "f" * 32, "Source": "couch"})
    assert missing["Reason"] == "account_not_found"


class FailingAfter(DocumentSource):
    """CouchDB that goes away after ``pages`` account databases have been read."""

    def __init__(self, source: CouchSource, databases: int) -> None:
        self.source, self.left = source, databases
        self.read: list[str] = []

    async def fetch(self, database: str, ids: Iterable[str]) -> dict[str, Fetched]:
        return await self.source.fetch(database, ids)

    async def pages(self, database: str, page_size: int):
        if database != "accounts":
            if self.left == 0:
                raise SourceUnavailable("CouchDB went away")
            self.left -= 1
            self.read.append(database)
        async for page in self.source.pages(database, page_size):
            yield page

    async def ping(self) -> None:
        await self.source.ping()


async def test_an_import_stopped_half_way_resumes_with_the_accounts_not_done(repo, couch):
    await write_all(couch.url)
    source = CouchSource(couch.url)
    accounts = len(EXPECTED["accounts"])
    try:
        failing = FailingAfter(source, accounts // 2)
        try:
            await Importer(repo, failing, DEFAULT_CLASSIFIERS, concurrency=1).run()
        except SourceUnavailable:
            pass
        else:
            raise AssertionError("the import should have stopped")
        resumed = FailingAfter(source, accounts)
        report = await Importer(repo, resumed, DEFAULT_CLASSIFIERS).run()
        assert len(resumed.read) == accounts - accounts // 2
        assert not set(resumed.read) & set(failing.read)
        assert report.accounts == accounts
        assert await mismatches(repo) == {}
        fresh = FailingAfter(source, accounts)  # finished: the next run reads everything
        assert (await Importer(repo, fresh, DEFAULT_CLASSIFIERS).run()).changes == []
        assert len(fresh.read) == accounts
    finally:
        await source.close()
