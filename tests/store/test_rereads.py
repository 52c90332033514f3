"""The pending re-reads of documents a lagging CouchDB replica had at an older revision, on
each adapter: one record per account and document at the newest revision announced, claimed
by one replica at a time with back-off, removed once written at that revision or a newer one."""

from __future__ import annotations

from svc.ingest.notices import Notice
from svc.ingest.rereads import PendingRereads, recorded_notice


def notice(rev: int | None, doc_id: str = "d1") -> Notice:
    return Notice("a1", "account%2Fa1", doc_id, "device", rev, False, None)


async def record(pending: PendingRereads, rev: int, doc_id: str = "d1") -> None:
    await pending.record(notice(rev, doc_id), b'{"ID": "%s"}' % doc_id.encode(),
                         f"doc_edited.db.device.{doc_id}")


async def test_one_record_per_document_at_the_newest_revision_announced(store, clock):
    pending = PendingRereads(store, first_s=5, max_s=60, clock=clock)
    await record(pending, 2)
    await record(pending, 3)
    await record(pending, 2)  # a late notice of an older revision
    assert await pending.count() == 1
    clock.now += 5
    [claimed] = await pending.claim_due()
    assert recorded_notice(claimed) == notice(3)
    assert claimed.doc["routing_key"] == "doc_edited.db.device.d1"


async def test_due_records_are_claimed_once_and_read_again_with_back_off(store, clock):
    pending = PendingRereads(store, first_s=5, max_s=12, clock=clock)
    other_replica = PendingRereads(store, first_s=5, max_s=12, clock=clock)
    await record(pending, 2)
    assert await pending.claim_due() == []  # not due before first_s
    clock.now += 5
    assert len(await pending.claim_due()) == 1
    assert await other_replica.claim_due() == []  # moved to its next re-read
    clock.now += 9.9
    assert await pending.claim_due() == []  # 10 s after the first re-read
    clock.now += 0.1
    assert len(await other_replica.claim_due()) == 1
    clock.now += 12  # capped at max_s
    [claimed] = await pending.claim_due()
    assert claimed.doc["attempts"] == 3


async def test_a_release_removes_the_record_unless_a_newer_notice_replaced_it(store, clock):
    pending = PendingRereads(store, clock=clock)
    await record(pending, 2)
    await record(pending, 2, "d2")
    clock.now += 5
    first, second = await pending.claim_due()
    await record(pending, 4, first.doc["doc_id"])  # while the re-read was under way
    await pending.release(first)
    await pending.release(second)
    clock.now += 3600
    [left] = await pending.claim_due()
    assert recorded_notice(left) == notice(4, first.doc["doc_id"])


async def test_a_written_revision_supersedes_records_of_it_and_older_ones(store, clock):
    pending = PendingRereads(store, clock=clock)
    await record(pending, 3, "d1")
    await record(pending, 3, "d2")
    await record(pending, 3, "d3")
    await pending.supersede([notice(2, "d1"), notice(3, "d2"), notice(None, "d3"),
                             notice(9, "elsewhere")])
    clock.now += 5
    assert [recorded_notice(r).doc_id for r in await pending.claim_due()] == ["d1"]


async def test_whether_any_record_may_exist_follows_the_store(store, clock):
    pending = PendingRereads(store, clock=clock)
    await pending.refresh()
    assert not pending.maybe_pending  # the consumer then skips superseding
    await PendingRereads(store, clock=clock).record(notice(2), b"{}", "k")  # another replica
    await pending.refresh()
    assert pending.maybe_pending
    await pending.supersede([notice(2)])
    assert await pending.count() == 0 and not pending.maybe_pending
    await record(pending, 3)
    assert pending.maybe_pending
