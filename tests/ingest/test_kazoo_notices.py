"""KAZOO's notices as ``svc.ingest`` reads them: which databases count, deletes by
id, the revision rule against what the document source answers, and the consumer waiting on a
lagging replica, then recording the document to be read again. Every notice here is a genuine
one from ``fixtures/kazoo_wire``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from pathlib import Path

import pytest
from waiting import eventually

from svc.amqp import notices as consumer_module
from svc.amqp.notices import NoticeConsumer
from svc.ingest.notices import Ignored, Notice, read_notice
from svc.ingest.rereads import PendingRereads
from svc.ingest.resolve import Lagging, revision_rule
from svc.quantities import DEFAULT_CLASSIFIERS
from svc.sources import DocumentSource, Fetched
from svc.store import DocChange

TRAFFIC = json.loads((Path(__file__).parent.parent / "fixtures" / "kazoo_wire"
                      / "traffic.json").read_text())


def genuine(predicate) -> dict:
    return next(json.loads(record["body"]) for record in TRAFFIC
                if predicate(record["routing_key"], json.loads(record["body"])))


def test_documents_count_only_from_account_databases_and_accounts_only_from_accounts():
    for database in ("numbers%2F", "faxes"):
        copy = genuine(lambda _, body, db=database: body.get("Database", "").startswith(db)
                       and body["Event-Name"].startswith("doc_"))
        assert isinstance(read_notice(copy), Ignored)
    in_account_db = genuine(lambda _, b: b.get("Type") == "account"
                            and b["Database"].startswith("account%2F"))
    assert isinstance(read_notice(in_account_db), Ignored)
    in_accounts = read_notice(genuine(lambda _, b: b.get("Type") == "account"
                                      and b["Database"] == "accounts"))
    assert isinstance(in_accounts, Notice) and in_accounts.needs_document
    device = read_notice(genuine(lambda _, b: b.get("Type") == "device"))
    assert isinstance(device, Notice)
    assert device.account_id == device.database.replace("%2F", "")[len("account"):]
    monthly = {**genuine(lambda _, b: b.get("Type") == "device"),
               "Database": device.database + "-202611"}
    assert isinstance(read_notice(monthly), Ignored)
    assert isinstance(read_notice(genuine(lambda key, _: key.startswith("db_created"))),
                      Ignored)


def test_deletes_by_id_soft_deletes_and_the_apps_store():
    by_id = read_notice(genuine(lambda key, _: key.startswith("doc_deleted.")
                                and ".undefined." in key))
    assert isinstance(by_id, Notice)
    assert (by_id.doc_type, by_id.deleted, by_id.needs_document) == (None, True, False)
    soft = read_notice(genuine(lambda _, b: b.get("Is-Soft-Deleted") is True))
    assert isinstance(soft, Notice) and soft.deleted and soft.rev and soft.rev > 1
    store = read_notice(genuine(lambda key, _: key.endswith(".apps_store")))
    assert isinstance(store, Notice) and store.doc_type == "apps_store"


NOTICE = Notice("a1", "account%2Fa1", "d1", "device", 3, False, None)


@pytest.mark.parametrize(("fetched", "rev", "deleted"), [
    (Fetched(4, {"_id": "d1", "pvt_type": "device"}), 4, False),  # newer: at its revision
    (Fetched(3, {"_id": "d1", "pvt_type": "device"}), 3, False),
    (Fetched(None, None), 3, True),  # 404: a deletion at the notice's revision
    (Fetched(5, None), 3, True),  # _deleted
    (Fetched(4, {"_id": "d1", "pvt_type": "device", "pvt_deleted": True}), 3, True),
])
def test_the_revision_rule(fetched, rev, deleted):
    completed = revision_rule(NOTICE, fetched)
    assert isinstance(completed, Notice)
    assert (completed.rev, completed.deleted) == (rev, deleted)
    assert completed.doc == (None if deleted else fetched.doc)


def test_an_older_revision_is_a_lagging_replica():
    assert revision_rule(NOTICE, Fetched(2, {"_id": "d1"})) == Lagging(NOTICE, 2)


async def test_a_delete_by_id_takes_its_type_from_the_ledger(repo):
    counts = {"phone_numbers": {"did_us": 1}}
    await repo.apply_doc_change(DocChange("a1", "+14155550100", "number", 1, counts=counts))
    result = await repo.apply_doc_change(DocChange("a1", "+14155550100", None, 2, True))
    assert result.outcome == "applied"
    assert (await repo.services("a1"))["quantities"]["account"] == {}
    # never counted: ignored, but its tombstone stops a late create from counting it
    assert (await repo.apply_doc_change(DocChange("a1", "+1999", None, 2, True))).outcome \
        == "ignored"
    late = await repo.apply_doc_change(DocChange("a1", "+1999", "number", 1, counts=counts))
    assert late.outcome == "ignored"


class LaggingSource(DocumentSource):
    """A replica that has revision 1 of every document, whatever the notice says."""

    def __init__(self) -> None:
        self.reads = 0

    async def fetch(self, database: str, ids: Iterable[str]) -> dict[str, Fetched]:
        self.reads += 1
        return {doc_id: Fetched(1, {"_id": doc_id, "pvt_type": "device"}) for doc_id in ids}

    def pages(self, database: str, page_size: int):
        raise NotImplementedError("the consumer never pages")

    async def ping(self) -> None:
        return None


class Delivery:
    def __init__(self, body: bytes) -> None:
        self.body, self.routing_key = body, "doc_edited.x.device.d1"
        self.acked = self.requeued = False
        self.settled = asyncio.Event()

    async def ack(self) -> None:
        self.acked = True
        self.settled.set()

    async def nack(self, requeue: bool = True) -> None:
        self.requeued = requeue
        self.settled.set()


class Publisher:
    """Nothing is dead-lettered here."""


EDITED = genuine(lambda _, b: b.get("Type") == "device" and b["Event-Name"] == "doc_edited")


async def a_lagging_delivery(repo, lag_budget_s: float
                             ) -> tuple[NoticeConsumer, LaggingSource, Delivery]:
    """A consumer reading a replica that stays behind, and a delivery of a genuine notice."""
    source = LaggingSource()
    consumer = NoticeConsumer(repo, Publisher(), DEFAULT_CLASSIFIERS, source=source,
                              rereads=PendingRereads(repo.store), lag_budget_s=lag_budget_s)
    delivery = Delivery(json.dumps(EDITED).encode())
    await consumer.on_message(delivery)
    return consumer, source, delivery


async def test_a_replica_still_behind_after_the_lag_budget_gets_the_document_recorded(
        repo, monkeypatch):
    monkeypatch.setattr(consumer_module, "RETRY_BASE_S", 0.001)
    consumer, source, delivery = await a_lagging_delivery(repo, 0.05)
    await asyncio.wait_for(delivery.settled.wait(), 5)
    assert delivery.acked and not delivery.requeued  # never back to the queue
    assert source.reads > 1  # read again within the budget
    assert await consumer.rereads.count() == 1
    assert await repo.services(EDITED["Account-ID"]) is None  # nothing counted at rev 1


async def test_a_notice_inside_its_lag_budget_at_stop_is_recorded_not_handed_back(repo):
    consumer, source, delivery = await a_lagging_delivery(repo, 60)

    async def read_once():
        return source.reads >= 1

    await eventually(read_once)
    await consumer.flush()  # at stop
    assert delivery.acked and not delivery.requeued
    assert await consumer.rereads.count() == 1
