"""svc against a real CouchDB-API server (pouchdb-server 4.2.0, tests/couchdb.py). Each figure is
a ratio of two runs measured side by side in one test, so
that it means the same on any machine; targets are asserted at full size only.

``test_ingest_from_couchdb_vs_inline_doc``: the same N device notices (a master, four accounts
under it, N devices spread over the four, as in test_ingest_bench.py) drained by
``svc.app.Service`` twice, each time into a fresh SQLite file from a freshly pre-filled queue:
(a) with ``Doc`` inline, (b) without ``Doc`` (KAZOO's own form), completed from the server
where the same documents were written beforehand. N = 20,000 at full size, 1,000 at smoke
size. Targets: (b) >= 1,000 notices/s end to end, and (b)/(a) >= 0.6.

``test_import_vs_bare_all_docs``: a cluster of a master and 200 accounts under it holding
100,000 documents (smoke: 10 accounts, 2,000 documents), a realistic mix of what counts and
what does not, is bulk-loaded into the server (not timed); then (i) every database is paged
with bare ``GET /<db>/_all_docs?include_docs=true`` requests, four databases at a time as the
importer reads them (the ceiling), and (ii) ``svc import`` runs as a subprocess. The report
and the store must hold exactly what was loaded. Target: the import within 60 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from couchdb import CouchServer, client_session, create_db, db_url
from queue_drain import drain
from yarl import URL

from svc.amqp.kazoo_notices import doc_change
from svc.ingest.databases import ACCOUNTS_DB, account_database
from svc.jsonio import dumps
from svc.settings import Settings
from svc.store import Repository, store_from_url

Doc = dict[str, Any]
Counts = dict[str, dict[str, int]]

INGEST_ACCOUNTS = 4
INGEST_TARGET = 1_000  # notices/s, completed from CouchDB, end to end
RATIO_TARGET = 0.6  # without Doc / with Doc
IMPORT_TARGET_S = 60.0
CONCURRENCY = 4  # account databases read at once: svc import's default
PAGE_SIZE = 1000  # documents per _all_docs page: svc import's default
BULK = 1000  # documents per _bulk_docs request while loading
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=120)


# --- loading the server -------------------------------------------------------------------

async def bulk_docs(session: aiohttp.ClientSession, url: str, database: str,
                    docs: list[Doc]) -> list[str]:
    """``POST /<db>/_bulk_docs`` (normal ``new_edits``) of new documents: their ``_rev``s,
    in the order of ``docs`` (pouchdb-server 4.2.0 may answer in another order)."""
    target = URL(f"{db_url(url, database)}/_bulk_docs", encoded=True)
    async with session.post(target, data=orjson.dumps({"docs": docs}),
                            headers={"Content-Type": "application/json"},
                            timeout=HTTP_TIMEOUT) as answer:
        text = await answer.text()
        assert answer.status in (201, 202), f"_bulk_docs {database}: {answer.status} {text}"
    rows = json.loads(text)
    errors = [row for row in rows if "error" in row]
    assert not errors, f"_bulk_docs {database}: {errors[:3]}"
    revs = {row["id"]: row["rev"] for row in rows}
    assert len(rows) == len(revs) == len(docs), database
    return [revs[doc["_id"]] for doc in docs]


async def load(url: str, databases: dict[str, list[Doc]], parallel: int = 4) -> int:
    """Every database created and its documents written in pages of ``BULK``, ``parallel``
    requests at a time; each document gets its ``_rev``. The documents written."""
    gate = asyncio.Semaphore(parallel)
    async with client_session() as session:
        async def one(database: str, docs: list[Doc]) -> None:
            async with gate:
                for start in range(0, len(docs), BULK):
                    page = docs[start:start + BULK]
                    for doc, rev in zip(page, await bulk_docs(session, url, database, page),
                                        strict=True):
                        doc["_rev"] = rev

        for database in databases:
            await create_db(url, database, session=session)
        await asyncio.gather(*(one(database, docs) for database, docs in databases.items()))
    return sum(len(docs) for docs in databases.values())


async def started_couch(data_dir: Path) -> CouchServer:
    server = CouchServer(data_dir)
    await server.astart()
    return server


# --- 1. ingest: Doc inline vs completed from CouchDB --------------------------------------

def notices(docs: list[tuple[Doc, str]], with_doc: bool) -> list[tuple[str, bytes]]:
    """Each (doc, account) as a doc_edited notice at the doc's real revision, ready to publish."""
    prefill = []
    for doc, account_id in docs:
        routing_key, body = doc_change(doc, account_id, with_doc=with_doc)
        body["Rev"] = doc["_rev"]  # the revision rule: fetched rev >= notice rev
        prefill.append((routing_key, dumps(body)))
    return prefill


