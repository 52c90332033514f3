"""A lagging CouchDB replica never costs a notice its place: the real broker at the default
delivery limit, the CouchDB-API test server as the document source, and a running svc. The
server has an older revision of the document than the notice announces for longer than the
lag budget times the delivery limit (the time after which a notice requeued at each budget's
end would have been dead-lettered); the notice is acked, the document recorded and re-read in
the background, and counted exactly once when the server has the notice's revision."""

from __future__ import annotations

import asyncio
import json
import uuid

import aiohttp
import pytest
from couchdb import create_db, write_revision
from prometheus_client.parser import text_string_to_metric_families
from waiting import eventually

from svc.amqp import notices as consumer_module
from svc.amqp.kazoo_notices import doc_change, publish
from svc.amqp.topology import DEAD_LETTER_QUEUE
from svc.ingest.databases import account_database
from svc.settings import Settings

DELIVERY_LIMIT = Settings.model_fields["delivery_limit"].default
LAG_BUDGET_S = 0.4
LAGGED_LONG_ENOUGH_S = LAG_BUDGET_S * DELIVERY_LIMIT + 0.5


@pytest.fixture
def settings(settings, couch_url) -> Settings:
    return Settings(**{**dict(settings), "delivery_limit": DELIVERY_LIMIT,
                       "couch_url": couch_url, "couch_lag_budget_s": LAG_BUDGET_S,
                       "couch_reread_s": 0.1, "couch_reread_max_s": 0.4})


@pytest.fixture(autouse=True)
def quick_reads(monkeypatch):
    """Reads within the budget come quickly, so the budget is spent in several reads (and a
    consumer that requeued after a number of reads would reach the limit within the lag)."""
    monkeypatch.setattr(consumer_module, "RETRY_BASE_S", 0.002)


async def dead_letters(channel):
    return await channel.declare_queue(DEAD_LETTER_QUEUE, durable=True,
                                       arguments={"x-queue-type": "quorum"})


async def metric(service, name: str, **labels: str) -> float:
    url = f"http://127.0.0.1:{service.probes.port}/metrics"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        text = await response.text()
    return sum(s.value for family in text_string_to_metric_families(text)
               for s in family.samples
               if s.name == name and labels.items() <= s.labels.items())


async def metric_is(service, name: str, value: float, **labels: str) -> bool:
    return await metric(service, name, **labels) == value


async def readyz(service) -> tuple[int, dict]:
    url = f"http://127.0.0.1:{service.probes.port}/readyz"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, json.loads(await response.text())


async def devices(service, account: str) -> dict | None:
    services = await service.repo.services(account)
    return None if services is None else services["quantities"]["account"].get("devices")


def revision(doc_id: str, rev: str, device_type: str) -> dict:
    return {"_id": doc_id, "_rev": rev, "pvt_type": "device", "device_type": device_type}


async def a_lagging_notice(channel, couch_url: str) -> tuple[str, str]:
    """The server has revision 1 of a device; its notice announces revision 2."""
    account = uuid.uuid4().hex
    database = account_database(account)
    await create_db(couch_url, database)
    await write_revision(couch_url, database, revision("d1", "1-aaa", "fax"), ["1-aaa"])
    await publish(channel, *doc_change({"_id": "d1", "pvt_type": "device"}, account, 2,
                                       with_doc=False))
    return account, database


async def test_a_notice_outlasting_the_delivery_limit_is_counted_once_the_replica_catches_up(
        service, channel, couch_url):
    dead = await dead_letters(channel)
    await dead.purge()
    started = asyncio.get_running_loop().time()
    account, database = await a_lagging_notice(channel, couch_url)

    async def lagged_long_enough() -> bool:
        return asyncio.get_running_loop().time() - started > LAGGED_LONG_ENOUGH_S

    await eventually(lagged_long_enough)
    assert await dead.get(fail=False) is None  # not dead-lettered
    assert await devices(service, account) is None  # revision 1 is never counted
    assert await metric(service, "svc_pending_rereads") == 1
    status, body = await readyz(service)
    assert (status, body["down"], body["pending_rereads"]) == (200, [], 1)  # information

    await write_revision(couch_url, database, revision("d1", "2-bbb", "sip_device"),
                         ["1-aaa", "2-bbb"])  # the replica catches up

    async def counted():
        return await devices(service, account) == {"sip_device": 1}

    await eventually(counted)
    await eventually(lambda: metric_is(service, "svc_pending_rereads", 0))
    assert (await readyz(service))[1]["pending_rereads"] == 0

    # the same notice again (KAZOO may publish twice): counted once all the same
    ignored = await metric(service, "svc_doc_changes_total", outcome="ignored")
    await publish(channel, *doc_change({"_id": "d1", "pvt_type": "device"}, account, 2,
                                       with_doc=False))
    await eventually(lambda: metric_is(service, "svc_doc_changes_total", ignored + 1,
                                       outcome="ignored"))
    assert await devices(service, account) == {"sip_device": 1}
    assert await dead.get(fail=False) is None


async def test_a_later_notice_supersedes_the_pending_reread(service, channel, couch_url):
    account, _ = await a_lagging_notice(channel, couch_url)
    await eventually(lambda: metric_is(service, "svc_pending_rereads", 1))
    # revision 3 arrives with its body: written at once, and the re-read of revision 2 goes
    await publish(channel, *doc_change(revision("d1", "3-ccc", "softphone"), account, 3))
    await eventually(lambda: metric_is(service, "svc_pending_rereads", 0))
    assert await devices(service, account) == {"softphone": 1}

