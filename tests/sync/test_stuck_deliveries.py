"""An operator sees the deliveries stuck longer than a threshold and settles each: re-route it
to the account's present bookkeeper, or abandon it with a reason; each an audited change.
Real SQLite store, real sync loop, the handlers the RPC server and the HTTP API share."""

from __future__ import annotations

import pytest
from test_standing import ACCOUNT, MASTER, Books, account_with, sync_loop

from svc.bookkeepers.local import LocalBookkeeper
from svc.bookkeepers.router import BookkeeperRouter
from svc.delivery_actions import delivery_abandon_handler, delivery_reroute_handler
from svc.handlers import Rejected
from svc.models import requests as m
from svc.store import Repository
from svc.store.audit import Actor, acting, reason_of
from svc.sync.loop import SyncLoop
from svc.sync.stuck import stuck_deliveries

HOUR = 3600.0


def request(model: type[m.Envelope], **fields: str) -> m.Envelope:
    return model.model_validate({
        "App-Name": "ops", "App-Version": "1", "Event-Category": "sync",
        "Event-Name": "delivery_req", "Msg-ID": "1", "Account-ID": ACCOUNT, **fields})


async def failed_delivery(repo: Repository) -> tuple[SyncLoop, LocalBookkeeper, str]:
    """The reseller's webhook bookkeeper is down: the account's delivery to it failed."""
    await account_with(repo, {"plan": {"plan": {"devices": {"_all": {
        "rate": 1, "activation_charge": 3}}}}})
    await repo.edit_services(MASTER, lambda doc: {**doc, "bookkeeper": {
        "id": "webhook", "type": "http"}})
    local = LocalBookkeeper(repo)
    loop = sync_loop(repo, BookkeeperRouter(local, {"webhook": Books("failed")}, local,
                                            configured=["webhook"]).adapter_for)
    assert not (await loop.sync_now(ACCOUNT)).synced
    [key] = await repo.store.find_keys("deliveries", "account_id", ACCOUNT)
    return loop, local, key


async def audit_actions(repo: Repository) -> list[tuple[str, str | None]]:
    return [(entry.doc["action"], entry.doc["reason"])
            async for entry in repo.store.scan("audit")]


async def test_a_failed_delivery_is_stuck_once_older_than_the_threshold(repo):
    await failed_delivery(repo)
    now = repo.clock()
    assert (await stuck_deliveries(repo.store, now, HOUR)).count == 0
    later = await stuck_deliveries(repo.store, now + HOUR + 1, HOUR)
    assert later.count == 1 and later.oldest_age_s > HOUR


async def test_an_abandoned_delivery_lets_the_snapshot_go_on(repo):
    loop, _, key = await failed_delivery(repo)
    abandon = delivery_abandon_handler(loop)

    req = request(m.DeliveryAbandonReq, **{
        "Delivery-ID": key, "Reason": "the client was billed by hand"})
    with acting(Actor("token", "ops", reason_of(req))):  # as both doors call it
        reply = await abandon(repo, req)

    assert reply.delivery.state == "abandoned"
    services = await repo.services(ACCOUNT)
    assert not services["dirty"] and not services["behind"]  # nothing owed any more
    assert ("delivery_abandoned", "the client was billed by hand") in await audit_actions(repo)
    assert (await stuck_deliveries(repo.store, repo.clock() + 2 * HOUR, HOUR)).count == 0
    with pytest.raises(Rejected, match="abandoned"):  # settled: nothing more to decide
        await abandon(repo, request(m.DeliveryAbandonReq, **{
            "Delivery-ID": key, "Reason": "again"}))


async def test_abandoning_needs_a_reason():
    with pytest.raises(ValueError, match="Reason"):
        request(m.DeliveryAbandonReq, **{"Delivery-ID": "x"})


async def test_a_delivery_is_rerouted_only_once_its_bookkeeper_is_not_the_accounts(repo):
    loop, _, key = await failed_delivery(repo)
    reroute = delivery_reroute_handler(loop)
    before = await repo.services(ACCOUNT)
    with pytest.raises(Rejected, match="still the account's bookkeeper"):
        await reroute(repo, request(m.DeliveryRetryReq, **{"Delivery-ID": key}))
    assert await repo.services(ACCOUNT) == before  # refused: nothing changed

    await repo.edit_services(MASTER, lambda doc: {**doc, "bookkeeper": {
        "id": "local", "type": "local"}})
    reply = await reroute(repo, request(m.DeliveryRetryReq, **{"Delivery-ID": key}))

    assert reply.delivery.state == "rerouted"
    ledger = [found.doc async for found in repo.store.scan("book_ledger")]
    assert [entry["invoice"]["summary"]["today"] for entry in ledger] == [6]
    assert ("delivery_rerouted", None) in await audit_actions(repo)
    assert (await stuck_deliveries(repo.store, repo.clock() + 2 * HOUR, HOUR)).count == 0