async def test_ingest_from_couchdb_vs_inline_doc(full_size, amqp_url, tmp_path):
    count = 20_000 if full_size else 1_000
    master = uuid.uuid4().hex
    accounts = [uuid.uuid4().hex for _ in range(INGEST_ACCOUNTS)]
    account_docs = [({"_id": account_id, "pvt_type": "account", "name": account_id[:6],
                      "pvt_tree": [] if account_id == master else [master]}, account_id)
                    for account_id in (master, *accounts)]
    device_docs = [({"_id": f"dev{n}", "pvt_type": "device", "device_type": "sip_device"},
                    accounts[n % INGEST_ACCOUNTS]) for n in range(count)]
    expected = {account_id: len(range(n, count, INGEST_ACCOUNTS))
                for n, account_id in enumerate(accounts)}
    databases: dict[str, list[Doc]] = {ACCOUNTS_DB: [doc for doc, _ in account_docs]}
    for doc, account_id in device_docs:
        databases.setdefault(account_database(account_id), []).append(doc)

    couch = await started_couch(tmp_path / "couch")
    try:
        began = time.perf_counter()
        written = await load(couch.url, databases)
        loaded = time.perf_counter() - began
        assert written == count + len(account_docs)
        docs = account_docs + device_docs  # each doc now has its real _rev, as in CouchDB

        def settings(name: str) -> Settings:
            return Settings(amqp_url=amqp_url, store_url=f"sqlite:///{tmp_path}/{name}.db",
                            couch_url=couch.url, node="services@bench",
                            http_host="127.0.0.1", http_port=0)

        inline_s, inline_published = await drain(
            amqp_url, settings("inline"), notices(docs, with_doc=True), master, expected)
        fetched_s, fetched_published = await drain(
            amqp_url, settings("fetched"), notices(docs, with_doc=False), master, expected)
    finally:
        await couch.astop()

    inline, fetched = count / inline_s, count / fetched_s
    ratio = fetched / inline
    print(f"\ningest from CouchDB: {count:,} device notices (+{len(account_docs)} accounts) "
          f"pre-filled, drained and applied to a fresh SQLite file each time:\n"
          f"  (a) Doc inline:           {inline_s:6.2f} s  {inline:7,.0f} notices/s "
          f"(published at {inline_published:,.0f}/s)\n"
          f"  (b) completed from Couch: {fetched_s:6.2f} s  {fetched:7,.0f} notices/s "
          f"(published at {fetched_published:,.0f}/s; {fetched / INGEST_TARGET:.2f}x the "
          f"{INGEST_TARGET:,}/s target)\n"
          f"  (b)/(a) = {ratio:.2f} (target >= {RATIO_TARGET}); the {written:,} documents "
          f"were loaded into pouchdb-server beforehand in {loaded:.1f} s")
    if full_size:
        assert fetched >= INGEST_TARGET, (
            f"target: >= {INGEST_TARGET:,} notices/s completed from CouchDB: {fetched:,.0f}")
        assert ratio >= RATIO_TARGET, f"target: (b)/(a) >= {RATIO_TARGET}: {ratio:.2f}"


# --- 2. svc import vs the server's bare _all_docs -----------------------------------------

def _hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _bump(counts: Counts, category: str, item: str, by: int = 1) -> None:
    items = counts.setdefault(category, {})
    items[item] = items.get(item, 0) + by


DEVICE_TYPES = ["sip_device"] * 6 + ["softphone", "cellphone", "smartphone", "fax", "landline"]
CARRIERS = ["knm_bandwidth2", "knm_telnyx", "knm_vitelity", "knm_local"]
FEATURES = ["e911", "cnam", "failover", "prepend", "force_outbound"]


