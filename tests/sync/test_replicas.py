"""Two ``svc serve`` processes on one store and one broker sync the same 1,000 dirty
accounts: each account's invoice is delivered exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aio_pika

from svc.jsonio import loads
from svc.store import AccountFields, DocChange, Repository
from svc.store.sqlite import SQLiteStore

ACCOUNTS = 1_000
PLAN = {"plan": {"devices": {"_all": {"rate": 1}}}}


async def populate(path: Path) -> list[str]:
    store = SQLiteStore(path)
    await store.open()
    repo = Repository(store)
    await repo.apply_doc_change(DocChange("m", "m", "account", 1,
                                          account=AccountFields((), False)))
    await repo.put_plan("m", "p", PLAN)
    await repo.set_default_plan("m", "p")
    accounts = [f"a{n:04d}" for n in range(ACCOUNTS)]
    for start in range(0, ACCOUNTS, 100):
        await repo.apply_doc_changes([
            change for account in accounts[start:start + 100] for change in (
                DocChange(account, account, "account", 1, account=AccountFields(("m",), False)),
                DocChange(account, "d1", "device", 1, counts={"devices": {"sip_device": 1}}))])
    await store.close()
    return accounts


async def test_two_replicas_deliver_each_invoice_exactly_once(amqp_url, tmp_path):
    db = tmp_path / "shared.db"
    accounts = await populate(db)
    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel()
    services = await channel.declare_exchange("services", aio_pika.ExchangeType.TOPIC,
                                              durable=False, auto_delete=False)
    events = await channel.declare_queue(exclusive=True)
    await events.bind(services, routing_key="services.bookkeeper_sync.*")
    env = {**os.environ, "SVC_AMQP_URL": amqp_url, "SVC_STORE_URL": f"sqlite:///{db}",
           "SVC_SYNC_INTERVAL_S": "0.2", "SVC_SYNC_BATCH": "50", "SVC_LOG_LEVEL": "WARNING",
           "SVC_HTTP_PORT": "0"}
    svc = str(Path(sys.executable).parent / "svc")
    replicas = [subprocess.Popen([svc, "serve"], env={**env, "SVC_NODE": f"services@r{n}"})
                for n in range(2)]
    delivered: Counter[str] = Counter()  # bookkeeper_sync events, by account
    seen: set[str] = set()
    try:
        deadline = time.monotonic() + 120
        while len(delivered) < ACCOUNTS and time.monotonic() < deadline:
            message = await events.get(fail=False)
            if message is None:
                await _pause()
                continue
            event = loads(message.body)
            if event["Msg-ID"] not in seen:  # at least once: a repeat keeps its Msg-ID
                seen.add(event["Msg-ID"])
                delivered[event["Account-ID"]] += 1
        await _pause(1.0)  # a duplicate would arrive right behind
        while (message := await events.get(fail=False)) is not None:
            event = loads(message.body)
            if event["Msg-ID"] not in seen:
                seen.add(event["Msg-ID"])
                delivered[event["Account-ID"]] += 1
    finally:
        for replica in replicas:
            replica.send_signal(signal.SIGTERM)
        for replica in replicas:
            try:
                replica.wait(timeout=30)
            except subprocess.TimeoutExpired:
                replica.kill()
        await connection.close()

    assert sorted(delivered) == accounts
    assert set(delivered.values()) == {1}
    store = SQLiteStore(db)
    await store.open()
    try:
        ledger = [entry.doc["account_id"] async for entry in store.scan("book_ledger")]
        assert sorted(ledger) == accounts
        statuses = Counter([result["status"] async for entry in store.scan("services")
                            for result in (entry.doc.get("last_sync") or {}).get("results", [])])
        assert statuses["completed"] == ACCOUNTS
        nodes = Counter([(entry.doc.get("last_sync") or {}).get("node")
                         async for entry in store.scan("services")])
        assert nodes["services@r0"] > 0 and nodes["services@r1"] > 0  # both did a share
    finally:
        await store.close()
    assert all(replica.returncode == 0 for replica in replicas)


async def _pause(seconds: float = 0.05) -> None:
    await asyncio.sleep(seconds)
