"""svc against a three-node RabbitMQ cluster loses the node it is connected to (kill -9) while
doc-change notices flow, RPCs are asked and accounts are synced to a bookkeeper.

``SVC_AMQP_URL`` lists the three nodes; svc's queues are quorum queues, replicated on all of
them. Afterwards: svc answered RPCs again within 15 s of the kill (only the requests asked
around the kill failed), the stored quantities equal an exact recount (no notice lost, none
counted twice), the ``quantities_change`` events add up exactly to them (every event arrived
once the outbox relay was on another node), and each snapshot was charged under one key.

The nodes are the test's own (``rabbitnodes.cluster``: own names, ports, data, cookie); the
shared broker is not touched. Forming the cluster takes most of the test's time.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import aiohttp
import pytest
import rabbitnodes
from faultkit import (
    ResilientPublisher,
    Workload,
    check_store,
    free_port,
    normal,
    notice_outcomes,
    wait_for,
    wait_until_consuming,
    workload,
)
from processes import local_server

from svc.amqp import topology
from svc.amqp.client import ServicesClient
from svc.store import AccountFields, DocChange, Repository
from svc.store.sqlite import SQLiteStore

HERE = Path(__file__).resolve().parent
NOTICES = 3_000
RATE = 250  # notices per second: the stream lasts 12 s, the kill strikes in it
KILL_AFTER = 1_000  # notices confirmed when the node is killed
RPC_TIMEOUT_S = 5.0  # a busy machine answers slowly; a lost request is what is looked for
RESUME_WITHIN_S = 15.0
PLAN = {"plan": {"devices": {"_all": {"rate": 2, "activation_charge": 5}},
                 "users": {"_all": {"rate": 3}}}}
PROBE = "cluster-events-probe"


@dataclass
class RpcProbe:
    """Asks ``summary`` over and over on its own connection, and notes each outcome."""

    url: str
    account_id: str
    calls: list[tuple[float, float, bool]] = field(default_factory=list)  # sent, ended, ok
    errors: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        async with ServicesClient(self.url, node="svc-probe@cluster") as client:
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    reply = await client.call("summary", {"Account-ID": self.account_id},
                                              timeout=RPC_TIMEOUT_S)
                    ok = reply.get("Status") == "success"
                    if not ok:
                        self.errors.append(f"{reply.get('Reason')}: {reply.get('Message')}")
                except Exception as error:  # noqa: BLE001 - a timeout, or the node is busy
                    ok = False
                    self.errors.append(repr(error))
                self.calls.append((sent, time.monotonic(), ok))
                await asyncio.sleep(0.05)

    def first_success_after(self, moment: float) -> float | None:
        return next((ended for sent, ended, ok in self.calls if ok and sent > moment), None)


async def populate(db: Path, work: Workload, master: str) -> None:
    """The workload's master bills every account below it through the ``ledger`` webhook."""
    store = SQLiteStore(db)
    await store.open()
    repo = Repository(store, master_account_id=master)
    await repo.apply_doc_change(DocChange(master, master, "account", 1,
                                          account=AccountFields((), True)))
    await repo.put_plan(master, "p", PLAN)
    await repo.set_default_plan(master, "p")
    await repo.edit_services(master, lambda doc: {**doc, "bookkeeper": {"id": "ledger",
                                                                        "type": "http"}})
    async for entry in store.scan("outbox"):  # the set-up's own events are not under test
        await store.delete("outbox", entry.key, entry.version)
    await store.close()


async def synced_clean(db: Path, accounts: list[str]) -> bool:
    store = SQLiteStore(db)
    await store.open()
    try:
        found = await store.get_many("services", accounts)
        return all(account in found and not found[account].doc["dirty"]
                   for account in accounts)
    finally:
        await store.close()


async def outbox_size(db: Path) -> int:
    store = SQLiteStore(db)
    await store.open()
    try:
        return len([entry async for entry in store.scan("outbox")])
    finally:
        await store.close()


