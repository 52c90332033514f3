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


@pytest.fixture
async def repo(tmp_path):
    store = SQLiteStore(tmp_path / "memo.db")
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
