"""Requests exactly as Monster UI 4.3 builds them, for the routes svc serves, and the fields
Monster reads from the answers. Sources (branch 4.3): M = 2600hz/monster-ui,
MA = 2600hz/monster-ui-accounts, MV = 2600hz/monster-ui-voip.

Monster's SDK (M src/js/lib/jquery.kazoosdk.js:684-685) sends the token as X-Auth-Token; on
every write it sends ``{"data": {…, "ui_metadata": {…}}}`` (jquery.kazoosdk.js:766-778, and
M src/js/lib/monster.js:211-221 for monster.request), with ``accept_charges: true`` beside
``data`` when the app asks for it; the browser sends a preflight first (the API is on another
origin in most deployments)."""

from __future__ import annotations

import csv
import io

from http_api import PLAN, add_devices
from kazoo_tokens import kazoo_token
from waiting import eventually

UI_METADATA = {"version": "4.3-85", "ui": "monster-ui", "origin": "accounts"}  # monster.js:217


def monster(payload: dict | None = None, accept_charges: bool = False) -> dict:
    """The body jquery.kazoosdk.js:766-778 builds for a non-GET request."""
    body = {"data": {**(payload or {}), "ui_metadata": UI_METADATA}}
    if accept_charges:
        body["accept_charges"] = True
    return body


async def preflight(api, path: str, method: str) -> None:
    async with api.session.options(api.base + path, headers={
            "Origin": "https://monster.example", "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type,x-auth-token"}) as response:
        assert response.status == 200
        assert method in response.headers["Access-Control-Allow-Methods"]
        assert "x-auth-token" in response.headers["Access-Control-Allow-Headers"]


async def test_accounts_app_promotes_and_demotes(api, accounts):
    """MA app.js:1309-1331 (resource at 1317) calls account.promote / account.demote (M
    jquery.kazoosdk.js:38-39: PUT and DELETE accounts/{accountId}/reseller) with data
    {accountId} only, so the body is Monster's envelope with ui_metadata alone; MA reads
    nothing back but success."""
    token = kazoo_token(accounts.master, owner_id="admin")  # a super-duper admin's login
    path = f"/v2/accounts/{accounts.client_a}/reseller"
    for method in ("PUT", "DELETE"):
        await preflight(api, path, method)
        answer = await api.call(method, path, raw_token=token, body=monster(),
                                headers={"Origin": "https://monster.example"})
        assert (answer.status, answer.body["status"]) == (200, "success"), answer.body
        assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert (await api.account("GET", accounts.client_a, "/reseller")).body["data"][
        "is_reseller"] is False


async def test_myaccount_service_plan_tab_reads_the_summary(api, accounts):
    """M src/apps/myaccount/submodules/servicePlan/servicePlan.js:150-158 calls
    services.getSummary (jquery.kazoosdk.js:440: GET accounts/{accountId}/services/summary)
    and reads invoices[].items[] and billing_cycle.next (servicePlan.js:93-130)."""
    await api.account("POST", accounts.client_a, "/services/gold", token="reseller_a")
    token = kazoo_token(accounts.client_a, owner_id="user1")  # the client's own login
    path = f"/v2/accounts/{accounts.client_a}/services/summary"
    answer = await api.call("GET", path, raw_token=token,
                            headers={"Origin": "https://monster.example"})
    assert answer.status == 200 and answer.body["auth_token"] == token
    data = answer.body["data"]
    [invoice] = data["invoices"]
    assert invoice["plan"] == PLAN["plan"]  # the merged plan (kz_services_invoice:public_json)
    assert invoice["taxes"] == [] and invoice["bookkeeper"]["type"] == "local"
    assert invoice["items"], invoice
    for item in invoice["items"]:  # what servicePlan.js:93-130 renders
        assert {"billable", "total", "name", "category", "item", "rate"} <= item.keys()
    assert isinstance(data["billing_cycle"]["next"], int)
    assert data["status"]["acceptable"] is True


async def test_voip_app_lists_its_licensed_user_roles(api, accounts, client):
    """MV app.js:103-109 calls services.listAvailable (jquery.kazoosdk.js:442) with the query
    paginate=false&filter_merge.strategy=cumulative and keys data[] by id (MV app.js:112):
    its licensed-user roles are the reseller's cumulative plans only (crossbar_filter.erl)."""
    role = {"name": "Call Center Agent", "merge": {"strategy": "cumulative"},
            "plan": {"users": {"user": {"rate": 7}}}}
    await client.call("plan_put", {"Account-ID": accounts.reseller_a,
                                   "Plan": {"id": "agent", "doc": role}})
    token = kazoo_token(accounts.client_a)
    path = f"/v2/accounts/{accounts.client_a}/services/available"
    answer = await api.call("GET", path + "?paginate=false&filter_merge.strategy=cumulative",
                            raw_token=token)
    assert answer.status == 200
    assert {plan["id"]: plan["name"] for plan in answer.body["data"]} == {
        "agent": "Call Center Agent"}
    assert "doc" not in answer.body["data"][0]
    every = await api.call("GET", path + "?details=true", raw_token=token)
    assert {plan["id"]: plan["doc"] for plan in every.body["data"]} == {
        "agent": role, "gold": PLAN}
    others = await api.call("GET", path + "?filter_not_merge.strategy=cumulative",
                            raw_token=token)
    assert [plan["id"] for plan in others.body["data"]] == ["gold"]


async def test_a_client_login_cannot_change_its_own_billing(api, accounts):
    """What Monster would send if a client's user tried (a crafted request: Monster shows
    these controls to resellers and super-duper admins only); KAZOO refuses it, svc too."""
    token = kazoo_token(accounts.client_a, owner_id="user1")
    for method, path, payload in (("PUT", "/reseller", None),
                                  ("POST", "/services/gold", {"overrides": {}})):
        answer = await api.account(method, accounts.client_a, path, raw_token=token,
                                   body=monster(payload, accept_charges=True))
        assert answer.error == (403, "forbidden")


