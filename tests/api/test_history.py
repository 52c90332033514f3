"""An account's history over real HTTP, against a running service whose
reseller bills through the webhook bookkeeper process: the deliveries and their retry (the
bookkeeper fails, then recovers), and the audit trail of every change, across a restart."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp
import pytest
from http_api import Api, add_devices
from waiting import eventually
from webhook import received, set_mode

from svc.app import Service
from svc.settings import BookkeeperSetting


@pytest.fixture
def settings(settings, http_bookkeeper):
    return settings.model_copy(update={"bookkeepers": {"webhook": BookkeeperSetting(
        adapter="http", url=f"{http_bookkeeper}/invoice", secret="s3cret", timeout_s=1)}})


async def billed(api, client, accounts, devices: int) -> None:
    """client_a on reseller A's plan with ``devices`` manual devices, synced once."""
    answer = await api.account("POST", accounts.client_a, "/services/manual",
                               body={"quantities": {"devices": {"sip_device": devices}}})
    assert answer.status == 200, answer.body
    synced = await api.account("POST", accounts.client_a, "/services/sync")
    assert synced.status == 200, synced.body


def retry_path(delivery_id: str) -> str:
    return f"/services/deliveries/{quote(delivery_id, safe='')}/retry"


async def test_a_failed_delivery_is_listed_and_retried_with_its_key(
        api, client, accounts, http_bookkeeper):
    reply = await client.call("bookkeeper_set", {"Account-ID": accounts.reseller_a,
                                                 "Bookkeeper": {"id": "webhook", "type": "http"}})
    assert reply["Status"] == "success", reply
    assert (await api.account("POST", accounts.client_a, "/services/gold")).status == 200
    await set_mode(http_bookkeeper, "error")
    await billed(api, client, accounts, devices=2)

    listed = await api.account("GET", accounts.client_a, "/services/deliveries")
    assert listed.status == 200 and listed.body["page_size"] == 1
    assert listed.body["next_start_key"] is None
    [failed] = listed.body["data"]
    assert failed["id"] == f"{accounts.client_a}|webhook|http|{accounts.reseller_a}|1"
    assert (failed["state"], failed["attempts"], failed["snapshot_seq"]) == ("failed", 1, 1)
    assert [r["outcome"] for r in failed["results"]] == ["failed"]
    assert failed["bookkeeper"] == {"id": "webhook", "type": "http",
                                    "vendor_id": accounts.reseller_a}
    assert failed["updated_at_iso"].endswith("Z")  # and updated_at in Gregorian seconds

    await set_mode(http_bookkeeper, "ok")
    retried = await api.account("POST", accounts.client_a, retry_path(failed["id"]),
                                body={"reason": "the bookkeeper is back"})
    assert retried.status == 200, retried.body
    delivery = retried.body["data"]
    assert (delivery["state"], delivery["attempts"]) == ("answered", 2)
    assert [r["outcome"] for r in delivery["results"]] == ["failed", "good_standing"]
    assert (delivery["idempotency_key"], delivery["content"]) == (
        failed["idempotency_key"], failed["content"])
    sent = await received(http_bookkeeper)
    assert [entry["mode"] for entry in sent] == ["error", "ok"]
    assert {entry["body"]["idempotency_key"] for entry in sent} == {failed["idempotency_key"]}
    shown = await api.account("GET", accounts.client_a, "/services/deliveries")
    assert shown.body["data"] == [delivery]

    again = await api.account("POST", accounts.client_a, retry_path(failed["id"]))
    assert again.error == (409, "conflict")  # answered: not re-sent
    elsewhere = await api.account("POST", accounts.client_b, retry_path(failed["id"]))
    assert elsewhere.error == (404, "bad_identifier")
    assert len(await received(http_bookkeeper)) == 2


async def test_deliveries_are_newest_first_in_pages(api, client, accounts):
    reply = await client.call("bookkeeper_set", {"Account-ID": accounts.reseller_a,
                                                 "Bookkeeper": {"id": "books", "type": "local"}})
    assert reply["Status"] == "success", reply
    assert (await api.account("POST", accounts.client_a, "/services/gold")).status == 200
    for devices in (1, 2, 3):
        await billed(api, client, accounts, devices)

    pages, start = [], None
    while True:
        query = "?page_size=2" + (f"&start_key={quote(start, safe='')}" if start else "")
        page = await api.account("GET", accounts.client_a, "/services/deliveries" + query)
        assert page.status == 200, page.body
        pages.append([d["snapshot_seq"] for d in page.body["data"]])
        assert page.body["page_size"] == len(page.body["data"])
        start = page.body["next_start_key"]
        if start is None:
            break
    assert pages == [[3, 2], [1]]

    unknown = await api.account("GET", accounts.client_a,
                                "/services/deliveries?start_key=nope")
    assert unknown.status == 400
    bad_size = await api.account("GET", accounts.client_a, "/services/deliveries?page_size=0")
    assert bad_size.status == 400
    empty = await api.account("GET", accounts.client_b, "/services/deliveries")
    assert empty.body["data"] == [] and empty.body["next_start_key"] is None