async def bind_probe(url: str) -> None:
    """A quorum queue catching every event svc publishes (it survives the kill)."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        services = (await topology.declare_exchanges(channel))["services"]
        queue = await channel.declare_queue(PROBE, durable=True,
                                            arguments={"x-queue-type": "quorum"})
        await queue.bind(services, routing_key="services.#")


async def probed_events(url: str) -> dict[str, dict]:
    """The events caught, by ``Msg-ID`` (at least once: repeats share one)."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(PROBE, passive=True)
        events: dict[str, dict] = {}
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            event = json.loads(message.body)
            events.setdefault(event["Msg-ID"], event)
        return events


def connections_on(nodes: list[rabbitnodes.RabbitNode], node: str) -> dict[int, int]:
    """AMQP port → how many of ``node``'s (svc's) connections are on it."""
    listing = nodes[-1].ctl("list_connections", "-q", "--no-table-headers", "port",
                            "client_properties")
    ports: dict[int, int] = defaultdict(int)
    for line in listing.splitlines():
        if f'"{node} ' in line:
            ports[int(line.split()[0])] += 1
    return dict(ports)


def queue_counts(node: rabbitnodes.RabbitNode, name: str) -> tuple[int, int]:
    """(ready, unacknowledged) of a queue."""
    out = node.ctl("list_queues", "-q", "--no-table-headers", "name", "messages_ready",
                   "messages_unacknowledged")
    for line in out.splitlines():
        queue, ready, unacked = line.split()
        if queue == name:
            return int(ready), int(unacked)
    raise AssertionError(f"no {name}: {out!r}")


async def ledger_state(url: str) -> dict:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/state") as answer:
        return await answer.json()


