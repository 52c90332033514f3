"""One charge per invoice through crashes, slow bookkeepers, replicas and stops,
with real processes: ``svc serve`` children on one SQLite store and the broker, and a webhook
bookkeeper (``ledger_bookkeeper.py``) that de-duplicates charges by idempotency key, as
Stripe does, and records every request it gets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import defaultdict
from pathlib import Path

import aiohttp
import pytest
from processes import SVC, child, exited, local_server
from waiting import eventually

from svc.store import AccountFields, DocChange, Repository
from svc.store.sqlite import SQLiteStore

HERE = Path(__file__).resolve().parent
PLAN = {"plan": {"devices": {"_all": {"rate": 2, "activation_charge": 5}}}}


@pytest.fixture
def ledger():
    with local_server(HERE / "ledger_bookkeeper.py") as url:
        yield url


async def http(method: str, url: str, body: dict | None = None) -> dict:
    async with aiohttp.ClientSession() as session, session.request(method, url,
                                                                   json=body) as answer:
        return await answer.json()


async def populate(path: Path, accounts: int) -> list[str]:
    """A master whose default plan bills through the ``ledger`` webhook, and accounts with a
    device each: every account is dirty with one invoice to deliver."""
    store = SQLiteStore(path)
    await store.open()
    repo = Repository(store)
    await repo.apply_doc_change(DocChange("m", "m", "account", 1,
                                          account=AccountFields((), True)))
    await repo.put_plan("m", "p", PLAN)
    await repo.set_default_plan("m", "p")
    await repo.edit_services("m", lambda doc: {**doc, "bookkeeper": {"id": "ledger",
                                                                     "type": "http"}})
    ids = [f"a{n:03d}" for n in range(accounts)]
    await repo.apply_doc_changes([change for account in ids for change in (
        DocChange(account, account, "account", 1, account=AccountFields(("m",), False)),
        DocChange(account, "d1", "device", 1, counts={"devices": {"sip_device": 1}}))])
    await store.close()
    return ids


async def services_of(path: Path, accounts: list[str]) -> dict[str, dict]:
    store = SQLiteStore(path)
    await store.open()
    try:
        found = await store.get_many("services", accounts)
        return {key: value.doc for key, value in found.items()}
    finally:
        await store.close()


def environment(amqp_url: str, db: Path, ledger: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "SVC_AMQP_URL": amqp_url, "SVC_STORE_URL": f"sqlite:///{db}",
            "SVC_HTTP_HOST": "127.0.0.1", "SVC_HTTP_PORT": "0", "SVC_LOG_LEVEL": "WARNING",
            "SVC_SYNC_INTERVAL_S": "0.2", "SVC_SYNC_RETRY_BASE_S": "0.2",
            "SVC_BOOKKEEPERS": json.dumps({"ledger": {
                "adapter": "http", "url": f"{ledger}/invoice", "secret": "s3cret",
                "timeout_s": 3600}}), **extra}


def by_account(requests: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for request in requests:
        if request["account_id"] != "m":
            grouped[request["account_id"]].append(request)
    return grouped


async def clean(db: Path, accounts: list[str]) -> bool:
    docs = await services_of(db, accounts)
    return all(not doc["dirty"] and not doc.get("behind") and doc["status"] == "good_standing"
               for doc in docs.values())


async def serve_until_clean(env: dict[str, str], log: Path, db: Path,
                            accounts: list[str]) -> None:
    """A fresh ``svc serve`` until every account is synced clean in good standing."""
    with child([str(SVC), "serve"], env, log) as service:
        async def synced() -> bool:
            assert service.poll() is None, exited(service, log)
            return await clean(db, accounts)

        await eventually(synced, timeout=60, interval=0.2)


@pytest.mark.timeout(120)
async def test_killed_after_the_bookkeeper_charged_the_retry_carries_the_same_key(
        amqp_url, tmp_path, ledger):
    db = tmp_path / "svc.db"
    accounts = await populate(db, 1)
    # the killed replica's lease must lapse before the account can be claimed again
    env = environment(amqp_url, db, ledger, SVC_SYNC_LEASE_S="3")
    with child([str(SVC), "serve"], env, tmp_path / "first.log") as first:
        # the charge is recorded, then svc is killed before the answer reaches it
        await http("POST", f"{ledger}/mode", {"kill_pid": first.pid})
        assert await asyncio.to_thread(first.wait, 60) == -signal.SIGKILL, \
            exited(first, tmp_path / "first.log")
    await serve_until_clean(env, tmp_path / "second.log", db, accounts)
    state = await http("GET", f"{ledger}/state")
    sent = by_account(state["requests"])["a000"]
    assert len(sent) >= 2  # the one svc never heard the answer to, and the retry
    assert len({request["key"] for request in sent}) == 1
    assert len([k for k, body in state["charges"].items() if body["account_id"] == "a000"]) \
        == 1


@pytest.mark.timeout(120)
async def test_killed_after_the_bookkeeper_charged_an_owed_invoice_it_is_charged_once(
        amqp_url, tmp_path, ledger):
    """A bookkeeper behind: its invoice timed out (it charged after svc gave up), so it is
    owed; its retry is charged and svc killed before the answer is recorded. The next svc
    sends the owed invoice again with its key: one charge."""
    db = tmp_path / "svc.db"
    accounts = await populate(db, 1)
    env = environment(amqp_url, db, ledger, SVC_SYNC_LEASE_S="3", SVC_SYNC_RETRY_BASE_S="2",
                      SVC_BOOKKEEPERS=json.dumps({"ledger": {
                          "adapter": "http", "url": f"{ledger}/invoice", "secret": "s3cret",
                          "timeout_s": 0.5}}))
    await http("POST", f"{ledger}/mode", {"delay_s": 1.0})
    with child([str(SVC), "serve"], env, tmp_path / "first.log") as first:
        async def owed() -> bool:
            assert first.poll() is None, exited(first, tmp_path / "first.log")
            return bool((await services_of(db, accounts))["a000"].get("behind"))

        async def charged_late() -> bool:  # the timed-out call ended, with its charge
            return all(r["end"] for r in (await http("GET", f"{ledger}/state"))["requests"])

        await eventually(owed, timeout=30, interval=0.1)
        await eventually(charged_late, timeout=10, interval=0.1)
        await http("POST", f"{ledger}/mode", {"delay_s": 0.0, "kill_pid": first.pid})
        assert await asyncio.to_thread(first.wait, 60) == -signal.SIGKILL, \
            exited(first, tmp_path / "first.log")
    await serve_until_clean(env, tmp_path / "second.log", db, accounts)
    state = await http("GET", f"{ledger}/state")
    sent = by_account(state["requests"])["a000"]
    assert len(sent) >= 3  # timed out, killed before the answer, the retry that answered
    assert len({request["key"] for request in sent}) == 1
    assert len([k for k, body in state["charges"].items() if body["account_id"] == "a000"]) \
        == 1


@pytest.mark.timeout(150)
async def test_two_replicas_and_a_slow_bookkeeper_one_key_per_invoice_one_call_at_a_time(
        amqp_url, tmp_path, ledger):
    db = tmp_path / "svc.db"
    accounts = await populate(db, 160)
    lease_s = 2.0
    await http("POST", f"{ledger}/mode", {"delay_s": lease_s / 4 + 0.3})  # > lease/4 a call
    # a batch far larger than the slots: claimed all at once, the last ones would wait
    # longer than their lease for a slot
    env = environment(amqp_url, db, ledger, SVC_SYNC_LEASE_S=str(lease_s),
                      SVC_SYNC_CONCURRENCY="8", SVC_SYNC_BATCH="160")
    logs = [tmp_path / f"r{n}.log" for n in range(2)]
    with child([str(SVC), "serve"], {**env, "SVC_NODE": "services@r0"}, logs[0]) as r0, \
            child([str(SVC), "serve"], {**env, "SVC_NODE": "services@r1"}, logs[1]) as r1:
        async def synced() -> bool:
            for replica, log in ((r0, logs[0]), (r1, logs[1])):
                assert replica.poll() is None, exited(replica, log)
            return await clean(db, accounts)

        await eventually(synced, timeout=120, interval=0.5)
    state = await http("GET", f"{ledger}/state")
    sent = by_account(state["requests"])
    assert sorted(sent) == accounts  # every account delivered
    for account, requests in sent.items():
        keys_per_content = defaultdict(set)
        for request in requests:
            keys_per_content[request["content"]].add(request["key"])
        assert all(len(keys) == 1 for keys in keys_per_content.values()), (account, requests)
        assert state["most_in_flight"][account] == 1, (account, requests)
    charged = {body["account_id"] for body in state["charges"].values()}
    assert charged >= set(accounts)
    assert len([b for b in state["charges"].values() if b["account_id"] != "m"]) == \
        len(accounts)


@pytest.mark.timeout(120)
async def test_sigterm_with_a_bookkeeper_that_never_answers_exits_then_retries_cleanly(
        amqp_url, tmp_path, ledger):
    db = tmp_path / "svc.db"
    accounts = await populate(db, 1)
    await http("POST", f"{ledger}/mode", {"hang": True})
    env = environment(amqp_url, db, ledger, SVC_DRAIN_TIMEOUT_S="3", SVC_SYNC_LEASE_S="3")
    with child([str(SVC), "serve"], env, tmp_path / "first.log") as first:
        async def calling() -> bool:
            return bool(by_account((await http("GET", f"{ledger}/state"))["requests"]))

        await eventually(calling, timeout=30, interval=0.2)
        first.send_signal(signal.SIGTERM)
        # the drain deadline (3 s) plus closing, well inside a pod's grace period
        assert await asyncio.to_thread(first.wait, 15) == 0, exited(first,
                                                                     tmp_path / "first.log")
    await http("POST", f"{ledger}/mode", {"hang": False})
    await serve_until_clean(env, tmp_path / "second.log", db, accounts)
    state = await http("GET", f"{ledger}/state")
    sent = by_account(state["requests"])["a000"]
    assert len({request["key"] for request in sent}) == 1
    assert len([b for b in state["charges"].values() if b["account_id"] == "a000"]) == 1