def account_documents(account_id: str, size: int, rng: random.Random) -> tuple[list[Doc], Counts]:
    """``size`` documents of one account database, as KAZOO keeps them (the account doc's
    copy, a limits doc, devices, users, voicemail boxes, numbers, conferences, faxboxes, and
    callflows and media, which count for nothing), and the quantities they make, tallied here
    by construction."""
    database = account_database(account_id)
    common = {"pvt_account_id": account_id, "pvt_account_db": database,
              "pvt_created": 63_870_000_000, "pvt_vsn": "1"}
    counts: Counts = {}
    docs: list[Doc] = [
        {"_id": account_id, "pvt_type": "account", "name": f"acct {account_id[:6]}",
         **common},  # KAZOO's copy of the account doc: counts only from `accounts`
        {"_id": "limits", "pvt_type": "limits", "twoway_trunks": 4, "inbound_trunks": 2,
         "outbound_trunks": -1, "allow_prepay": True, **common},
    ]
    _bump(counts, "limits", "twoway_trunks", 4)
    _bump(counts, "limits", "inbound_trunks", 2)
    numbers = 0
    while len(docs) < size:
        kind = rng.choices(["device", "user", "vmbox", "number", "callflow", "media",
                            "conference", "faxbox"], [35, 20, 12, 12, 12, 4, 3, 2])[0]
        doc: Doc = {"_id": _hex(rng), "pvt_type": kind, **common}
        if kind == "device":
            device_type = rng.choice(DEVICE_TYPES)
            doc.update(device_type=device_type, name=f"dev {len(docs)}",
                       sip={"username": _hex(rng)[:12], "password": _hex(rng)[:16],
                            "realm": f"{account_id[:8]}.sip.example.net"},
                       owner_id=_hex(rng), enabled=rng.random() >= 0.05)
            if doc["enabled"]:  # a disabled document counts for nothing
                _bump(counts, "devices", device_type)
        elif kind == "user":
            priv_level = "admin" if rng.random() < 0.2 else "user"
            doc.update(priv_level=priv_level, first_name="Ann", last_name=f"N{len(docs)}",
                       email=f"u{len(docs)}@example.com", timezone="America/Chicago")
            _bump(counts, "users", priv_level)
        elif kind == "vmbox":
            transcribe = rng.random() < 0.3
            doc.update(mailbox=str(1000 + len(docs)), transcribe=transcribe,
                       owner_id=_hex(rng), media={"unavailable": _hex(rng)})
            _bump(counts, "voicemails", "mailbox")
            if transcribe:
                _bump(counts, "voicemails", "transcription")
        elif kind == "number":
            numbers += 1
            roll = rng.random()
            if roll < 0.7:
                doc["_id"], classification = f"+1415{5_000_000 + numbers}", "did_us"
            elif roll < 0.9:
                doc["_id"], classification = f"+1800{2_000_000 + numbers}", "tollfree_us"
            else:
                doc["_id"], classification = f"+4420{70_000_000 + numbers}", "international"
            carrier = rng.choice(CARRIERS)
            features: Doc = {name: {"enabled": True}
                             for name in rng.sample(FEATURES, rng.randrange(3))}
            if carrier == "knm_local":
                features["local"] = {}  # a local number: no phone_numbers
            else:
                _bump(counts, "phone_numbers", classification)
            doc.update(pvt_module_name=carrier, pvt_features=features,
                       pvt_state="in_service", pvt_assigned_to=account_id)
            _bump(counts, "number_carriers", carrier)
            for name in features:
                _bump(counts, "number_services", name)
        elif kind == "conference":
            doc.update(name=f"conf {len(docs)}", member={"numbers": ["1000"]})
            _bump(counts, "conferences", "conference")
        elif kind == "faxbox":
            doc.update(name=f"fax {len(docs)}", caller_name="Fax")
            _bump(counts, "faxes", "mailbox")
        elif kind == "callflow":
            doc.update(numbers=[str(2000 + len(docs))],
                       flow={"module": "user", "data": {"id": _hex(rng)}, "children": {}})
        else:
            doc.update(name=f"greeting {len(docs)}.mp3", media_source="upload",
                       content_type="audio/mpeg")
        docs.append(doc)
    return docs, counts


def add_into(total: Counts, counts: Counts) -> None:
    for category, items in counts.items():
        for item, value in items.items():
            _bump(total, category, item, value)


async def bare_read(url: str, databases: Iterable[str]) -> tuple[int, int]:
    """Every database paged with ``GET /<db>/_all_docs?include_docs=true`` and its answer
    parsed, ``accounts`` first and then ``CONCURRENCY`` databases at a time, by ``startkey``
    as svc's CouchSource pages (``limit`` = page + 1: the extra row is the next start).
    (documents read, requests made)."""
    gate = asyncio.Semaphore(CONCURRENCY)
    requests = 0

    async def one(session: aiohttp.ClientSession, database: str) -> int:
        nonlocal requests
        read, start = 0, None
        async with gate:
            while True:
                query = {"include_docs": "true", "limit": str(PAGE_SIZE + 1)}
                if start is not None:
                    query["startkey"] = orjson.dumps(start).decode()
                target = URL(f"{db_url(url, database)}/_all_docs", encoded=True)
                async with session.get(target.update_query(query)) as answer:
                    body = await answer.read()
                    status = answer.status
                requests += 1
                if status == 404:
                    return read
                assert status == 200, f"_all_docs {database}: {status}"
                rows = orjson.loads(body)["rows"]
                read += sum(1 for row in rows[:PAGE_SIZE] if isinstance(row.get("doc"), dict))
                if len(rows) <= PAGE_SIZE:
                    return read
                start = rows[PAGE_SIZE]["id"]

    databases = list(databases)
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT,
                                     headers={"Accept": "application/json"}) as session:
        read = await one(session, databases[0])
        read += sum(await asyncio.gather(*(one(session, db) for db in databases[1:])))
    return read, requests


