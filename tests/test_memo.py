"""Memoized summary and quote answers stay exact: any write they depend on, by whatever
path, is seen by the next request (``svc/memo.py``)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from store.changes import account_with_plan

from svc.handlers import HANDLERS
from svc.jsonio import dumps, loads
from svc.models import requests as m
from svc.store import DocChange, Repository
from svc.store.readset import recording_reads
from svc.store.sqlite import SQLiteStore

ENVELOPE = {"App-Name": "t", "App-Version": "1", "Event-Category": "services", "Msg-ID": "m"}
PLAN = {"plan": {"devices": {"_all": {"rate": 2, "activation_charge": 5}}}}


class CountingStore(SQLiteStore):
    """The embedded store, counting the version checks asked of it."""

    version_checks = 0

    async def versions(self, refs):
        self.version_checks += 1
        return await super().versions(refs)


@pytest.fixture
async def repo(tmp_path):
    store = CountingStore(tmp_path / "memo.db")
    await store.open()
    repo = Repository(store)
    await account_with_plan(repo, PLAN)
    yield repo
    await store.close()


async def summary(repo) -> dict:
    req = m.AccountRequest.model_validate({**ENVELOPE, "Event-Name": "summary_req",
                                           "Account-ID": "a"})
    reply = await HANDLERS[("summary", "summary_req")](repo, req)
    return loads(dumps(reply.wire()))["Summary"]


async def quote(repo, changes) -> dict:
    req = m.QuoteReq.model_validate({**ENVELOPE, "Event-Name": "quote_req", "Account-ID": "a",
                                     "Changes": changes})
    reply = await HANDLERS[("quote", "quote_req")](repo, req)
    return loads(dumps(reply.wire()))["Quote"]


def recurring(answer) -> Decimal:
    return sum((i["summary"]["recurring"] for i in answer["invoices"]), Decimal(0))


async def test_a_repeat_reads_no_document(repo):
    first = await summary(repo)
    with recording_reads() as reads:
        assert await summary(repo) == first
    assert reads.versions == {}


async def test_a_repeat_on_a_store_nothing_was_committed_to_checks_no_version(repo):
    first = await summary(repo)
    await summary(repo)
    await quote(repo, {"devices": {"sip_device": 1}})
    checks = repo.store.version_checks
    assert await summary(repo) == first
    await quote(repo, {"devices": {"sip_device": 1}})
    assert repo.store.version_checks == checks
    await repo.apply_doc_change(DocChange("a", "d1", "device", 1,
                                          counts={"devices": {"sip_device": 1}}))
    assert recurring(await summary(repo)) == 2  # a commit: checked, and found changed
    assert repo.store.version_checks == checks + 1


async def test_a_commit_by_another_connection_shows_in_the_next_answer(repo, tmp_path):
    """Another process on the same file (an operator's tool, a second svc by mistake)."""
    assert recurring(await summary(repo)) == 0
    other = SQLiteStore(tmp_path / "memo.db")
    await other.open()
    try:
        await Repository(other).apply_doc_change(DocChange(
            "a", "d1", "device", 1, counts={"devices": {"sip_device": 1}}))
    finally:
        await other.close()
    assert recurring(await summary(repo)) == 2


async def test_an_unrelated_commit_keeps_the_answer(repo):
    first = await summary(repo)
    await repo.store.put("unrelated", "k", {"x": 1}, 0)
    with recording_reads() as reads:
        assert await summary(repo) == first
    assert reads.versions == {}


async def test_each_kind_of_write_shows_in_the_next_answer(repo):
    assert recurring(await summary(repo)) == 0
    await repo.apply_doc_change(DocChange("a", "d1", "device", 1,
                                          counts={"devices": {"sip_device": 1}}))
    assert recurring(await summary(repo)) == 2  # the account's services document
    await repo.put_plan("m", "p", {"plan": {"devices": {"_all": {"rate": 3}}}})
    assert recurring(await summary(repo)) == 3  # the plan
    await repo.edit_services("m", lambda doc: {**doc, "bookkeeper": {"id": "books",
                                                                      "type": "http"}})
    [invoice] = (await summary(repo))["invoices"]
    assert invoice["bookkeeper"]["id"] == "books"  # the reseller's services document


async def test_quotes_are_kept_per_request(repo):
    one = await quote(repo, {"devices": {"sip_device": 1}})
    two = await quote(repo, {"devices": {"sip_device": 2}})
    assert (recurring(one), recurring(two)) == (2, 4)
    assert recurring(await quote(repo, {"devices": {"sip_device": 1}})) == 2
    await repo.apply_doc_change(DocChange("a", "d1", "device", 1,
                                          counts={"devices": {"sip_device": 1}}))
    assert recurring(await quote(repo, {"devices": {"sip_device": 1}})) == 4
