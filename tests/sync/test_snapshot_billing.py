"""A snapshot, once its first invoice went out, is billed as it was: with two
bookkeepers, one answering and one down, a change of quantities before the retry must not
send the answered one its activation charges again; the change is billed by the next
snapshot, to both. Real SQLite store, real sync loop, bookkeepers that charge each
idempotency key once, as Stripe does."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from svc.bookkeepers.abc import Answer, BookkeeperAdapter, InvoiceDelivery
from svc.store import AccountFields, DocChange, Repository
from svc.sync.loop import SyncLoop

MASTER, ACCOUNT = "m" * 32, "a" * 32
ACTIVATION = {"books_a": Decimal(5), "books_b": Decimal(7)}


def plan(bookkeeper: str) -> dict[str, Any]:
    return {"bookkeeper": {"id": bookkeeper, "type": "test"}, "plan": {"devices": {"_all": {
        "rate": 1, "activation_charge": int(ACTIVATION[bookkeeper])}}}}


class KeyedBooks(BookkeeperAdapter):
    """Charges each idempotency key once; answers ``failed`` while down."""

    def __init__(self) -> None:
        self.down = False
        self.answer_lost = False  # charges, then the answer never arrives (a timeout)
        self.charged: dict[str, dict[str, Any]] = {}
        self.calls = 0

    async def deliver(self, delivery: InvoiceDelivery) -> Answer:
        self.calls += 1
        if self.down:
            return Answer("failed", "unreachable", "the bookkeeper is down")
        self.charged.setdefault(delivery.idempotency_key, delivery.invoice)
        if self.answer_lost:
            return Answer("failed", "timeout", "no answer in time")
        return Answer("good_standing")

    def activation_charged(self) -> Decimal:
        return sum((Decimal(invoice["summary"]["today"]) for invoice in self.charged.values()),
                   Decimal(0))

    def devices_billed(self) -> int:
        """The device quantity of the last invoice charged."""
        *_, last = self.charged.values()
        [item] = [i for i in last["items"] if i["category"] == "devices"]
        return item["quantity"]


async def devices(repo: Repository, count: int, rev: int) -> None:
    await repo.apply_doc_changes([DocChange(ACCOUNT, f"d{n}", "device", rev,
                                            counts={"devices": {"sip_device": 1}})
                                  for n in range(count)])


async def sync_until_clean(loop: SyncLoop, repo: Repository) -> None:
    for _ in range(10):
        await loop.sync_now(ACCOUNT)
        if not (await repo.services(ACCOUNT))["dirty"]:
            return
    raise AssertionError("still dirty after 10 syncs")


async def billed_by(repo: Repository, books: dict[str, BookkeeperAdapter],
                    **options: Any) -> SyncLoop:
    """The account with 2 devices and a plan of each bookkeeper's."""
    await repo.apply_doc_change(DocChange(MASTER, MASTER, "account", 1,
                                          account=AccountFields((), False)))
    await repo.apply_doc_change(DocChange(ACCOUNT, ACCOUNT, "account", 1,
                                          account=AccountFields((MASTER,), False)))
    for bookkeeper in books:
        await repo.put_plan(MASTER, bookkeeper, plan(bookkeeper))
        await repo.assign_plan(ACCOUNT, bookkeeper)
    await devices(repo, 2, 1)
    return SyncLoop(repo, lambda bookkeeper: books[bookkeeper.id], owner="test", **{
        "batch": 10, "lease_s": 60, "retry_base_s": 0.01, "retry_max_s": 0.01,
        "delinquent_recheck_s": 3600, **options})


async def test_an_answered_bookkeeper_is_not_charged_twice_for_one_change(repo):
    books: dict[str, Any] = {"books_a": KeyedBooks(), "books_b": KeyedBooks()}
    loop = await billed_by(repo, books)

    books["books_b"].down = True
    first = await loop.sync_now(ACCOUNT)
    assert [r["status"] for r in first.results] == ["completed", "failed"]
    assert books["books_a"].activation_charged() == 2 * ACTIVATION["books_a"]

    await devices(repo, 3, 1)  # a third device while books_b is down
    books["books_b"].down = False
    await sync_until_clean(loop, repo)

    for name, book in books.items():  # every device's activation charged once, no more
        assert book.activation_charged() == 3 * ACTIVATION[name], name
        assert book.devices_billed() == 3, name
    summary = await repo.services(ACCOUNT)
    assert summary["billed"]["quantities"]["account"] == {"devices": {"sip_device": 3}}


async def test_a_charge_whose_answer_was_lost_is_retried_with_its_key(repo):
    """One bookkeeper that charged but timed out: the quantities move before the retry, which
    still carries the first content and key, so the bookkeeper keeps one charge for it."""
    books: dict[str, Any] = {"books_a": KeyedBooks()}
    loop = await billed_by(repo, books)
    books["books_a"].answer_lost = True
    assert [r["status"] for r in (await loop.sync_now(ACCOUNT)).results] == ["failed"]
    await devices(repo, 3, 1)
    books["books_a"].answer_lost = False
    await sync_until_clean(loop, repo)
    assert books["books_a"].activation_charged() == 3 * ACTIVATION["books_a"]
    assert books["books_a"].devices_billed() == 3


class WatchingTheReseller(KeyedBooks):
    """Notes, at each delivery, whether the reseller was dirtied since the tick began."""

    def __init__(self, repo: Repository) -> None:
        super().__init__()
        self.repo = repo
        self.before = 0
        self.touched: list[bool] = []

    async def deliver(self, delivery: InvoiceDelivery) -> Answer:
        services = await self.repo.services(MASTER) or {}
        self.touched.append(services.get("change_count", 0) > self.before)
        return await super().deliver(delivery)


async def test_resellers_are_dirtied_batch_by_batch_within_a_tick(repo):
    """A reseller is dirtied after its customers synced, once per batch, not only
    when the tick runs out of due accounts, which steady churn can postpone for ever."""
    books = WatchingTheReseller(repo)
    loop = await billed_by(repo, {"books_a": books}, batch=1, concurrency=1)
    customers = [f"{n}" * 32 for n in range(3)]
    for customer in customers:
        await repo.apply_doc_change(DocChange(customer, customer, "account", 1,
                                              account=AccountFields((MASTER,), False)))
        await repo.assign_plan(customer, "books_a")
        await repo.apply_doc_change(DocChange(customer, "d", "device", 1,
                                              counts={"devices": {"sip_device": 1}}))
    await repo.set_overrides(MASTER, {})  # the reseller's own sync has nothing to send
    await loop.sync_now(MASTER)
    books.before = (await repo.services(MASTER))["change_count"]
    await loop.tick()
    assert len(books.touched) == 4  # the account and the three customers, one at a time
    assert books.touched[1:] == [True, True, True]  # dirtied after the first, in the tick