def svc_import(couch_url: str, store_url: str) -> tuple[float, Doc]:
    """``svc import`` as a subprocess: (seconds, its JSON report)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SVC_")}
    env.update(SVC_COUCH_URL=couch_url, SVC_STORE_URL=store_url, SVC_LOG_LEVEL="WARNING")
    began = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).with_name("svc")), "import"], env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    elapsed = time.perf_counter() - began
    assert done.returncode == 0, f"svc import: {done.returncode}\n{done.stderr[-3000:]}"
    return elapsed, json.loads(done.stdout)


@pytest.mark.timeout(1200)
async def test_import_vs_bare_all_docs(full_size, tmp_path):
    accounts_n, documents = (200, 100_000) if full_size else (10, 2_000)
    rng = random.Random(20240611)
    master = _hex(rng)
    accounts = [_hex(rng) for _ in range(accounts_n)]
    account_docs = [{"_id": account_id, "pvt_type": "account", "name": f"acct {account_id[:6]}",
                     "realm": f"{account_id[:8]}.sip.example.net",
                     "pvt_tree": [] if account_id == master else [master],
                     "pvt_account_id": account_id, "pvt_account_db": account_database(account_id),
                     "pvt_enabled": True, "pvt_vsn": "1"}
                    for account_id in (master, *accounts)]
    databases: dict[str, list[Doc]] = {ACCOUNTS_DB: account_docs}
    expected: dict[str, Counts] = {}
    for account_id in accounts:  # the master's own database is empty (missing)
        docs, expected[account_id] = account_documents(account_id, documents // accounts_n, rng)
        databases[account_database(account_id)] = docs
    cascade: Counts = {}
    for counts in expected.values():
        add_into(cascade, counts)
    total = sum(len(docs) for docs in databases.values())
    store_url = f"sqlite:///{tmp_path}/svc.db"

    couch = await started_couch(tmp_path / "couch")
    try:
        began = time.perf_counter()
        assert await load(couch.url, databases) == total
        loaded = time.perf_counter() - began

        # (i) the ceiling: the server's own paging, the same databases in the same order
        # (the master's database too: the importer asks for it and gets a 404)
        began = time.perf_counter()
        read, requests = await bare_read(
            couch.url, [ACCOUNTS_DB, *(account_database(doc["_id"]) for doc in account_docs)])
        bare_s = time.perf_counter() - began
        assert read == total, (read, total)

        # (ii) svc import, the real CLI
        import_s, report = await asyncio.to_thread(svc_import, couch.url, store_url)
    finally:
        await couch.astop()

    assert report["Accounts"] == accounts_n + 1, report["Accounts"]
    assert report["Documents"] == total, (report["Documents"], total)
    assert report["Changed"] is True
    store = store_from_url(store_url)
    await store.open()
    try:
        repo = Repository(store)
        for account_id in accounts:
            services = await repo.services(account_id)
            assert services is not None, account_id
            own = services["quantities"]["account"]
            assert own == expected[account_id], (account_id, own, expected[account_id])
        top = (await repo.services(master))["quantities"]
        assert top["account"] == {}, top["account"]
        assert top["cascade"] == cascade, (top["cascade"], cascade)
    finally:
        await store.close()

    bare, imported = read / bare_s, total / import_s
    print(f"\nimport from CouchDB: {accounts_n + 1} accounts, {total:,} documents "
          f"(loaded into pouchdb-server beforehand in {loaded:.1f} s, untimed):\n"
          f"  (i)  bare _all_docs paging, {CONCURRENCY} databases at a time: {bare_s:6.2f} s "
          f"{bare:8,.0f} documents/s ({requests} requests)\n"
          f"  (ii) svc import (subprocess, SQLite):            {import_s:6.2f} s "
          f"{imported:8,.0f} documents/s (target <= {IMPORT_TARGET_S:.0f} s)\n"
          f"  import/bare = {imported / bare:.2f}; cascade of the master: "
          f"{sum(sum(items.values()) for items in cascade.values()):,} units in "
          f"{len(cascade)} categories")
    if full_size:
        assert import_s <= IMPORT_TARGET_S, (
            f"target: svc import of {total:,} documents within {IMPORT_TARGET_S:.0f} s: "
            f"{import_s:.1f} s")
