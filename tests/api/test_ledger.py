"""Seeing what was billed, over real HTTP and AMQP against a running service: each delivery
shows the invoice it carried, and the local bookkeeper's ledger is listed per account and
period, as JSON or CSV; times are Gregorian seconds; ``reason`` is bounded; an audit entry
is written only when something changed."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from http_api import secret

from svc.models.fields import GREGORIAN_OFFSET

LEDGER = "/services/ledger"


async def billed(api, account: str) -> None:
    """The gold plan (devices at 2, 5 to activate each) with 2 devices, synced to the local
    bookkeeper (the default)."""
    assert (await api.account("POST", account, "/services/gold")).status == 200
    manual = await api.account("POST", account, "/services/manual",
                               body={"quantities": {"devices": {"sip_device": 2}}})
    assert manual.status == 200, manual.body
    synced = await api.account("POST", account, "/services/sync")
    assert synced.status == 200, synced.body


async def test_a_delivery_shows_the_invoice_it_carried(api, client, accounts):
    await billed(api, accounts.client_a)
    [delivery] = (await api.account("GET", accounts.client_a, "/services/deliveries")
                  ).body["data"]
    invoice = delivery["invoice"]
    assert invoice["summary"] == {"recurring": 4, "today": 10}
    [item] = [item for item in invoice["items"] if item["category"] == "devices"]
    assert (item["quantity"], item["rate"], item["total"]) == (2, 2, 4)
    assert [(c["billable"], c["rate"], c["total"]) for c in invoice["activation_charges"]] == [
        (2, 5, 10)]
    assert isinstance(delivery["updated_at"], int) and delivery["updated_at"] > GREGORIAN_OFFSET
    rpc = await client.call("deliveries", {"Account-ID": accounts.client_a})
    assert rpc["Deliveries"][0]["invoice"] == invoice


async def test_the_local_ledger_is_listed_per_account_and_period(api, client, accounts):
    await billed(api, accounts.client_a)
    listed = await api.account("GET", accounts.client_a, LEDGER)
    assert listed.status == 200, listed.body
    [entry] = listed.body["data"]
    [delivery] = (await api.account("GET", accounts.client_a, "/services/deliveries")
                  ).body["data"]
    assert entry["invoice"] == delivery["invoice"]
    assert (entry["account_id"], entry["sync_id"], entry["idempotency_key"]) == (
        accounts.client_a, "1", delivery["idempotency_key"])
    at = entry["at"]
    assert at > GREGORIAN_OFFSET and entry["at_iso"].endswith("Z")

    async def period(query: str) -> list:
        answer = await api.account("GET", accounts.client_a, f"{LEDGER}?{query}")
        assert answer.status == 200, answer.body
        return answer.body["data"]

    assert await period(f"from={at}&to={at + 1}") == [entry]
    assert await period(f"from={at + 1}") == []
    assert await period(f"to={at}") == []  # the end is excluded
    assert await period(f"from={entry['at_iso'].replace('Z', '%2B00:00')}") == [entry]
    assert (await api.account("GET", accounts.client_b, LEDGER)).body["data"] == []
    rpc = await client.call("ledger", {"Account-ID": accounts.client_a, "From": at})
    assert rpc["Entries"] == [entry]


async def test_the_ledger_as_csv_adds_up(api, accounts):
    await billed(api, accounts.client_a)
    url = f"{api.base}/v2/accounts/{accounts.client_a}{LEDGER}"
    token = {"X-Auth-Token": secret("master")}
    async with api.session.get(url, headers={**token, "Accept": "text/csv"}) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/csv")
        text = await response.text()
    async with api.session.get(url + "?accept=csv", headers=token) as response:
        assert await response.text() == text
    rows = list(csv.DictReader(io.StringIO(text)))
    by_line = {}
    for row in rows:
        by_line.setdefault(row["line"], []).append(row)
    assert [r["total"] for r in by_line["recurring_total"]] == ["4"]
    assert [r["total"] for r in by_line["today_total"]] == ["10"]
    assert sum(Decimal(r["total"]) for r in by_line["item"]) == 4
    assert sum(Decimal(r["total"]) for r in by_line["activation_charge"]) == 10
    assert {r["account_id"] for r in rows} == {accounts.client_a}


async def test_the_ledger_refuses_a_bad_period_and_accounts_outside_the_tree(api, accounts):
    bad = await api.account("GET", accounts.client_a, f"{LEDGER}?from=yesterday")
    assert bad.status == 400 and "?from" in bad.body["data"]
    early = await api.account("GET", accounts.client_a, f"{LEDGER}?to=5")
    assert early.status == 400 and "Gregorian seconds from" in str(early.body["data"])
    outside = await api.account("GET", accounts.client_b, LEDGER, token="reseller_a")
    assert outside.status == 404 and outside.body["error"] == "404"


async def test_audit_times_are_gregorian_and_since_takes_them(api, accounts):
    account = accounts.client_a
    assert (await api.account("POST", account, "/services/gold")).status == 200
    [entry] = (await api.account("GET", account, "/services/audit")).body["data"]
    assert isinstance(entry["at"], int) and entry["at"] > GREGORIAN_OFFSET
    since = await api.account("GET", account, f"/services/audit?since={entry['at']}")
    assert since.body["data"] == [entry]
    later = await api.account("GET", account, f"/services/audit?since={entry['at'] + 1}")
    assert later.body["data"] == []


async def test_a_reason_longer_than_1024_characters_is_refused_and_nothing_is_stored(
        api, client, accounts):
    account = accounts.client_a
    refused = await api.account("POST", account, "/services/gold",
                                body={"reason": "x" * 1025})
    assert refused.status == 400
    assert "reason" in refused.body["data"]
    assert (await api.account("GET", account, "/services")).body["data"] == {}  # none assigned
    assert (await api.account("GET", account, "/services/audit")).body["data"] == []

    rpc = await client.call("assign_plan", {"Account-ID": account, "Plan-ID": "gold",
                                            "Reason": "y" * 1025})
    assert "Reason" in rpc["Error-Message"]
    assert (await api.account("GET", account, "/services")).body["data"] == {}

    kept = await api.account("POST", account, "/services/gold", body={"reason": "z" * 1024})
    assert kept.status == 200
    [entry] = (await api.account("GET", account, "/services/audit")).body["data"]
    assert entry["reason"] == "z" * 1024


async def test_assigning_an_assigned_plan_writes_no_audit_entry(api, accounts):
    account = accounts.client_a
    for _ in range(2):
        assert (await api.account("POST", account, "/services/gold")).status == 200
    trail = (await api.account("GET", account, "/services/audit")).body["data"]
    assert [entry["action"] for entry in trail] == ["plan_assigned"]
