"""Every route of the HTTP API against a running service, over real HTTP: the
answers are the RPCs' own, in KAZOO's envelope, and bad input is named and changes nothing.
Each answer is also checked against the OpenAPI document (``conftest.Api``)."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from http_api import PLAN, add_devices, secret
from waiting import eventually

from svc.api import HttpApi
from svc.auth import Authenticator
from svc.settings import ApiToken
from svc.store import StoreUnavailable


async def counted(api, account_id: str, devices: int) -> dict:
    async def done():
        summary = (await api.account("GET", account_id, "/services/summary")).body["data"]
        found = summary["quantities"]["account"].get("devices", {}).get("sip_device")
        return summary if found == devices else None

    return await eventually(done)


async def test_summary_is_the_rpc_summary(api, client, channel, accounts):
    await add_devices(channel, accounts.client_a, 2)
    summary = await counted(api, accounts.client_a, 2)
    rpc = await client.call("summary", {"Account-ID": accounts.client_a})
    # KAZOO's view (kz_services:summary/1): the status object, reseller and billing cycle
    # where the AMQP Summary has its status word, which stays as standing
    kazoo = {key: summary.pop(key) for key in ("standing", "reseller", "billing_cycle")}
    assert summary.pop("status") == {"acceptable": True, "reason": "good_standing",
                                     "message": None}
    assert summary == {k: v for k, v in rpc["Summary"].items() if k != "status"}
    assert kazoo["standing"] == rpc["Summary"]["status"] == "good_standing"
    assert kazoo["reseller"] == {"id": accounts.reseller_a, "is_reseller": False}
    now = datetime.now(UTC)
    following = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    assert kazoo["billing_cycle"] == {"next": int(following.timestamp()) + 62_167_219_200,
                                      "period": 1, "unit": "month"}
    services = await api.account("GET", accounts.client_a, "/services")
    # KAZOO's GET /services is the assigned plans (cb_services.erl:198-199)
    assert services.status == 200 and services.bare == {"data": summary["plans"],
                                                         "status": "success"}
    assert summary["account_id"] == accounts.client_a
    assert summary["reseller_id"] == accounts.reseller_a
    assert services.headers["Content-Type"].startswith("application/json")
    assert services.headers["X-Request-ID"]


async def test_available_plans_is_a_list_with_paging_fields(api, accounts):
    answer = await api.account("GET", accounts.client_a, "/services/available")
    assert answer.status == 200
    assert answer.bare == {"data": [{"id": "gold", "vendor_id": accounts.reseller_a,
                                     "name": "Gold", "description": None, "category": None}],
                           "status": "success", "page_size": 1, "next_start_key": None}
    other = await api.account("GET", accounts.client_b, "/services/available")
    assert other.body["data"] == [] and other.body["page_size"] == 0


async def test_assign_dry_run_assign_and_remove(api, channel, accounts):
    account = accounts.client_a
    await add_devices(channel, account, 2)
    await counted(api, account, 2)

    dry = await api.account("POST", account, "/services/gold?dry_run=true")
    assert dry.status == 200  # never 402: a dry run answers with its quote
    [invoice] = dry.body["data"]["quote"]["invoices"]
    assert invoice["summary"] == {"recurring": 4, "today": 10}  # 2 devices at 2, +5 each
    assert dry.body["data"]["plans"] == {"gold": {"vendor_id": accounts.reseller_a,
                                                  "overrides": {}}}
    unchanged = await api.account("GET", account, "/services")
    assert unchanged.body["data"] == {}  # the dry run changed nothing

    assigned = await api.account("POST", account, "/services/gold", body={
        "overrides": {"devices": {"_all": {"rate": 1}}}, "reason": "trial"})
    assert assigned.status == 200
    assert assigned.bare == {"data": {"plans": {"gold": {
        "vendor_id": accounts.reseller_a, "overrides": {"devices": {"_all": {"rate": 1}}}}}},
        "status": "success"}
    merged = await api.account("POST", account, "/services/gold", body={  # KAZOO's wrapping
        "data": {"overrides": {"users": {"user": {"rate": 9}}}, "merge": True},
        "accept_charges": True})
    assert merged.body["data"]["plans"]["gold"]["overrides"] == {
        "devices": {"_all": {"rate": 1}}, "users": {"user": {"rate": 9}}}
    summary = (await api.account("GET", account, "/services/summary")).body["data"]
    assert summary["invoices"][0]["summary"]["recurring"] == 2

    dry_remove = await api.account("DELETE", account, "/services/gold?dry_run=1")
    assert dry_remove.status == 200 and dry_remove.body["data"]["plans"] == {}
    assert "quote" in dry_remove.body["data"]
    assert (await api.account("GET", account, "/services")).body["data"]
    removed = await api.account("DELETE", account, "/services/gold")
    assert removed.bare == {"data": {"plans": {}}, "status": "success"}
    again = await api.account("DELETE", account, "/services/gold")
    assert again.error == (404, "plan_is_not_assigned")

    foreign = await api.account("POST", accounts.client_b, "/services/gold")
    # another reseller's plan is answered as one that does not exist (KAZOO: bad_identifier)
    assert foreign.error == (404, "bad_identifier")
    assert foreign.body["status"] == "error" and foreign.body["error"] == "404"
    assert foreign.body["data"] == {"message": "plan gold is not known"}
    unknown = await api.account("POST", accounts.client_b, "/services/platinum")
    assert unknown.bare == {**foreign.bare, "data": {"message": "plan platinum is not known"}}


async def test_reseller_get_promote_demote(api, accounts):
    account = accounts.client_a
    got = await api.account("GET", account, "/reseller")
    assert got.bare == {"data": {"reseller_id": accounts.reseller_a, "is_reseller": False},
                        "status": "success"}
    promoted = await api.account("PUT", account, "/reseller")
    assert promoted.body["data"] == {"reseller_id": accounts.reseller_a, "is_reseller": True}
    assert (await api.account("GET", account, "/reseller")).body["data"]["is_reseller"]
    demoted = await api.account("DELETE", account, "/reseller", body={"reason": "closed"})
    assert demoted.body["data"]["is_reseller"] is False
    master = await api.account("PUT", accounts.master, "/reseller")
    assert master.error == (403, "forbidden")


async def test_overrides_and_manual_quantities(api, client, accounts):
    account = accounts.client_a
    await api.account("POST", account, "/services/gold")
    overrides = {"plan": {"users": {"user": {"rate": 1}}}}
    answer = await api.account("POST", account, "/services/overrides",
                               body={"overrides": overrides})
    assert answer.status == 200 and answer.body["data"]["overrides"] == overrides
    assert answer.body["data"]["account_id"] == account  # the Summary, as overrides_set_req
    got = await api.account("GET", account, "/services/overrides")
    assert got.bare == {"data": {"overrides": overrides}, "status": "success"}

    bad = await api.account("POST", account, "/services/overrides", body={"overrides": {
        "plan": {"users": {"user": {"rate": -1}}}}})
    assert bad.error == (400, "plan_invalid")
    assert bad.body["data"] == {"overrides.plan.users.user.rate": {"invalid": {
        "message": "must be >= 0"}}}
    assert (await api.account("GET", account, "/services/overrides")).body["data"] == {
        "overrides": overrides}

    manual = await api.account("POST", account, "/services/manual",
                               body={"data": {"quantities": {"users": {"user": "4"}}}})
    assert manual.status == 200
    assert manual.body["data"]["quantities"]["manual"] == {"users": {"user": 4}}
    assert manual.body["data"]["invoices"][0]["summary"]["recurring"] == 4  # 4 users at 1
    rpc = await client.call("summary", {"Account-ID": account})
    assert rpc["Summary"]["quantities"]["manual"] == {"users": {"user": 4}}

    bad = await api.account("POST", account, "/services/manual", body={
        "quantities": {"users": {"user": -1, "admin": 2.5}}, "merge": "perhaps"})
    assert bad.error == (400, "invalid_data")
    assert set(bad.body["data"]) == {"quantities.users.user", "quantities.users.admin", "merge"}
    missing = await api.account("POST", account, "/services/manual")
    assert missing.body["data"] == {"quantities": {"required": {"message": "Field required"}}}
    still = await client.call("summary", {"Account-ID": account})
    assert still["Summary"]["quantities"]["manual"] == {"users": {"user": 4}}


async def test_quote_by_account(api, client, channel, accounts):
    account = accounts.client_a
    await add_devices(channel, account, 2)
    await counted(api, account, 2)
    await api.account("POST", account, "/services/gold")
    body = {"changes": {"devices": {"sip_device": 3}}}
    answer = await api.account("POST", account, "/services/quote", body=body)
    assert answer.status == 200
    [invoice] = answer.body["data"]["quote"]["invoices"]
    assert invoice["summary"] == {"recurring": 10, "today": 15}  # 5 devices; 3 added
    rpc = await client.call("quote", {"Account-ID": account, "Changes": body["changes"]})
    # KAZOO's quote is a summary: the invoices at the top, as svc's quote has them
    assert answer.body["data"] == {"quote": rpc["Quote"], "invoices": rpc["Quote"]["invoices"]}

    other_plan = await api.account("POST", account, "/services/quote",
                                   body={"plans": [{"id": "gold", "vendor_id": accounts.reseller_a,
                                                    "overrides": {"devices": {"_all": {
                                                        "rate": 0}}}}]})
    assert other_plan.body["data"]["quote"]["invoices"][0]["summary"]["recurring"] == 0
    negative = await api.account("POST", account, "/services/quote",
                                 body={"changes": {"devices": {"sip_device": -5}}})
    assert negative.error == (400, "invalid_changes")
    assert "$.changes.devices.sip_device" in negative.body["data"]["message"]
    unknown = await api.account("POST", account, "/services/quote",
                                body={"plans": [{"id": "platinum"}]})
    assert unknown.error == (404, "bad_identifier")
    summary = (await api.account("GET", account, "/services/summary")).body["data"]
    assert summary["quantities"]["account"] == {"devices": {"sip_device": 2}}


async def test_sync_now_and_conflict(api, service, channel, accounts):
    account = accounts.client_a
    await add_devices(channel, account, 1)
    await counted(api, account, 1)
    await api.account("POST", account, "/services/gold")
    answer = await api.account("POST", account, "/services/sync")
    assert answer.status == 200
    assert answer.body["data"]["account_status"] == "good_standing"
    [result] = answer.body["data"]["results"]
    assert result["status"] == "completed"
    assert result["bookkeeper"]["vendor_id"] == accounts.reseller_a
    summary = (await api.account("GET", account, "/services/summary")).body["data"]
    assert summary["last_sync"]["results"] == answer.body["data"]["results"]

    await service.sync.leases.claim_account(accounts.client_b, "services@elsewhere", 60)
    busy = await api.account("POST", accounts.client_b, "/services/sync")
    assert busy.error == (409, "conflict")


async def test_bad_input_is_named_and_changes_nothing(api, service, accounts):
    account = accounts.client_a
    before = (await api.account("GET", account, "/services/summary")).bare

    def overrides(**kwargs):
        return api.account("POST", account, "/services/overrides", **kwargs)

    not_json = await overrides(data=b'{"overrides": ', headers={
        "Content-Type": "application/json"})
    assert not_json.error == (400, "invalid_data")
    assert "not valid JSON" in not_json.body["data"]["message"]
    listed = await overrides(body=[{"overrides": {}}])
    assert listed.body["data"]["message"] == "the body must be a JSON object"
    misspelt = await overrides(body={"overides": {}, "overrides": {}})
    assert misspelt.body["data"] == {"overides": {"not_allowed": {
        "message": "Extra inputs are not permitted"}}}
    wrong = await overrides(body={"overrides": "cheap", "reason": 7})
    assert set(wrong.body["data"]) == {"overrides", "reason"}
    huge = await overrides(body={"overrides": {"x": "y" * 70_000}})  # > 64 KiB in tests
    assert huge.error == (413, "too_large")

    async def chunked():
        yield b'{"overrides": {"x": "'
        for _ in range(100):
            yield b"y" * 1000
        yield b'"}}'

    streamed = await overrides(data=chunked())
    assert streamed.error == (413, "too_large")
    out_of_bounds = await overrides(data=b'{"overrides": {"plan": {"users": {"user": '
                                         b'{"rate": 1e999}}}}}')
    assert out_of_bounds.status == 400 and out_of_bounds.body["data"]
    big = await api.account("POST", account, "/services/quote",
                            data=b'{"overrides": {"x": 100000000000000000000}}')
    assert big.error == (400, "plan_invalid"), big.body  # read as sent
    assert list(big.body["data"]) == ["x"]
    refused = await api.account("POST", account, "/services/quote",
                                data=b'{"overrides": {"\\ud800": 1}}')
    assert refused.error == (400, "invalid_data"), refused.body
    assert "cannot encode" in refused.body["data"]["message"]
    dry_run = await api.account("POST", account, "/services/gold?dry_run=maybe")
    assert (dry_run.status, list(dry_run.body["data"])) == (400, ["?dry_run"])

    assert (await api.account("GET", account, "/services/summary")).bare == before
    assert (await api.call("GET", "/healthz", token=None)).status == 200


async def test_unknown_account_and_unavailable_store(api, service, accounts, monkeypatch):
    unknown = await api.account("GET", "nobody", "/services")
    assert unknown.status == 404
    assert unknown.bare == {"status": "error", "error": "404", "message": "bad_identifier",
                            "data": {"message": "account nobody is not known"}}

    async def unreachable(_):
        raise StoreUnavailable("MongoDB unreachable")

    monkeypatch.setattr(service.repo, "existing_account", unreachable)
    down = await api.account("GET", accounts.client_a, "/services")
    assert down.error == (503, "store_unavailable")


async def test_not_ready_until_the_handlers_exist(repo):
    """Before the broker is up (and once stopping) svc has no RPC handlers: 503."""
    tokens = {"ops": ApiToken(token=secret("ops"), account_id="a")}
    http = HttpApi(repo, Authenticator(tokens, None), 1 << 16, lambda: None)
    app = web.Application()
    app.add_routes(http.routes())
    async with TestClient(TestServer(app)) as test_client:
        path = "/v2/accounts/a/services"
        anonymous = await test_client.get(path)
        assert anonymous.status == 401
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        starting = await test_client.get(path, headers={"Authorization":
                                                        f"Bearer {secret('ops')}"})
        assert starting.status == 503 and (await starting.json())["message"] == "not_ready"
        document = await test_client.get("/openapi.json")
        assert (await document.json())["openapi"] == "3.1.0"


async def test_plan_shadowed_by_a_fixed_path_is_documented_behaviour(api, client, accounts):
    """``/services/quote`` is the quote route, not a plan named "quote" (as in KAZOO)."""
    await client.call("plan_put", {"Account-ID": accounts.reseller_a,
                                   "Plan": {"id": "quote", "doc": PLAN}})
    answer = await api.account("POST", accounts.client_a, "/services/quote")
    assert "quote" in answer.body["data"] and "plans" not in answer.body["data"]


async def test_kazoo_synchronization_and_reconciliation(api, accounts, service):
    """cb_services post/2 SYNCHRONIZATION and RECONCILIATION, by the account's reseller: the
    account synced now, its quantities recounted (here: repairing a drifted count)."""
    account = accounts.client_a
    synced = await api.account("POST", account, "/services/synchronization/",
                               token="reseller_a", body={"data": {}})
    assert (synced.status, synced.body["status"]) == (200, "success"), synced.body
    assert synced.body["data"]["account_status"] == "good_standing"
    found = await service.store.get("services", account)  # drifted behind svc's back
    doc = found.doc
    doc["quantities"] = {**doc["quantities"], "account": {"devices": {"x": 9}}}
    await service.store.put("services", account, doc, found.version)
    repaired = await api.account("POST", account, "/services/reconciliation",
                                 token="reseller_a")
    assert (repaired.status, repaired.body["data"]["changed"]) == (200, True), repaired.body
    summary = (await api.account("GET", account, "/services/summary")).body["data"]
    assert summary["quantities"]["account"] == {}
