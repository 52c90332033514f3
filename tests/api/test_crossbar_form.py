"""crossbar's form over real HTTP: CORS (kazoo 4.3 applications/crossbar/src/api_util.erl
:121-148), the envelope and the error form (api_util.erl:1628-1651; cb_context.erl:979-1000),
404 and 405 in that envelope, and request bodies as KAZOO's clients send them."""

from __future__ import annotations

import re

from http_api import META, secret


async def raw(api, method, path, headers=None, **kwargs):
    async with api.session.request(method, api.base + path, headers=headers or {},
                                   **kwargs) as response:
        return response.status, response.headers, await response.read()


async def test_preflight_needs_no_token(api, accounts):
    path = f"/v2/accounts/{accounts.client_a}/services/overrides"
    status, headers, _ = await raw(api, "OPTIONS", path, {
        "Origin": "https://monster.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-auth-token"})
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "*"  # crossbar's default
    methods = headers["Access-Control-Allow-Methods"].split(", ")
    assert {"OPTIONS", "GET", "POST"} <= set(methods)
    allowed = headers["Access-Control-Allow-Headers"]
    for header in ("content-type", "x-auth-token", "x-request-id"):
        assert header in allowed
    assert headers["Access-Control-Max-Age"] == "86400"
    for path in ("/v2/accounts/x/services/", "/v2/accounts/x/reseller", "/v2/anything"):
        assert (await raw(api, "OPTIONS", path))[0] == 200


async def test_every_answer_is_exposed_to_the_browser(api, accounts):
    for token in ("master", None):
        answer = await api.account("GET", accounts.client_a, "/services", token=token,
                                   headers={"Origin": "https://monster.example"})
        assert answer.headers["Access-Control-Allow-Origin"] == "*"
        exposed = answer.headers["Access-Control-Expose-Headers"]
        assert "x-request-id" in exposed and "x-auth-token" in exposed


async def test_the_envelope(api, accounts):
    answer = await api.account("GET", accounts.client_a, "/services",
                               headers={"X-Request-ID": "req-123"})
    body = answer.body
    assert set(body) == {"data", "status", *META}
    assert body["request_id"] == answer.headers["X-Request-ID"] == "req-123"
    assert (body["node"], body["status"]) == ("services@test", "success")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["timestamp"])
    again = await api.account("GET", accounts.client_a, "/services")
    assert again.body["revision"] == body["revision"]  # the same data, the same revision
    assert again.body["request_id"] != "req-123"
    error = await api.account("GET", "nobody", "/services", headers={"X-Request-ID": "r2"})
    assert set(error.body) == {"data", "status", "error", "message", *META} - {"revision"}
    assert (error.body["error"], error.body["message"], error.body["request_id"]) == (
        "404", "bad_identifier", "r2")


async def test_unknown_routes_and_methods_in_the_envelope(api, accounts):
    for path in (f"/v2/accounts/{accounts.client_a}/nothing", "/v2/nothing",
                 f"/v2/accounts/{accounts.client_a}/services/gold/extra"):
        status, headers, body = await raw(api, "GET", path)
        assert status == 404 and headers["Content-Type"].startswith("application/json")
        assert b'"message":"faulty_request"' in body and b'"error":"404"' in body
    status, headers, body = await raw(api, "PATCH",
                                      f"/v2/accounts/{accounts.client_a}/reseller")
    assert status == 405 and b'"error":"405"' in body
    assert set(headers["Allow"].split(", ")) == {"OPTIONS", "GET", "PUT", "DELETE"}


async def test_monster_bodies(api, accounts):
    """ui_metadata inside data (monster-ui 4.3 src/js/lib/jquery.kazoosdk.js ~756-777) or
    beside it, accept_charges beside data: ignored; any other unknown key inside data is
    refused by name; a top-level merge is KAZOO's (cb_services)."""
    account = accounts.client_a
    ui = {"version": "4.3-0", "ui": "monster-ui", "origin": "myaccount"}
    one, two, three = ({plan: {"users": {"user": {"rate": 1}}}} for plan in ("p1", "p2", "p3"))
    first = await api.account("POST", account, "/services/overrides", body={
        "data": {"overrides": one, "ui_metadata": ui}, "accept_charges": True,
        "ui_metadata": ui})
    assert first.status == 200, first.body["data"]
    merged = await api.account("POST", account, "/services/overrides", body={
        "data": {"overrides": two}, "merge": True})
    assert merged.body["data"]["overrides"] == {**one, **two}
    plain = await api.account("POST", account, "/services/overrides", body={
        "overrides": three, "ui_metadata": ui, "accept_charges": False})
    assert plain.body["data"]["overrides"] == three
    refused = await api.account("POST", account, "/services/overrides", body={
        "data": {"overrides": {}, "discount": 100, "ui_metadata": ui}})
    assert refused.error == (400, "invalid_data")
    assert refused.body["data"] == {"discount": {"not_allowed": {
        "message": "Extra inputs are not permitted"}}}
    slash = await api.account("GET", account, "/services/overrides/")
    assert slash.body["data"] == {"overrides": three}


async def test_topup_is_not_built(api, accounts):
    """cb_services' topup credits a ledger svc does not keep: 501 in the envelope, after the
    token is checked."""
    path = f"/v2/accounts/{accounts.client_a}/services/topup"
    async with api.session.post(api.base + path, json={"data": {"amount": 10}},
                                headers={"X-Auth-Token": "wrong"}) as response:
        assert response.status == 401
    async with api.session.post(api.base + path, json={"data": {"amount": 10}},
                                headers={"X-Auth-Token": secret("master")}) as response:
        body = await response.json()
        assert (response.status, body["error"], body["message"]) == (
            501, "501", "not_implemented")


async def test_kazoo_bodies_of_overrides_and_manual_are_the_maps_themselves(api, accounts):
    """cb_services post/2 and patch/2 (OVERRIDES, MANUAL) take ``data`` as the map itself;
    PATCH merges, as a top-level merge does (``maybe_merge_overrides``,
    ``maybe_merge_quantities``)."""
    account = accounts.client_a
    devices = {"devices": {"_all": {"rate": 2}}}
    users = {"users": {"user": {"rate": 1}}}
    posted = await api.account("POST", account, "/services/overrides", body={"data": devices})
    assert posted.body["data"]["overrides"] == devices, posted.body
    patched = await api.account("PATCH", account, "/services/overrides", body={"data": users})
    assert patched.body["data"]["overrides"] == {**devices, **users}, patched.body
    merged = await api.account("POST", account, "/services/overrides", body={
        "data": {"devices": {"_all": {"rate": 5}}}, "merge": True})
    assert merged.body["data"]["overrides"] == {"devices": {"_all": {"rate": 5}}, **users}
    manual = await api.account("POST", account, "/services/manual",
                               body={"data": {"users": {"user": 2}}})
    assert manual.body["data"]["quantities"]["manual"] == {"users": {"user": 2}}
    manual = await api.account("PATCH", account, "/services/manual",
                               body={"data": {"devices": {"sip_device": 1}}})
    assert manual.body["data"]["quantities"]["manual"] == {"users": {"user": 2},
                                                            "devices": {"sip_device": 1}}
    refused = await api.account("PATCH", account, "/services/manual",
                                body={"data": {"devices": {"sip_device": -1}}})
    assert refused.error == (400, "invalid_data"), refused.body
    after = (await api.account("GET", account, "/services/summary")).body["data"]
    assert after["quantities"]["manual"] == {"users": {"user": 2}, "devices": {"sip_device": 1}}
