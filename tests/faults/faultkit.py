"""What the fault tests share: a workload of doc-change notices whose final state is known,
the exact recount it implies, a publisher that outlives a broker outage, ``svc serve``
processes, and the quantities svc stored.

Everything that waits has a deadline; nothing sleeps in the hope that work got done.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp

from svc.amqp import topology
from svc.amqp.kazoo_notices import doc_change
from svc.jsonio import dumps
from svc.quantities import DEFAULT_CLASSIFIERS, Counts, add_counts, document_contributions
from svc.quantities.counts import resolve_counts
from svc.store import Repository
from svc.store.sqlite import SQLiteStore

SVC = str(Path(sys.executable).parent / "svc")
DEVICE_TYPES = ("sip_device", "softphone", "fax", "ata", "cellphone", "landline")
NUMBERS = ("+1415555{:04d}", "+1800555{:04d}", "+4420755{:05d}", "+1876555{:04d}")


# --- the workload -----------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    routing_key: str
    body: bytes
    account_id: str
    doc_id: str
    rev: int
    doc: dict[str, Any] | None  # None: deleted


@dataclass
class Workload:
    """A deterministic stream of Kazoo doc-change notices (created, edited, deleted and
    re-created devices, users, numbers and limits, plus the account documents) over a small
    tree, and the final state of every document in it."""

    trees: dict[str, list[str]]  # account id -> pvt_tree (its ancestors)
    notices: list[Notice] = field(default_factory=list)
    final: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)
    revs: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, doc: dict[str, Any], account_id: str, event: str) -> Notice:
        key = (account_id, doc["_id"])
        rev = self.revs.get(key, 0) + 1
        self.revs[key] = rev
        deleted = event == "doc_deleted"
        routing_key, body = doc_change(doc, account_id, rev, event=event, with_doc=not deleted)
        notice = Notice(routing_key, dumps(body), account_id, doc["_id"], rev,
                        None if deleted else doc)
        self.notices.append(notice)
        self.final[key] = None if deleted else doc
        return notice

    def expected(self, upto: int | None = None) -> dict[str, dict[str, Counts]]:
        """The exact recount, from the pure quantity rules, of the whole stream or of its
        first ``upto`` notices: each account's own quantities and the cascade (the sum over
        its descendants) of every account. An account whose own document has not come yet
        is pending: counted, but not in its ancestors' cascades."""
        final = self.final if upto is None else self.state(upto)
        raw: dict[str, Counts] = {account_id: {} for account_id in self.trees}
        for (account_id, _), doc in final.items():
            if doc is not None:
                counts = document_contributions(doc, DEFAULT_CLASSIFIERS).counts
                raw[account_id] = add_counts(raw[account_id], counts)
        own = {account_id: resolve_counts(counts) for account_id, counts in raw.items()}
        cascade: dict[str, Counts] = {account_id: {} for account_id in self.trees}
        for account_id, tree in self.trees.items():
            if (account_id, account_id) not in final:
                continue
            for ancestor in tree:
                cascade[ancestor] = add_counts(cascade[ancestor], own[account_id])
        return {account_id: {"account": normal(own[account_id]),
                             "cascade": normal(cascade[account_id])}
                for account_id in self.trees}

    def state(self, upto: int) -> dict[tuple[str, str], dict[str, Any] | None]:
        """Each document as the first ``upto`` notices leave it."""
        return {(n.account_id, n.doc_id): n.doc for n in self.notices[:upto]}

    def revisions(self, upto: int) -> dict[tuple[str, str], int]:
        return {(n.account_id, n.doc_id): n.rev for n in self.notices[:upto]}

    def position(self) -> dict[tuple[str, str, int], int]:
        """Where each (account, document, revision) stands in the stream."""
        return {(n.account_id, n.doc_id, n.rev): index for index, n in enumerate(self.notices)}


