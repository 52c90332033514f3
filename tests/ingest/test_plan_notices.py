"""``service_plan`` notices obey the revision ledger like every other document: through a running
service and the real broker, out of order and
repeated, an older or repeated revision changes nothing and dirties no account, a delete
leaves a tombstone, and an invalid plan is dead-lettered without moving the ledger."""

from __future__ import annotations

import uuid

from waiting import eventually

from svc.amqp.kazoo_notices import doc_change as notice
from svc.amqp.kazoo_notices import publish
from svc.jsonio import loads

INVALID = {"devices": {"_all": {"rates": {"x": 1}}}}  # rates must be a list of numbers


def new_id() -> str:
    return uuid.uuid4().hex


def account(account_id: str, tree: list[str]) -> dict:
    return {"_id": account_id, "pvt_type": "account", "pvt_tree": tree}


def plan(rate: int, categories: dict | None = None) -> dict:
    """The plan "gold"; its rate tells the revisions apart."""
    return {"_id": "gold", "pvt_type": "service_plan",
            "plan": categories or {"devices": {"_all": {"rate": rate}}}}


def outcomes(service, outcome: str) -> float:
    return service.metrics.registry.get_sample_value(
        "svc_doc_changes_total", {"type": "service_plan", "outcome": outcome}) or 0


async def counted(service, outcome: str, expected: int) -> None:
    async def reached():
        return outcomes(service, outcome) >= expected

    await eventually(reached)
    assert outcomes(service, outcome) == expected


async def stored_rate(client, vendor: str) -> int | None:
    """The rate of the stored plan; ``None`` when there is none."""
    reply = await client.call("plan_get", {"Account-ID": vendor, "Plan-ID": "gold"})
    if reply["Status"] != "success":
        assert reply["Reason"] == "plan_not_found"
        return None
    return reply["Plan"]["doc"]["plan"]["devices"]["_all"]["rate"]


async def test_an_older_revision_after_a_newer_one_leaves_the_newer(service, client, channel):
    vendor = new_id()
    await publish(channel, *notice(account(vendor, []), vendor))
    await publish(channel, *notice(plan(rate=2), vendor, 2))
    await publish(channel, *notice(plan(rate=1), vendor, 1))  # late
    await counted(service, "ignored", 1)
    assert outcomes(service, "applied") == 1
    assert await stored_rate(client, vendor) == 2


async def test_an_edit_older_than_the_delete_does_not_resurrect_the_plan(service, client,
                                                                         channel):
    vendor = new_id()
    await publish(channel, *notice(account(vendor, []), vendor))
    await publish(channel, *notice(plan(rate=1), vendor, 1))
    await publish(channel, *notice(plan(rate=1), vendor, 3, event="doc_deleted",
                                   with_doc=False))
    await publish(channel, *notice(plan(rate=2), vendor, 2))  # edited before the delete
    await counted(service, "ignored", 1)
    assert outcomes(service, "applied") == 2
    assert await stored_rate(client, vendor) is None


async def test_a_repeated_revision_does_not_dirty_the_plans_accounts(service, client, channel):
    vendor, customer = new_id(), new_id()
    await publish(channel, *notice(account(vendor, []), vendor))
    await publish(channel, *notice(account(customer, [vendor]), customer))
    await publish(channel, *notice(plan(rate=1), vendor, 1))

    async def assigned():
        reply = await client.call("assign_plan", {"Account-ID": customer, "Plan-ID": "gold"})
        return reply["Status"] == "success"

    await eventually(assigned)  # once the accounts and the plan are stored
    reply = await client.call("sync", {"Account-ID": customer})
    assert reply["Status"] == "success", reply
    synced = await service.repo.services(customer)
    assert synced["dirty"] is False and synced["plan_keys"] == [f"{vendor}/gold"]

    await publish(channel, *notice(plan(rate=1), vendor, 1))  # KAZOO's notice again
    await counted(service, "ignored", 1)
    repeated = await service.repo.services(customer)
    assert (repeated["dirty"], repeated["changed_at"]) == (False, synced["changed_at"])

    await publish(channel, *notice(plan(rate=3), vendor, 2))  # a newer one does dirty it
    await counted(service, "applied", 2)
    edited = await service.repo.services(customer)
    assert edited["dirty"] is True and edited["changed_at"] > synced["changed_at"]
    assert await stored_rate(client, vendor) == 3


async def test_an_invalid_revision_is_dead_lettered_and_a_lower_valid_one_applies(
        service, client, channel):
    dead = await channel.declare_queue("services_dead_letters", durable=True,
                                       arguments={"x-queue-type": "quorum"})
    await dead.purge()
    vendor = new_id()
    await publish(channel, *notice(account(vendor, []), vendor))
    await publish(channel, *notice(plan(rate=0, categories=INVALID), vendor, 3))
    message = await eventually(lambda: dead.get(fail=False))
    await message.ack()
    assert message.headers["x-svc-dead-letter-reason"].startswith("invalid service plan: ")
    assert loads(message.body)["Rev"].startswith("3-")
    assert service.metrics.registry.get_sample_value(
        "svc_dead_letters_total", {"reason": "invalid_plan"}) == 1

    await publish(channel, *notice(plan(rate=2), vendor, 2))  # the ledger did not move to 3
    await counted(service, "applied", 1)
    assert await stored_rate(client, vendor) == 2