async def test_accounts_wizard_assigns_its_plans_in_one_bulk_change(api, accounts, client):
    """MA submodules/wizard/wizard.js (~1744, ~1969) ends the new-account wizard with
    services.bulkChange: ``{data: {add: [plan ids]}, accept_charges: true}`` posted to
    accounts/{accountId}/services/ (a trailing slash), by the reseller's login; it reads
    success. KAZOO answers the assigned plans (cb_services post/1)."""
    await client.call("plan_put", {"Account-ID": accounts.reseller_a,
                                   "Plan": {"id": "silver", "doc": {"plan": {}}}})
    token = kazoo_token(accounts.reseller_a, owner_id="admin")
    path = f"/v2/accounts/{accounts.client_a}/services/"
    await preflight(api, path, "POST")
    answer = await api.call("POST", path, raw_token=token, headers={
        "Origin": "https://monster.example"}, body=monster(
            {"add": ["gold", {"id": "silver", "overrides": {"devices": {"_all": {"rate": 1}}}}]},
            accept_charges=True))
    assert (answer.status, answer.body["status"]) == (200, "success"), answer.body
    assert answer.body["data"] == {
        "gold": {"vendor_id": accounts.reseller_a, "overrides": {}},
        "silver": {"vendor_id": accounts.reseller_a,
                   "overrides": {"devices": {"_all": {"rate": 1}}}}}
    # then gold removed and the global overrides merged, in one change (cb_services post/1
    # assigns, unassigns, then overrides; a top-level merge is KAZOO's)
    answer = await api.call("POST", path, raw_token=token, body={
        "data": {"delete": ["gold"], "overrides": {"users": {"_all": {"rate": 3}}}},
        "merge": True})
    assert answer.body["data"] == {"silver": {"vendor_id": accounts.reseller_a, "overrides": {
        "devices": {"_all": {"rate": 1}}}}}, answer.body
    summary = (await api.account("GET", accounts.client_a, "/services/summary")).body["data"]
    assert summary["overrides"] == {"users": {"_all": {"rate": 3}}}


async def test_a_bulk_change_is_all_or_nothing(api, accounts):
    """A plan of another reseller among the additions, or a removal of a plan not assigned:
    refused as KAZOO refuses it, and nothing of the change is made."""
    token = kazoo_token(accounts.reseller_a, owner_id="admin")
    path = f"/v2/accounts/{accounts.client_a}/services"
    before = (await api.account("GET", accounts.client_a, "/services/summary")).body["data"]
    for payload, error in (
            ({"add": ["gold", "unknown"]}, (404, "bad_identifier")),
            ({"add": ["gold"], "delete": ["silver"]}, (404, "plan_is_not_assigned")),
            ({"plans": ["gold", ""]}, (400, "invalid_data"))):  # found by schemathesis: a 500
        answer = await api.call("POST", path, raw_token=token, body=monster(payload))
        assert answer.error == error, answer.body
    after = (await api.account("GET", accounts.client_a, "/services/summary")).body["data"]
    assert (after["plans"], after["overrides"]) == (before["plans"], before["overrides"]) == (
        {}, {})


async def test_accounts_wizard_quotes_plans_by_id(api, accounts):
    """MA submodules/serviceItemsListing/serviceItemsListing.js (~183) posts
    ``{data: {plans: [plan ids]}}`` to accounts/{accountId}/services/quote and renders
    ``invoices[0].plan`` (~390-405): KAZOO answers the account's summary as if it had exactly
    those plans (cb_services validate_service_plan QUOTE)."""
    token = kazoo_token(accounts.reseller_a, owner_id="admin")
    answer = await api.call("POST", f"/v2/accounts/{accounts.client_a}/services/quote",
                            raw_token=token, body=monster({"plans": ["gold"]}))
    assert answer.status == 200, answer.body
    [invoice] = answer.body["data"]["invoices"]
    assert invoice["plan"] == PLAN["plan"]
    assert answer.body["data"]["quote"]["invoices"] == answer.body["data"]["invoices"]
    assert (await api.account("GET", accounts.client_a, "/services")).body["data"] == {}


async def test_myaccount_balance_tab_downloads_the_summary_as_csv(api, accounts, channel):
    """M src/apps/myaccount/submodules/balance/balance.js (~205-215, ~294-300) links to
    accounts/{accountId}/services/summary?accept=csv&auth_token=<token> (a browser download:
    the token in the query string); cb_services answers the invoices' items as CSV."""
    await api.account("POST", accounts.client_a, "/services/gold", token="reseller_a")
    await add_devices(channel, accounts.client_a, 2)

    async def counted() -> bool:
        summary = await api.account("GET", accounts.client_a, "/services/summary")
        return summary.body["data"]["quantities"]["account"] == {"devices": {"sip_device": 2}}

    await eventually(counted)
    token = kazoo_token(accounts.client_a, owner_id="user1")
    async with api.session.get(api.base + f"/v2/accounts/{accounts.client_a}/services/summary"
                               f"?accept=csv&auth_token={token}") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/csv")
        lines = list(csv.DictReader(io.StringIO(await response.text())))
    devices = next(line for line in lines if line["category"] == "devices")
    assert (devices["item"], devices["quantity"], devices["rate"], devices["total"]) == (
        "_all", "2", "2", "4")
    json = (await api.account("GET", accounts.client_a, "/services/summary")).body["data"]
    assert {line["bookkeeper"] for line in lines} == {
        invoice["bookkeeper"]["id"] for invoice in json["invoices"]}