@pytest.mark.timeout(240)
async def test_kill9_of_the_node_svc_uses(tmp_path, svc_processes):
    if rabbitnodes.scripts() is None:
        pytest.skip(rabbitnodes.MISSING)
    work = workload(NOTICES, seed=19)
    master = next(a for a, tree in work.trees.items() if not tree)
    accounts = sorted(work.trees)
    db = tmp_path / "svc.db"
    await populate(db, work, master)
    began = time.monotonic()
    with rabbitnodes.cluster(tmp_path / "cluster") as nodes, \
            local_server(HERE / "ledger_bookkeeper.py") as ledger:
        formed_in = time.monotonic() - began
        doomed, *survivors = nodes
        await bind_probe(survivors[0].url)
        port, node = free_port(), "services@cluster"
        svc = svc_processes(
            ",".join(n.url for n in nodes), db, tmp_path / "svc.log", node,
            http_port=str(port), master_account_id=master, sync_interval_s="0.5",
            sync_retry_base_s="0.2", bookkeepers=json.dumps({"ledger": {
                "adapter": "http", "url": f"{ledger}/invoice", "secret": "s3cret"}})).start()
        await wait_until_consuming(survivors[0].url)
        # replicated on all three: a quorum queue's members
        for queue in (topology.RPC_QUEUE, topology.DOC_CHANGES_QUEUE):
            members = survivors[0].ctl("list_queues", "-q", "--no-table-headers", "name",
                                       "members")
            line = next(line for line in members.splitlines() if line.startswith(queue))
            assert all(n.node in line for n in nodes), line
        # svc took the first URL that answered: the node about to be killed
        assert connections_on(nodes, node) == {doomed.port: 3}, svc.tail()

        rpc = RpcProbe(",".join(n.url for n in survivors), master)
        asking = asyncio.create_task(rpc.run())
        publisher = ResilientPublisher(survivors[0].url)
        publishing = asyncio.create_task(publisher.publish(
            [(n.routing_key, n.body) for n in work.notices], deadline_s=120, rate=RATE))

        async def published() -> bool:
            return publisher.published >= KILL_AFTER
        await wait_for(published, 60, "publishing under way", interval=0.01)
        await wait_for(lambda: _synced_once(ledger), 30, "a first charge", interval=0.1)
        killed_at = time.monotonic()
        await asyncio.to_thread(doomed.kill9)

        async def answering_again() -> bool:
            assert svc.running, svc.tail()
            return rpc.first_success_after(killed_at) is not None
        await wait_for(answering_again, RESUME_WITHIN_S + RPC_TIMEOUT_S + 5,
                       "svc answering RPC after the kill", interval=0.1)
        resumed_in = rpc.first_success_after(killed_at) - killed_at
        async with asyncio.timeout(120):
            await publishing

        async def settled() -> bool:
            assert svc.running, svc.tail()
            ready, unacked = await asyncio.to_thread(queue_counts, survivors[0],
                                                     topology.DOC_CHANGES_QUEUE)
            return (ready, unacked) == (0, 0) and await synced_clean(db, accounts) and \
                await outbox_size(db) == 0
        await wait_for(settled, 90, "notices consumed, accounts synced, outbox relayed",
                       interval=0.25)
        rpc.stop.set()
        await asyncio.wait_for(asking, RPC_TIMEOUT_S + 5)
        outcomes = await notice_outcomes(port)
        reconnected = connections_on(nodes, node)
        assert svc.terminate() == 0, svc.tail()
        output = (tmp_path / "svc.log").read_text()
        events = await probed_events(survivors[0].url)
        state = await ledger_state(ledger)

    # RPC: answered again within 15 s of the kill; only requests asked around it failed
    assert resumed_in <= RESUME_WITHIN_S, f"RPC resumed {resumed_in:.1f} s after the kill"
    failed = [(sent, ended) for sent, ended, ok in rpc.calls if not ok]
    assert all(killed_at - RPC_TIMEOUT_S - 0.5 <= sent <= killed_at + resumed_in
               for sent, _ in failed), (killed_at, failed, rpc.errors)
    assert set(reconnected) <= {n.port for n in survivors} and sum(reconnected.values()) == 3
    assert "Traceback" not in output, output
    for line in ("broker connection lost", "broker reconnected"):  # one line each way
        assert output.count(line) == 1, output
    # notices: every one applied or ignored as a repeat, and the recount is exact
    applied, ignored = outcomes.get("applied", 0), outcomes.get("ignored", 0)
    assert applied <= NOTICES <= applied + ignored, outcomes
    await check_store(db, work)
    # events: the quantities_change events add up to what was counted, none missing
    added: dict[str, dict[str, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(int)))
    for event in events.values():
        if event["Event-Name"] == "quantities_change":
            for change in event["Changes"]:
                if change["scope"] == "account":
                    added[change["account_id"]][change["category"]][change["item"]] += \
                        change["current"] - change["previous"]
    expected = work.expected()
    assert {a: normal(added[a]) for a in accounts} == \
        {a: expected[a]["account"] for a in accounts}
    # charges: one key per snapshot of an account, one call at a time
    keys: dict[tuple[str, str], set[str]] = defaultdict(set)
    for request in state["requests"]:
        keys[(request["account_id"], request["sync_id"])].add(request["key"])
    assert all(len(found) == 1 for found in keys.values()), keys
    assert all(most == 1 for most in state["most_in_flight"].values()), state["most_in_flight"]
    assert {body["account_id"] for body in state["charges"].values()} >= \
        {a for a in accounts if expected[a]["account"] and a != master}  # the master pays none
    print(f"\nbroker cluster: formed in {formed_in:.1f} s; RPC answered again "
          f"{resumed_in:.1f} s after the kill ({len(failed)} of {len(rpc.calls)} calls "
          f"failed); {applied:,} notices applied, {ignored} ignored as repeats; "
          f"{len(state['charges'])} charges")


async def _synced_once(ledger: str) -> bool:
    return bool((await ledger_state(ledger))["charges"])