def workload(count: int, seed: int, late_account_at: float = 0.4) -> Workload:
    """``count`` notices: a master, a reseller under it and three accounts (two under the
    reseller). One account's own document arrives only ``late_account_at`` of the way in, so
    its earlier documents are counted on a pending account first."""
    rnd = random.Random(seed)
    ids = [f"{seed:04x}{n:02x}" + rnd.randbytes(13).hex() for n in range(5)]
    master, reseller, a1, a2, a3 = ids
    trees = {master: [], reseller: [master], a1: [master], a2: [master, reseller],
             a3: [master, reseller]}
    work = Workload(trees)
    late = a3

    def account_doc(account_id: str, name: str) -> dict[str, Any]:
        return {"_id": account_id, "pvt_type": "account", "name": name,
                "pvt_tree": trees[account_id]}

    for account_id in ids:
        if account_id != late:
            work.add(account_doc(account_id, account_id[:8]), account_id, "doc_created")
    live: dict[str, dict[str, dict[str, Any]]] = {account_id: {} for account_id in ids}
    gone: dict[str, dict[str, dict[str, Any]]] = {account_id: {} for account_id in ids}
    serial = 0
    late_index = int(count * late_account_at)
    while len(work.notices) < count:
        if len(work.notices) >= late_index and (late, late) not in work.final:
            work.add(account_doc(late, "late"), late, "doc_created")
            continue
        account_id = rnd.choice(ids)
        roll = rnd.random()
        if roll < 0.02:  # an ordinary edit of the account document: the tree stays
            if (account_id, account_id) in work.final:
                work.add(account_doc(account_id, f"renamed {serial}"), account_id,
                         "doc_edited")
                serial += 1
            continue
        if roll < 0.45 or not live[account_id]:
            serial += 1
            doc = _new_doc(rnd, serial)
            if doc["_id"] in live[account_id] or doc["_id"] in gone[account_id]:
                continue
            live[account_id][doc["_id"]] = doc
            work.add(doc, account_id, "doc_created")
        elif roll < 0.75:
            doc_id = rnd.choice(sorted(live[account_id]))
            doc = _edited(rnd, live[account_id][doc_id])
            live[account_id][doc_id] = doc
            work.add(doc, account_id, "doc_edited")
        elif roll < 0.93 or not gone[account_id]:
            doc_id = rnd.choice(sorted(live[account_id]))
            gone[account_id][doc_id] = live[account_id].pop(doc_id)
            work.add(gone[account_id][doc_id], account_id, "doc_deleted")
        else:  # re-created: a newer revision than its delete
            doc_id = rnd.choice(sorted(gone[account_id]))
            live[account_id][doc_id] = _edited(rnd, gone[account_id].pop(doc_id))
            work.add(live[account_id][doc_id], account_id, "doc_created")
    return work


def _new_doc(rnd: random.Random, serial: int) -> dict[str, Any]:
    kind = rnd.choice(("device", "device", "user", "number", "limits"))
    if kind == "device":
        return {"_id": f"dev{serial}", "pvt_type": "device",
                "device_type": rnd.choice(DEVICE_TYPES)}
    if kind == "user":
        return {"_id": f"usr{serial}", "pvt_type": "user",
                "priv_level": rnd.choice(("user", "user", "admin"))}
    if kind == "number":
        number = rnd.choice(NUMBERS).format(serial % 10_000)
        return {"_id": number, "pvt_type": "number",
                "pvt_features": rnd.choice(({}, {"cnam": {}}, {"e911": {}, "local": {}}))}
    return {"_id": "limits", "pvt_type": "limits", "twoway_trunks": rnd.randrange(0, 5),
            "inbound_trunks": rnd.randrange(0, 3)}


