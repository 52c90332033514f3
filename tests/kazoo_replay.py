"""Replaying ``tests/fixtures/kazoo_wire`` as KAZOO produced it, and checking svc's counts
against KAZOO's own recount: the helpers of ``tests/kazoo/``."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from couchdb import create_db, load_revisions, with_histories, write_revision
from kazoo_publish import publish_captured
from waiting import eventually

from svc.amqp.topology import DEAD_LETTER_QUEUE, DOC_CHANGES_QUEUE
from svc.app import Service
from svc.store import Repository

FIXTURES = Path(__file__).parent / "fixtures" / "kazoo_wire"
TRAFFIC = json.loads((FIXTURES / "traffic.json").read_text())
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
COMPARED = set(EXPECTED["compared_categories"])
SETTLE_S = 90


def replay_steps() -> list[tuple[list[tuple[dict, list[str]]], dict]]:
    """(the revisions to write first, the message), in publication order."""
    revisions: dict[int, list[tuple[dict, list[str]]]] = {}
    for entry, history in with_histories(load_revisions()):
        revisions.setdefault(entry["notice"], []).append((entry, history))
    return [(revisions.get(record["seq"], []), record) for record in TRAFFIC]


def compared(quantities: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {category: {item: count for item, count in items.items() if count}
            for category, items in quantities.items()
            if category in COMPARED and any(items.values())}


async def mismatches(repo: Repository) -> dict[str, Any]:
    """Each account whose counts differ from KAZOO's: (svc's, KAZOO's)."""
    wrong = {}
    for account_id, kazoo in EXPECTED["expected"].items():
        services = await repo.services(account_id)
        ours = compared(services["quantities"]["account"]) if services else None
        if ours != kazoo:
            wrong[account_id] = (ours, kazoo)
    return wrong


async def settled(service: Service) -> None:
    wrong: dict[str, Any] = {}

    async def matched() -> bool:
        nonlocal wrong
        wrong = await mismatches(service.repo)
        return not wrong

    try:
        await eventually(matched, timeout=SETTLE_S, interval=0.2)
    except AssertionError:
        raise AssertionError(f"accounts differing from KAZOO's recount: {wrong}") from None


ROUTED = sum(not record["routing_key"].startswith("db_") for record in TRAFFIC)


def processed(service: Service) -> float:
    """Deliveries the consumer has finished with, whatever the outcome."""
    return sum(sample.value for metric in service.metrics.doc_changes.collect()
               for sample in metric.samples if sample.name.endswith("_total"))


async def ready_count(channel, queue: str) -> int:
    """Exact, from the broker's declare-ok (list_queues statistics lag by seconds)."""
    declared = await channel.declare_queue(queue, passive=True)
    return declared.declaration_result.message_count


async def drained(service: Service, channel, since: float = 0) -> None:
    """Every routed notice finished, none left in the queue, none dead-lettered."""
    async def done() -> bool:
        return (processed(service) - since >= ROUTED
                and await ready_count(channel, DOC_CHANGES_QUEUE) == 0)

    await eventually(done, timeout=SETTLE_S, interval=0.2)
    assert await ready_count(channel, DEAD_LETTER_QUEUE) == 0, \
        "genuine KAZOO traffic was dead-lettered"


async def write(couch_url: str, revisions: list[tuple[dict, list[str]]], made: set[str]):
    for entry, history in revisions:
        if entry["database"] not in made:
            await create_db(couch_url, entry["database"])
            made.add(entry["database"])
        await write_revision(couch_url, entry["database"], entry["body"], history)


async def replay(channel, couch_url: str | None, window: int = 1, seed: int = 0) -> None:
    """Write each step's revisions, then publish its notice; with ``window`` > 1 the
    notices of each run of ``window`` steps go out shuffled after all their revisions
    (KAZOO publishes one bulk save's notices from spawned processes, in any order)."""
    rng = random.Random(seed)
    made: set[str] = set()
    steps = replay_steps()
    for start in range(0, len(steps), window):
        chunk = steps[start:start + window]
        if couch_url is not None:
            for revisions, _ in chunk:
                await write(couch_url, revisions, made)
        records = [record for _, record in chunk]
        rng.shuffle(records)
        for record in records:
            await publish_captured(channel, record)


async def write_all(couch_url: str) -> None:
    """Every revision, in order, without publishing anything: CouchDB at its final state."""
    made: set[str] = set()
    for revisions, _ in replay_steps():
        await write(couch_url, revisions, made)
