"""The outbox on both adapters: an event is written exactly
when the unit that emitted it commits, once however often the unit re-runs, and the relay
publishes it with its key as Msg-ID and deletes it only after the publish."""

from __future__ import annotations

import pytest

from svc.models.events import PlansChange, StatusChange
from svc.outbox import OutboxRelay
from svc.store import VersionConflict
from svc.store.outbox import OUTBOX, OutboxEntry, emit
from svc.store.units import run_unit


def status(n: int) -> StatusChange:
    return StatusChange(account_id="a1", previous_status="good_standing", status=f"s{n}",
                        timestamp=63_900_000_000 + n)


async def entries(store) -> list[dict]:
    return [entry.doc async for entry in store.scan(OUTBOX)]


async def test_an_event_exists_only_if_its_unit_commits(store):
    async def failing() -> None:
        await store.put("meta", "x", {"n": 1}, 0)
        emit(status(0))
        raise RuntimeError("the change does not commit")

    with pytest.raises(RuntimeError):
        await run_unit(store, failing)
    assert await entries(store) == [] and await store.get("meta", "x") is None

    tries = []

    async def conflicting_once() -> None:
        tries.append(1)
        emit(PlansChange(account_id="a1", added=[f"p{len(tries)}"], removed=[], plans={}))
        if len(tries) == 1:
            raise VersionConflict("another writer was first")

    await run_unit(store, conflicting_once)
    assert [(e["name"], e["fields"]["Added"]) for e in await entries(store)] == [
        ("plans_change", ["p2"])]


async def test_the_relay_publishes_in_order_then_deletes(store):
    async def two() -> None:
        emit(status(1))
        emit(status(2))

    await run_unit(store, two)
    published: list[tuple[dict, str]] = []

    async def down(event: OutboxEntry, msg_id: str) -> None:
        raise ConnectionError("the broker is away")

    with pytest.raises(ConnectionError):
        await OutboxRelay(store, down).relay_once()
    assert len(await entries(store)) == 2  # nothing lost while the broker is away

    async def up(event: OutboxEntry, msg_id: str) -> None:
        published.append((event.fields, msg_id))

    assert await OutboxRelay(store, up).relay_once() == 2
    assert [fields for fields, _ in published] == [status(1).wire(), status(2).wire()]
    assert len({msg_id for _, msg_id in published}) == 2
    assert await entries(store) == []


async def test_the_relay_takes_two_units_a_batch_not_two_an_event(store, monkeypatch):
    """The relay shares the store's writer with ingest and the syncs: it claims a batch in
    one unit and settles it in one more, whatever the batch's size; what a broker failure
    left unpublished is due again at once, the published part gone."""
    async def many() -> None:
        for n in range(50):
            emit(status(n))

    await run_unit(store, many)
    units = []
    transaction = store.transaction

    def counted():
        units.append(1)
        return transaction()

    monkeypatch.setattr(store, "transaction", counted)
    published: list[str] = []

    async def fails_at_the_tenth(event: OutboxEntry, msg_id: str) -> None:
        if len(published) == 10:
            raise ConnectionError("the broker went away")
        published.append(msg_id)

    with pytest.raises(ConnectionError):
        await OutboxRelay(store, fails_at_the_tenth).relay_once()
    assert len(units) == 2 and len(published) == 10
    assert len(await entries(store)) == 40
    units.clear()

    async def up(event: OutboxEntry, msg_id: str) -> None:
        published.append(msg_id)

    assert await OutboxRelay(store, up).relay_once() == 40  # due again at once
    assert len(units) == 2 and len(set(published)) == 50
    assert await entries(store) == []
