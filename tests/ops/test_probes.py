"""``/metrics``, ``/healthz`` and ``/readyz`` of a running service, with its
own metrics registry, against the real broker and store."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import aiohttp
import pytest
from broker import rabbitmqctl
from prometheus_client.parser import text_string_to_metric_families
from waiting import eventually

from svc.amqp.kazoo_notices import doc_change as notice
from svc.amqp.kazoo_notices import publish

METRICS = ("svc_rpc_requests", "svc_rpc_duration_seconds", "svc_doc_changes",
           "svc_dirty_accounts", "svc_oldest_dirty_account_age_seconds", "svc_sync_attempts",
           "svc_dead_letters", "svc_broker_connected")


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"sync_interval_s": 3600})  # accounts stay dirty


async def get(service, path: str) -> tuple[int, str]:
    url = f"http://127.0.0.1:{service.probes.port}{path}"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text()


async def samples(service) -> dict[tuple[str, frozenset], float]:
    status, text = await get(service, "/metrics")
    assert status == 200
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def sample(found, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_every_metric_is_exposed_with_its_help(service):
    status, text = await get(service, "/metrics")
    assert status == 200
    families = {family.name for family in text_string_to_metric_families(text)}
    assert set(METRICS) <= families
    found = await samples(service)
    assert sample(found, "svc_broker_connected") == 1
    assert sample(found, "svc_dirty_accounts") == 0


async def test_requests_notices_and_dead_letters_are_counted(service, client, channel):
    await client.call("summary", {"Account-ID": "nobody"})
    await client.call("summary", {"Account-ID": 7})
    reply = await client.call("quote_req", {"Quote-Request": {"plans": [], "items": {}}})
    assert reply["Status"] == "success"
    account = uuid.uuid4().hex
    await publish(channel, *notice({"_id": "d1", "pvt_type": "device"}, account))
    await publish(channel, *notice({"_id": "d2", "pvt_type": "device"}, account,
                                   with_doc=False))

    async def counted():
        found = await samples(service)
        done = (sample(found, "svc_dead_letters_total", reason="no_document_source")
                and sample(found, "svc_doc_changes_total", type="device", outcome="applied"))
        return found if done else None

    found = await eventually(counted)
    assert sample(found, "svc_rpc_requests_total", category="summary", event="summary_req",
                  status="error") == 1
    assert sample(found, "svc_rpc_requests_total", category="unknown", event="unknown",
                  status="invalid") == 0
    assert sample(found, "svc_rpc_requests_total", category="summary", event="summary_req",
                  status="invalid") == 1
    assert sample(found, "svc_rpc_requests_total", category="quote", event="quote_req",
                  status="success") == 1
    assert sample(found, "svc_rpc_duration_seconds_count", category="summary") == 2
    assert sample(found, "svc_doc_changes_total", type="device", outcome="applied") == 1
    assert sample(found, "svc_doc_changes_total", type="other", outcome="dead_lettered") == 1
    assert sample(found, "svc_dirty_accounts") == 1  # a pending account is dirty too
    assert sample(found, "svc_oldest_dirty_account_age_seconds") >= 0


async def test_unknown_request_names_do_not_become_labels(service, client):
    reply = await client.call("no_such_thing_req", category="summary")
    assert "Error-Message" in reply
    found = await samples(service)
    assert not any("no_such_thing" in str(labels) for _, labels in found)
    assert sample(found, "svc_rpc_requests_total", category="unknown", event="unknown",
                  status="invalid") == 1


async def test_healthz_and_readyz_with_the_bookkeepers(service):
    status, body = await get(service, "/healthz")
    assert (status, json.loads(body)["status"]) == (200, "ok")
    status, body = await get(service, "/readyz")
    report = json.loads(body)
    assert (status, report["status"], report["down"]) == (200, "ready", [])
    assert report["bookkeepers"] == [{"id": "default_bookkeeper", "adapter": "local",
                                      "last_result": None}]


async def test_readyz_names_the_store_when_it_is_gone(service):
    await service.store.close()
    status, body = await get(service, "/readyz")
    assert status == 503 and json.loads(body)["down"] == ["store"]


def close_connections_of(amqp_url: str, connection_name: str) -> int:
    vhost = unquote(urlsplit(amqp_url).path[1:])
    listing = rabbitmqctl("--quiet", "list_connections", "pid", "vhost", "client_properties")
    pids = [line.split("\t")[0] for line in listing.splitlines()
            if f"\t{vhost}\t" in line and f'"{connection_name}"' in line]
    for pid in pids:
        rabbitmqctl("close_connection", pid, "svc test: connection lost")
    return len(pids)


@contextlib.contextmanager
def lost_connection(amqp_url: str, connection_name: str) -> Iterator[None]:
    """That connection is closed by the broker, and svc's attempts to open it again are
    refused (the test's virtual host takes no new connection) until the block ends: svc
    retries at once, so a connection merely closed would be back before it is seen gone."""
    vhost = unquote(urlsplit(amqp_url).path[1:])
    rabbitmqctl("set_vhost_limits", "-p", vhost, '{"max-connections": 0}')
    try:
        assert close_connections_of(amqp_url, connection_name) == 1
        yield
    finally:
        rabbitmqctl("set_vhost_limits", "-p", vhost, '{"max-connections": -1}')


async def test_readyz_and_gauge_follow_the_broker_connection(service, amqp_url):
    with lost_connection(amqp_url, f"{service.settings.node} ingest"):
        async def down():
            status, body = await get(service, "/readyz")
            return status == 503 and "amqp" in json.loads(body)["down"]

        await eventually(down, timeout=10)
        assert sample(await samples(service), "svc_broker_connected") == 0

    async def back():  # the robust connection reconnects and restores its consumers
        status, _ = await get(service, "/readyz")
        return status == 200

    await eventually(back, timeout=30)
    assert sample(await samples(service), "svc_broker_connected") == 1


async def test_a_lost_ingest_connection_does_not_stop_rpc(service, client, amqp_url):
    """Failure domains: the RPC connection answers while ingest's is gone."""
    outbound, rpc, ingest = service.connections
    with lost_connection(amqp_url, f"{service.settings.node} ingest"):
        async def ingest_down():
            return not ingest.connected.is_set()

        await eventually(ingest_down, timeout=5)
        reply = await client.call("reseller_get_req", {"Account-ID": "nobody"}, timeout=3)
        assert reply["Reason"] == "account_not_found"
        assert outbound.connected.is_set() and rpc.connected.is_set()
