"""Tokens (SPEC §15): every route × every account of the tree × master, reseller A,
reseller B, a client of A and no token. A token sees its account and its descendants; any
other account is answered exactly as one that does not exist; no token is 401."""

from __future__ import annotations

import logging

import pytest
from http_api import TOKEN_ACCOUNTS, secret

from svc.api.routes import ROUTES
from svc.settings import Settings, SettingsError, load_settings

# a valid request of every route (path parameters, query, body), in an order in which each
# of them can succeed; a route added to the table must be added here
REQUESTS = {
    ("GET", "/services"): {},
    ("GET", "/services/summary"): {},
    ("GET", "/services/available"): {},
    ("GET", "/services/overrides"): {},
    ("POST", "/services/overrides"): {"body": {"overrides": {}}},
    ("POST", "/services/manual"): {"body": {"quantities": {"users": {"user": 1}}}},
    ("POST", "/services/quote"): {"body": {"changes": {"users": {"user": 1}}}},
    ("POST", "/services/{plan_id}"): {"plan_id": "gold", "query": "?dry_run=true"},
    ("DELETE", "/services/{plan_id}"): {"plan_id": "gold", "query": "?dry_run=true"},
    ("GET", "/reseller"): {},
    ("PUT", "/reseller"): {},
    ("DELETE", "/reseller"): {},
    ("POST", "/services/sync"): {},
    ("GET", "/services/deliveries"): {"query": "?page_size=5"},
    ("POST", "/services/deliveries/{delivery_id}/retry"): {"delivery_id": "unknown"},
    ("POST", "/services/deliveries/{delivery_id}/reroute"): {"delivery_id": "unknown"},
    ("POST", "/services/deliveries/{delivery_id}/abandon"): {
        "delivery_id": "unknown", "body": {"reason": "billed by hand"}},
    ("GET", "/services/audit"): {"query": "?since=2026-01-01T00:00:00Z&page_size=5"},
    ("GET", "/services/ledger"): {"query": "?from=63902908800"},
}


def test_every_route_is_in_the_matrix():
    assert {(route.method, route.path) for route in ROUTES} == set(REQUESTS)


def as_if_unknown(body: dict, account_id: str) -> dict:
    return {**body, "message": body["message"].replace(account_id, "<id>")}


async def test_token_matrix(api, accounts):
    nobody = "f" * 32
    for (method, path), request in REQUESTS.items():
        concrete = path.format_map(request) + request.get("query", "")
        unknown = await api.account(method, nobody, concrete, body=request.get("body"))
        assert (unknown.status, unknown.body["error"]) == (404, "account_not_found")
        for account_id in accounts.parents():
            anonymous = await api.account(method, account_id, concrete, token=None,
                                          body=request.get("body"))
            assert (anonymous.status, anonymous.body["error"]) == (401, "unauthorized")
            for token in TOKEN_ACCOUNTS:
                answer = await api.account(method, account_id, concrete, token=token,
                                           body=request.get("body"))
                where = f"{token} {method} {concrete} on {account_id}"
                if accounts.sees(token, account_id):
                    assert answer.status != 401, where
                    assert answer.body.get("error") != "account_not_found", where
                else:
                    assert answer.status == 404, where
                    assert as_if_unknown(answer.body, account_id) == as_if_unknown(
                        unknown.body, nobody), where


async def test_who_sees_what(api, accounts):
    """Reseller B never sees A's accounts, a client only itself, the master everything."""
    def status(token, account_id):
        return api.account("GET", account_id, "/services/summary", token=token)

    for account_id in (accounts.reseller_a, accounts.client_a):
        assert (await status("reseller_b", account_id)).status == 404
        assert (await status("reseller_a", account_id)).status == 200
        assert (await status("master", account_id)).status == 200
    assert (await status("client_a", accounts.client_a)).status == 200
    for account_id in (accounts.master, accounts.reseller_a, accounts.reseller_b,
                       accounts.client_b):
        assert (await status("client_a", account_id)).status == 404
    assert (await status("reseller_a", accounts.master)).status == 404


async def test_headers_bearer_and_unknown_tokens(api, accounts):
    path = "/services/summary"
    bearer = await api.account("GET", accounts.client_a, path, token=None,
                               headers={"Authorization": f"Bearer {secret('reseller_a')}"})
    assert bearer.status == 200
    lower = await api.account("GET", accounts.client_a, path, token=None,
                              headers={"authorization": f"bearer {secret('client_a')}"})
    assert lower.status == 200
    for headers in ({"X-Auth-Token": "wrong"}, {"X-Auth-Token": secret("master") + "x"},
                    {"Authorization": f"Basic {secret('master')}"},
                    {"Authorization": "Bearer "}, {"X-Auth-Token": "\u00e9t\u00e9"}):
        refused = await api.account("GET", accounts.client_a, path, token=None,
                                    headers=headers)
        assert (refused.status, refused.body["error"]) == (401, "unauthorized"), headers
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz", "/openapi.json"])
async def test_operations_need_no_token(api, service, path):
    async with api.session.get(api.base + path) as response:
        assert response.status == 200


async def test_secrets_are_never_logged_or_shown(api, accounts, settings, caplog):
    with caplog.at_level(logging.DEBUG):
        await api.account("GET", accounts.client_b, "/services", token="reseller_a")
        await api.account("GET", accounts.client_b, "/services", token=None,
                          headers={"X-Auth-Token": "guess"})
    logged = caplog.text + repr(settings)
    for name in TOKEN_ACCOUNTS:
        assert secret(name) not in logged


def test_tokens_setting(monkeypatch):
    monkeypatch.setenv("SVC_API_TOKENS", '{"ops": {"token": "s3cret", "account_id": "a1"}}')
    tokens = Settings().api_tokens
    assert tokens["ops"].account_id == "a1"
    assert tokens["ops"].token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(tokens)
    assert Settings.model_fields["api_tokens"].default_factory() == {}

    monkeypatch.setenv("SVC_API_TOKENS", '{"a": {"token": "same", "account_id": "x"}, '
                                         '"b": {"token": "same", "account_id": "y"}}')
    with pytest.raises(SettingsError, match="SVC_API_TOKENS: two tokens share one secret"):
        load_settings()
    monkeypatch.setenv("SVC_API_TOKENS", '{"a": {"token": "", "account_id": "x"}}')
    with pytest.raises(SettingsError, match="SVC_API_TOKENS"):
        load_settings()
