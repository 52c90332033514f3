"""Genuine KAZOO 4.3 traffic, replayed as KAZOO produced it (SPEC §13): each revision of
``revisions.json`` written to a real CouchDB-API server, then its notice published with the
captured bytes and properties (the Gregorian-microseconds timestamp included), into a running
``svc`` whose only source of bodies is that server. Every account must end with KAZOO's own
recount (``expected.json``) on the compared categories, through duplicates, reordering within
a bulk save, a CouchDB outage, and ``svc import`` on an empty store."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from couchdb import CouchServer, create_db, load_revisions, with_histories, write_revision
from kazoo_publish import publish_captured
from waiting import eventually

from svc.amqp.topology import DEAD_LETTER_QUEUE, DOC_CHANGES_QUEUE
from svc.app import Service
from svc.settings import Settings

FIXTURES = Path(__file__).parent.parent / "fixtures" / "kazoo_wire"
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


async def mismatches(service: Service) -> dict[str, Any]:
    """Each account whose counts differ from KAZOO's: (svc's, KAZOO's)."""
    wrong = {}
    for account_id, kazoo in EXPECTED["expected"].items():
        services = await service.repo.services(account_id)
        ours = compared(services["quantities"]["account"]) if services else None
        if ours != kazoo:
            wrong[account_id] = (ours, kazoo)
    return wrong


async def settled(service: Service) -> None:
    wrong: dict[str, Any] = {}

    async def matched() -> bool:
        nonlocal wrong
        wrong = await mismatches(service)
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


@pytest.fixture
async def couch(tmp_path):
    server = CouchServer(tmp_path / "couch")
    await server.astart()
    try:
        yield server
    finally:
        await server.astop()


@pytest.fixture
def settings(settings, couch) -> Settings:
    """The suite's settings, with the test's CouchDB as the document source."""
    return Settings(**{**dict(settings), "couch_url": couch.url})


@pytest.fixture
async def publisher(amqp_url):
    connection = await aio_pika.connect(amqp_url)
    try:
        yield await connection.channel(publisher_confirms=True)
    finally:
        await connection.close()


async def test_replay_matches_kazoos_recount_and_a_second_replay_changes_nothing(
        service, publisher, couch):
    await replay(publisher, couch.url)
    await settled(service)
    await drained(service, publisher)
    before = {a: await service.repo.services(a) for a in EXPECTED["expected"]}

    await replay(publisher, None)  # every notice again: CouchDB already has the last revs
    await drained(service, publisher, since=ROUTED)
    assert await mismatches(service) == {}
    after = {a: await service.repo.services(a) for a in EXPECTED["expected"]}
    assert {a: d["quantities"] for a, d in after.items()} == \
        {a: d["quantities"] for a, d in before.items()}


@pytest.mark.parametrize("seed", [1, 2])
async def test_notices_shuffled_within_bulk_saves_give_the_same_counts(
        service, publisher, couch, seed):
    await replay(publisher, couch.url, window=6, seed=seed)
    await settled(service)
    await drained(service, publisher)


async def test_couchdb_stopped_mid_ingest_loses_nothing(service, publisher, couch):
    steps = replay_steps()
    made: set[str] = set()
    for revisions, _ in steps:
        await write(couch.url, revisions, made)
    half = len(steps) // 2
    for _, record in steps[:half]:
        await publish_captured(publisher, record)
    await couch.astop()
    for _, record in steps[half:]:
        await publish_captured(publisher, record)

    async def couch_named_down() -> bool:
        readiness = await service.readiness()
        return not readiness.ready and "couch" in readiness.body["down"]

    await eventually(couch_named_down, timeout=10)
    assert processed(service) < ROUTED  # notices wait for CouchDB, unacked
    await couch.astart()
    await settled(service)
    await drained(service, publisher)
    assert (await service.readiness()).ready


async def test_svc_import_on_an_empty_store_matches_kazoos_recount(couch, tmp_path,
                                                                   settings):
    made: set[str] = set()
    for revisions, _ in replay_steps():
        await write(couch.url, revisions, made)
    env = {**os.environ, "SVC_COUCH_URL": couch.url, "SVC_STORE_URL": settings.store_url}
    svc = Path(sys.executable).with_name("svc")
    first = await asyncio.to_thread(subprocess.run, [str(svc), "import"], env=env,
                                    capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["Accounts"] == len(EXPECTED["accounts"]) and report["Changed"]
    again = await asyncio.to_thread(subprocess.run, [str(svc), "import"], env=env,
                                    capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["Changed"] is False  # idempotent

    service = Service(settings)
    await service.start()
    try:
        assert await mismatches(service) == {}
    finally:
        await service.stop()
