"""Genuine KAZOO 4.3 traffic, replayed as KAZOO produced it: each revision of
``revisions.json`` written to a real CouchDB-API server, then its notice published with the
captured bytes and properties (the Gregorian-microseconds timestamp included), into a running
``svc`` whose only source of bodies is that server. Every account must end with KAZOO's own
recount (``expected.json``) on the compared categories, through duplicates, reordering within
a bulk save, a CouchDB outage, and ``svc import`` on an empty store."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kazoo_publish import publish_captured
from kazoo_replay import (
    EXPECTED,
    ROUTED,
    drained,
    mismatches,
    processed,
    replay,
    replay_steps,
    settled,
    write,
    write_all,
)
from waiting import eventually

from svc.app import Service


async def test_replay_matches_kazoos_recount_and_a_second_replay_changes_nothing(
        service, publisher, couch):
    await replay(publisher, couch.url)
    await settled(service)
    await drained(service, publisher)
    before = {a: await service.repo.services(a) for a in EXPECTED["expected"]}

    await replay(publisher, None)  # every notice again: CouchDB already has the last revs
    await drained(service, publisher, since=ROUTED)
    assert await mismatches(service.repo) == {}
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
    await write_all(couch.url)
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
        assert await mismatches(service.repo) == {}
    finally:
        await service.stop()