async def test_retry_of_an_unknown_delivery_or_outside_the_tree_is_not_found(api, accounts):
    unknown = await api.account("POST", accounts.client_a, retry_path("nope"))
    assert unknown.error == (404, "bad_identifier")
    outside = await api.account("GET", accounts.client_b, "/services/deliveries",
                                token="client_a")
    assert outside.error == (404, "bad_identifier")


async def audit_page(api, account_id: str, query: str = "") -> dict:
    answer = await api.account("GET", account_id, "/services/audit" + query)
    assert answer.status == 200, answer.body
    return answer.body


async def test_every_change_is_in_the_audit_trail_in_order_across_a_restart(
        settings, service, api, client, channel, accounts, http_bookkeeper):
    account, reseller = accounts.client_a, accounts.reseller_a
    reply = await client.call("bookkeeper_set", {
        "Account-ID": reseller, "Bookkeeper": {"id": "webhook", "type": "http"},
        "Reason": "billing moves to the webhook"})
    assert reply["Status"] == "success", reply
    for method, path, body in (
            ("POST", "/services/gold", {"reason": "trial"}),
            ("POST", "/services/overrides", {"overrides": {"users": {"user": {"rate": 1}}}}),
            ("POST", "/services/manual", {"quantities": {"users": {"user": 2}}}),
            ("PUT", "/reseller", None), ("DELETE", "/reseller", None)):
        answer = await api.account(method, account, path, body=body)
        assert answer.status == 200, (path, answer.body)
    await add_devices(channel, account, 2)

    async def counted() -> bool:
        entries = (await audit_page(api, account))["data"]
        return entries[0]["action"] == "quantities_daily" and entries[0]["after"] == {
            "devices": {"sip_device": {"added": 2, "removed": 0}}}

    await eventually(counted)
    await set_mode(http_bookkeeper, "delinquent")
    assert (await api.account("POST", account, "/services/sync")).status == 200
    assert (await api.account("DELETE", account, "/services/gold")).status == 200

    trail = (await audit_page(api, account))["data"]
    assert [entry["action"] for entry in reversed(trail)] == [
        "plan_assigned", "overrides_set", "manual_set", "reseller_promoted",
        "reseller_demoted", "quantities_daily", "delivery", "status_changed", "plan_removed"]
    by_action = {entry["action"]: entry for entry in trail}
    assigned = by_action["plan_assigned"]
    assert assigned["who"] == {"kind": "token", "name": "master"}
    assert assigned["reason"] == "trial" and assigned["account_id"] == account
    assert assigned["before"] == {} and list(assigned["after"]) == ["gold"]
    assert by_action["quantities_daily"]["who"] == {"kind": "notice", "name": "doc_change"}
    assert by_action["status_changed"]["before"] == {"status": "good_standing"}
    assert by_action["status_changed"]["after"] == {"status": "delinquent"}
    assert by_action["delivery"]["after"]["state"] == "answered"
    assert all(entry["at_iso"].endswith("Z") for entry in trail)

    vendor = (await audit_page(api, reseller))["data"]
    # the reseller's cascade counts its customer's devices
    assert [entry["action"] for entry in vendor] == [
        "quantities_daily", "bookkeeper_set", "plan_edited"]
    assert vendor[1]["who"]["kind"] == "amqp"
    assert vendor[1]["reason"] == "billing moves to the webhook"

    rpc = await client.call("audit", {"Account-ID": account, "Page-Size": 100})
    assert rpc["Entries"] == trail
    pages, start = [], None
    while True:
        page = await audit_page(api, account, "?page_size=4" + (
            f"&start_key={start}" if start else ""))
        pages += page["data"]
        start = page["next_start_key"]
        if start is None:
            break
    assert pages == trail
    since = by_action["delivery"]["at_iso"]  # Gregorian seconds are whole: ISO is finer
    recent = await audit_page(api, account, f"?since={since}")
    assert [entry["action"] for entry in recent["data"]] == [
        "plan_removed", "status_changed", "delivery"]
    older = await audit_page(api, account, f"?until={since}&page_size=2")
    assert [entry["action"] for entry in older["data"]] == ["delivery", "quantities_daily"]
    # one entry by its id (cb_services validate AUDIT, AuditId); not another account's
    newest = trail[0]
    one = await api.account("GET", account, f"/services/audit/{newest['id']}")
    assert one.body["data"] == newest, one.body
    assert (await api.account("GET", reseller, f"/services/audit/{newest['id']}")
            ).error == (404, "bad_identifier")
    # KAZOO's names (cb_services load_audit_logs: crossbar_view's created_from/created_to)
    at = by_action["delivery"]["at"]  # Gregorian seconds, as KAZOO's clients send them
    assert (await audit_page(api, account, f"?created_from={at}"))["data"] == (
        await audit_page(api, account, f"?since={at}"))["data"]
    assert (await audit_page(api, account, f"?created_to={since}&page_size=2"))["data"] == (
        older["data"])

    await service.stop()
    restarted = Service(settings)
    await restarted.start()
    try:
        async with aiohttp.ClientSession() as session:
            again = Api(session, f"http://127.0.0.1:{restarted.probes.port}")
            assert (await audit_page(again, account, "?page_size=100"))["data"] == trail
    finally:
        await restarted.stop()
