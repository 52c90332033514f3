"""Standing per bookkeeper, declines presented again, retired bookkeepers re-routed.
Real SQLite store, real sync loop, bookkeepers that charge each idempotency key once."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from svc.bookkeepers.abc import Answer, BookkeeperAdapter, InvoiceDelivery, Outcome
from svc.bookkeepers.local import LocalBookkeeper
from svc.bookkeepers.router import BookkeeperRouter
from svc.handlers import bookkeeper_set
from svc.models.requests import BookkeeperSetReq
from svc.store import AccountFields, DocChange, Repository
from svc.sync.billed import owing
from svc.sync.loop import SyncLoop

MASTER, ACCOUNT = "m" * 32, "a" * 32


class Books(BookkeeperAdapter):
    """Answers ``outcome``; keeps every call, and charges each idempotency key once."""

    def __init__(self, outcome: Outcome = "good_standing") -> None:
        self.outcome: Outcome = outcome
        self.calls: list[InvoiceDelivery] = []
        self.charged: set[str] = set()

    async def deliver(self, delivery: InvoiceDelivery) -> Answer:
        self.calls.append(delivery)
        if self.outcome == "failed":
            return Answer("failed", "unreachable", "the bookkeeper is down")
        if self.outcome == "good_standing":
            self.charged.add(delivery.idempotency_key)
        return Answer(self.outcome, None if self.outcome == "good_standing" else "declined")


async def account_with(repo: Repository, plans: dict[str, dict[str, Any]]) -> None:
    await repo.apply_doc_change(DocChange(MASTER, MASTER, "account", 1,
                                          account=AccountFields((), False)))
    await repo.apply_doc_change(DocChange(ACCOUNT, ACCOUNT, "account", 1,
                                          account=AccountFields((MASTER,), False)))
    for plan_id, plan in plans.items():
        await repo.put_plan(MASTER, plan_id, plan)
        await repo.assign_plan(ACCOUNT, plan_id)
    await use(repo, "devices", "sip_device", 2)


async def use(repo: Repository, category: str, item: str, count: int, rev: int = 1) -> None:
    await repo.apply_doc_changes([DocChange(ACCOUNT, f"{category}{n}", category[:-1], rev,
                                            counts={category: {item: 1}})
                                  for n in range(count)])


def sync_loop(repo: Repository, adapter_for: Any, recheck_s: float = 3600) -> SyncLoop:
    return SyncLoop(repo, adapter_for, owner="test", batch=10, lease_s=60,
                    retry_base_s=0.01, retry_max_s=0.01, delinquent_recheck_s=recheck_s)


def billed_by(bookkeeper: str, category: str) -> dict[str, Any]:
    return {"bookkeeper": {"id": bookkeeper, "type": "test"},
            "plan": {category: {"_all": {"rate": 1, "activation_charge": 3}}}}


async def test_a_declined_invoice_is_presented_again_at_the_recheck(repo):
    books = Books("delinquent")
    await account_with(repo, {"plan": billed_by("books", "devices")})
    loop = sync_loop(repo, lambda _: books, recheck_s=0)  # due again at once

    assert (await loop.sync_now(ACCOUNT)).status == "delinquent"
    books.outcome = "good_standing"  # the card was updated
    again = await loop.sync_now(ACCOUNT)

    assert again.status == "good_standing"
    first, second = books.calls
    assert second.invoice == first.invoice  # the declined charges, as declined
    assert second.idempotency_key != first.idempotency_key  # a new presentation
    assert second.invoice["summary"]["today"] == 6  # the two activation charges


async def test_another_bookkeepers_success_does_not_clear_a_decline(repo):
    books = {"devices_books": Books("delinquent"), "users_books": Books()}
    await account_with(repo, {"devices_plan": billed_by("devices_books", "devices"),
                              "users_plan": billed_by("users_books", "users")})
    loop = sync_loop(repo, lambda bookkeeper: books[bookkeeper.id])
    assert (await loop.sync_now(ACCOUNT)).status == "delinquent"

    await use(repo, "users", "user", 1)  # only the users' bookkeeper's invoice changes
    later = await loop.sync_now(ACCOUNT)

    assert [r["bookkeeper"]["id"] for r in later.results] == ["users_books"]
    assert later.status == "delinquent"
    assert (await repo.services(ACCOUNT))["status"] == "delinquent"


async def test_a_retired_bookkeeper_no_longer_stops_billing(repo):
    """The reseller's webhook bookkeeper is down when a snapshot freezes; the operator
    retires it (SVC_BOOKKEEPERS without it, the reseller back to local): what it was owed is
    billed to the local bookkeeper, once, and the account is clean again."""
    await account_with(repo, {"plan": {"plan": {"devices": {"_all": {
        "rate": 1, "activation_charge": 3}}}}})
    await repo.edit_services(MASTER, lambda doc: {**doc, "bookkeeper": {
        "id": "webhook", "type": "http"}})
    local = LocalBookkeeper(repo)
    down = Books("failed")
    before = sync_loop(repo, BookkeeperRouter(local, {"webhook": down}, local,
                                              configured=["webhook"]).adapter_for)
    assert not (await before.sync_now(ACCOUNT)).synced

    await repo.edit_services(MASTER, lambda doc: {**doc, "bookkeeper": {
        "id": "local", "type": "local"}})
    after = sync_loop(repo, BookkeeperRouter(local, {}, local).adapter_for)
    outcome = await after.sync_now(ACCOUNT)

    assert outcome.synced and outcome.status == "good_standing"
    assert [r["bookkeeper"]["type"] for r in outcome.results] == ["local"]
    for _ in range(3):  # what moved meanwhile (nothing here) is the next snapshot's
        if not (await repo.services(ACCOUNT))["dirty"]:
            break
        assert not (await after.sync_now(ACCOUNT)).results
    assert not (await repo.services(ACCOUNT))["dirty"]
    ledger = [found.doc async for found in repo.store.scan("book_ledger")]
    assert [entry["invoice"]["summary"]["today"] for entry in ledger] == [Decimal(6)]
    actions = [entry.doc["action"] async for entry in repo.store.scan("audit")]
    assert "delivery_rerouted" in actions


async def test_a_bookkeeper_switch_sends_the_old_one_the_removal_and_no_activation_again(repo):
    """The reseller moves its clients from books A to books B (``bookkeeper_set_req``): the
    account is billed anew without a change of its own; A is sent the removal of what it
    billed, B the same items with no activation charge for units already billed."""
    books = {"books_a": Books(), "books_b": Books()}
    await account_with(repo, {"plan": {"plan": {"devices": {"_all": {
        "rate": 1, "activation_charge": 3}}}}})
    await repo.edit_services(MASTER, lambda doc: {**doc, "bookkeeper": {
        "id": "books_a", "type": "books_a"}})
    loop = sync_loop(repo, lambda bookkeeper: books[bookkeeper.id])
    await loop.tick()
    [first] = books["books_a"].calls
    assert first.invoice["summary"] == {"today": 6, "recurring": 2}

    await bookkeeper_set(repo, BookkeeperSetReq.model_validate({
        "App-Name": "ops", "App-Version": "1", "Event-Category": "plans",
        "Event-Name": "bookkeeper_set_req", "Msg-ID": "1", "Account-ID": MASTER,
        "Bookkeeper": {"id": "books_b", "type": "books_b"}}))
    await loop.tick()

    [_, removal] = books["books_a"].calls
    assert removal.invoice["summary"]["recurring"] == 0
    assert [i["changes"]["type"] for i in removal.invoice["items"]] == ["removed"]
    [moved] = books["books_b"].calls
    assert moved.invoice["summary"] == {"today": 0, "recurring": 2}
    assert [i["quantity"] for i in moved.invoice["items"]] == [2]
    assert not (await repo.services(ACCOUNT))["dirty"]


async def test_a_broken_bookkeeper_holds_up_none_of_the_others(repo):
    """SPEC §18: the devices' bookkeeper is down; the users' bookkeeper goes on being billed
    every change. The invoice the broken one owes waits for it, goes again unchanged with its
    key once its back-off has passed, and then it is billed what moved meanwhile: every unit's
    activation charge once, at each bookkeeper."""
    books = {"devices_books": Books("failed"), "users_books": Books()}
    await account_with(repo, {"devices_plan": billed_by("devices_books", "devices"),
                              "users_plan": billed_by("users_books", "users")})
    await use(repo, "users", "user", 1)
    skew = [0.0]
    loop = SyncLoop(repo, lambda bookkeeper: books[bookkeeper.id], owner="test", batch=10,
                    lease_s=60, retry_base_s=600, retry_max_s=600, delinquent_recheck_s=3600,
                    clock=lambda: time.time() + skew[0])
    await loop.tick()
    [owed] = books["devices_books"].calls

    for more in range(2, 4):  # both bookkeepers' items move; only the working one is billed
        await use(repo, "users", "user", more)
        await use(repo, "devices", "sip_device", more + 1)
        await loop.tick()
    assert len(books["devices_books"].calls) == 1  # its back-off has not passed
    assert [c.invoice["summary"]["today"] for c in books["users_books"].calls] == [3, 3, 3]
    assert owing(await repo.services(ACCOUNT))  # the devices' invoice, still

    books["devices_books"].outcome = "good_standing"
    skew[0] = 601  # the back-off has passed
    await loop.tick()  # the owed invoice
    await loop.tick()  # what moved since

    again, caught_up = books["devices_books"].calls[1:]
    assert (again.invoice, again.idempotency_key) == (owed.invoice, owed.idempotency_key)
    assert owed.invoice["summary"] == {"today": 6, "recurring": 2}
    assert caught_up.invoice["summary"] == {"today": 6, "recurring": 4}  # 2 units more
    assert len(books["users_books"].calls) == 3  # nothing new for it
    services = await repo.services(ACCOUNT)
    assert not services["dirty"] and not services["behind"]
    charged = [c for c in books["devices_books"].calls if c.idempotency_key
               in books["devices_books"].charged]
    assert sum(c.invoice["summary"]["today"] for c in
               {c.idempotency_key: c for c in charged}.values()) == 12  # 4 units × 3


async def test_a_bookkeeper_retired_while_behind_leaves_its_arrears_to_the_present_one(repo):
    """The webhook billed two devices, then went down: the third device's invoice failed and
    a fourth came. The operator retires it (the reseller back to local): the local bookkeeper
    is billed the two devices the webhook never billed, once, and every device after."""
    await account_with(repo, {"plan": {"plan": {"devices": {"_all": {
        "rate": 1, "activation_charge": 3}}}}})
    await repo.edit_services(MASTER, lambda doc: {**doc, "bookkeeper": {
        "id": "webhook", "type": "http"}})
    local, webhook = LocalBookkeeper(repo), Books()
    before = sync_loop(repo, BookkeeperRouter(local, {"webhook": webhook}, local,
                                              configured=["webhook"]).adapter_for)
    assert (await before.sync_now(ACCOUNT)).synced
    webhook.outcome = "failed"
    for devices in (3, 4):
        await use(repo, "devices", "sip_device", devices)
        await before.sync_now(ACCOUNT)
    assert [c.invoice["summary"]["today"] for c in webhook.calls] == [6, 3, 3]  # one retried

    await repo.edit_services(MASTER, lambda doc: {**doc, "bookkeeper": {
        "id": "local", "type": "local"}})
    after = sync_loop(repo, BookkeeperRouter(local, {}, local).adapter_for)
    await after.sync_now(ACCOUNT)
    await use(repo, "devices", "sip_device", 5)
    await after.sync_now(ACCOUNT)

    ledger = [found.doc async for found in repo.store.scan("book_ledger")]
    assert sorted(entry["invoice"]["summary"]["today"] for entry in ledger) == [3, 6]
    assert sorted(entry["invoice"]["summary"]["recurring"] for entry in ledger) == [4, 5]
    services = await repo.services(ACCOUNT)
    assert not services["behind"] and not services["dirty"]
    owed = [found.doc for found in (await repo.store.get_many(
        "deliveries", await repo.store.find_keys("deliveries", "account_id", ACCOUNT))).values()
        if found.doc["bookkeeper"]["id"] == "webhook" and found.doc["state"] != "answered"]
    assert [record["state"] for record in owed] == ["rerouted"]
    actions = [entry.doc["action"] async for entry in repo.store.scan("audit")]
    assert "delivery_rerouted" in actions


async def test_a_bookkeeper_behind_is_not_sent_what_came_and_went_while_it_was_down(repo):
    """A device is added while the devices' bookkeeper is down, and removed before it has
    caught up: once it answered its owed invoice it has billed what the account has; it is
    sent nothing more (not the removal of a device it never billed)."""
    books = {"devices_books": Books("failed"), "users_books": Books()}
    await account_with(repo, {"devices_plan": billed_by("devices_books", "devices"),
                              "users_plan": billed_by("users_books", "users")})
    loop = sync_loop(repo, lambda bookkeeper: books[bookkeeper.id])
    await loop.tick()  # owed: the two devices
    await use(repo, "devices", "sip_device", 3)
    books["devices_books"].outcome = "good_standing"
    await loop.sync_now(ACCOUNT)  # the owed invoice answered; the third device not yet billed
    assert (await repo.services(ACCOUNT))["behind"]
    await repo.apply_doc_changes([DocChange(ACCOUNT, "devices2", "device", 2, True)])
    for _ in range(2):
        await loop.tick()

    owed, again = books["devices_books"].calls
    assert again.idempotency_key == owed.idempotency_key
    assert not (await repo.services(ACCOUNT))["behind"]