def _edited(rnd: random.Random, doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(doc)
    if doc["pvt_type"] == "device":
        doc["device_type"] = rnd.choice(DEVICE_TYPES)
    elif doc["pvt_type"] == "user":
        doc["priv_level"] = rnd.choice(("user", "admin"))
    elif doc["pvt_type"] == "number":
        doc["pvt_features"] = rnd.choice(({}, {"cnam": {}}, {"failover": {}}))
    else:
        doc["twoway_trunks"] = rnd.randrange(0, 5)
    return doc


def normal(counts: Counts) -> Counts:
    """Counts without zero items or empty categories, for comparison."""
    return {category: {item: n for item, n in items.items() if n}
            for category, items in counts.items() if any(items.values())}


# --- the store --------------------------------------------------------------------------


async def stored(db: Path, accounts: Iterable[str]) -> dict[str, dict[str, Counts]]:
    """The quantities svc stored, read from its SQLite file (svc stopped)."""
    store = SQLiteStore(db)
    await store.open()
    try:
        repo = Repository(store)
        found = {}
        for account_id in accounts:
            services = await repo.services(account_id)
            quantities = services["quantities"] if services else {}
            found[account_id] = {"account": normal(quantities.get("account", {})),
                                 "cascade": normal(quantities.get("cascade", {}))}
        return found
    finally:
        await store.close()


async def ledger_revisions(db: Path) -> dict[tuple[str, str], int]:
    """(account, document) -> the revision svc stored for it."""
    store = SQLiteStore(db)
    await store.open()
    try:
        return {(entry.doc["account_id"], entry.doc["doc_id"]): entry.doc["rev"]
                async for entry in store.scan("ledger")}
    finally:
        await store.close()


async def reconcile_drift(db: Path) -> list[Any]:
    """What a full reconcile would repair: nothing, when the running totals are exact."""
    store = SQLiteStore(db)
    await store.open()
    try:
        return await Repository(store).reconcile_all()
    finally:
        await store.close()


async def check_store(db: Path, work: Workload) -> None:
    """The stored quantities equal the exact recount, every document's last revision is
    the one stored, and a reconcile finds no drift."""
    expected = work.expected()
    found = await stored(db, work.trees)
    wrong = {a: {"stored": found[a], "expected": expected[a]}
             for a in work.trees if found[a] != expected[a]}
    assert not wrong, f"stored quantities differ from the exact recount: {wrong}"
    revisions = await ledger_revisions(db)
    assert revisions == work.revs, (
        f"{sum(1 for k, r in work.revs.items() if revisions.get(k) != r)} documents' "
        f"stored revision is not their last one")
    assert await reconcile_drift(db) == []


# --- the broker -------------------------------------------------------------------------


class ResilientPublisher:
    """Publishes notices with confirms and ``mandatory``, and when the broker goes away (or
    a message finds no queue yet because svc has not re-bound it), reconnects and publishes
    the unconfirmed batch again: duplicates, never losses, as a real publisher would."""

    def __init__(self, url: str, batch: int = 250) -> None:
        self.url = url
        self.batch = batch
        self.published = 0
        self.retries = 0
        self.first_failure_at: int | None = None  # notices confirmed when a publish failed
        self.connection: aio_pika.abc.AbstractConnection | None = None
        self.exchange: aio_pika.abc.AbstractExchange | None = None

    async def _connect(self) -> aio_pika.abc.AbstractExchange:
        self.connection = await aio_pika.connect(self.url, timeout=5)
        channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        self.exchange = await channel.declare_exchange(
            "configuration", aio_pika.ExchangeType.TOPIC, durable=False, auto_delete=False)
        return self.exchange

    async def close(self) -> None:
        if self.connection is not None:
            connection, self.connection, self.exchange = self.connection, None, None
            with contextlib.suppress(Exception):  # it is broken already
                await asyncio.wait_for(connection.close(), 5)

    async def publish(self, messages: list[tuple[str, bytes]], deadline_s: float = 120,
                      rate: float | None = None) -> None:
        """All of ``messages``, at about ``rate`` per second if given (so that a fault
        can strike while they flow)."""
        began = time.monotonic()
        deadline = began + deadline_s
        for start in range(0, len(messages), self.batch):
            if rate is not None:
                await asyncio.sleep(max(0.0, began + start / rate - time.monotonic()))
            chunk = messages[start:start + self.batch]
            while True:
                try:
                    exchange = self.exchange or await self._connect()
                    results = await asyncio.gather(*(
                        exchange.publish(aio_pika.Message(body, content_type="application/json"),
                                         routing_key=routing_key, mandatory=True, timeout=10)
                        for routing_key, body in chunk), return_exceptions=True)
                    failed = [r for r in results if isinstance(r, BaseException)]
                    if not failed:
                        break
                    raise failed[0]
                except Exception as error:  # noqa: BLE001 - the broker is down or restarting
                    self.retries += 1
                    if self.first_failure_at is None:
                        self.first_failure_at = start
                    await self.close()
                    if time.monotonic() > deadline:
                        raise AssertionError(f"could not publish within {deadline_s} s: "
                                             f"{error!r}") from error
                    await asyncio.sleep(0.2)
            self.published = start + len(chunk)


async def queue_state(url: str, name: str) -> tuple[int, int]:
    """(ready messages, consumers) of a queue, by a passive declare on its own connection."""
    connection = await aio_pika.connect(url, timeout=5)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        result = queue.declaration_result
        return result.message_count, result.consumer_count
    finally:
        await connection.close()


async def wait_for(check, timeout: float, what: str, interval: float = 0.1):
    """Poll ``check`` (async; truthy when done) until it is, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await check()
        except Exception as error:  # noqa: BLE001 - e.g. the broker is still starting
            last = error
        else:
            if last:
                return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


async def wait_until_consuming(url: str, timeout: float = 60) -> None:
    """Both svc queues have a consumer."""
    async def consuming() -> bool:
        for name in (topology.DOC_CHANGES_QUEUE, topology.RPC_QUEUE):
            _, consumers = await queue_state(url, name)
            if consumers < 1:
                return False
        return True

    await wait_for(consuming, timeout, "svc consuming both queues", interval=0.2)


async def wait_until_idle(url: str, timeout: float = 60) -> int:
    """The broker saw svc go: no consumer on the doc-change queue. Returns the ready count,
    which then includes every delivery svc had not acked: the queue drops a consumer whose
    channel is gone and returns its deliveries in one step, and a passive declare reads
    both from the same state (``rabbitmqctl list_queues`` shows statistics that may be
    seconds old, so it is not used here)."""
    async def gone() -> int | None:
        ready, consumers = await queue_state(url, topology.DOC_CHANGES_QUEUE)
        return None if consumers else ready + 1  # truthy, also when nothing is ready

    ready = await wait_for(gone, timeout, "the broker dropping svc's consumer",
                           interval=0.05) - 1
    again = await queue_state(url, topology.DOC_CHANGES_QUEUE)
    assert again == (ready, 0), f"the queue still changes without a consumer: {again}"
    return ready


async def drain_dead_letters(url: str, expected: int = 0, timeout: float = 30,
                             settle_s: float = 0.5) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Every message in ``services_dead_letters``: at least ``expected`` of them (waiting up
    to ``timeout``), then whatever else arrives within ``settle_s``."""
    connection = await aio_pika.connect(url, timeout=5)
    got: list[aio_pika.abc.AbstractIncomingMessage] = []
    try:
        channel = await connection.channel()
        queue = await topology.declare_dead_letters(channel)
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while True:
            message = await queue.get(fail=False, no_ack=True)
            now = time.monotonic()
            if message is not None:
                got.append(message)
                quiet_since = now
                continue
            if len(got) >= expected and now - quiet_since >= settle_s:
                return got
            if now > deadline:
                raise AssertionError(f"{len(got)} dead letters within {timeout} s, "
                                     f"expected {expected}")
            await asyncio.sleep(0.05)
    finally:
        await connection.close()


# --- svc serve ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def notice_outcomes(port: int) -> dict[str, int]:
    """``svc_doc_changes_total`` of a running svc, summed over document types: how many
    notices it applied, ignored (a revision not newer: a duplicate or a redelivery), …"""
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{port}/metrics", timeout=aiohttp.ClientTimeout(total=10)) as got:
        text = await got.text()
    outcomes: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith("svc_doc_changes_total{"):
            labels, value = line.rsplit(" ", 1)
            outcome = labels.split('outcome="', 1)[1].split('"', 1)[0]
            outcomes[outcome] = outcomes.get(outcome, 0) + int(float(value))
    return outcomes


class SvcProcess:
    """One ``svc serve`` with a SQLite store; its output goes to a log file."""

    def __init__(self, amqp_url: str, db: Path, log: Path, node: str,
                 **settings: str) -> None:
        self.env = {**os.environ, "SVC_AMQP_URL": amqp_url, "SVC_STORE_URL": f"sqlite:///{db}",
                    "SVC_NODE": node, "SVC_HTTP_HOST": "127.0.0.1", "SVC_HTTP_PORT": "0",
                    "SVC_LOG_LEVEL": "WARNING", "SVC_SYNC_INTERVAL_S": "1",
                    **{f"SVC_{key.upper()}": value for key, value in settings.items()}}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> SvcProcess:
        with self.log.open("ab") as out:
            out.write(f"--- svc serve started at {time.strftime('%X')}\n".encode())
            self.process = subprocess.Popen([SVC, "serve"], env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT)
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        assert self.process is not None and self.running, self.tail()
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        assert self.process.returncode == -signal.SIGKILL

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, and the exit code of a clean stop (killed if it does not stop)."""
        assert self.process is not None
        if self.running:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise AssertionError(f"svc serve did not stop within {timeout} s\n"
                                 f"{self.tail()}") from None

    def reap(self) -> None:
        if self.running:
            assert self.process is not None
            self.process.kill()
            self.process.wait(timeout=10)

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text[-lines:])
