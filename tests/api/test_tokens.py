"""Who may read and who may change an account's services, over real HTTP: every route x
every account of the tree x static tokens of each role, KAZOO login tokens of every account
(and of an account flagged pvt_superduper_admin), KAZOO tokens that must be refused, and no
token. Every refused write is checked to have left every account as it was in the store.

The expected outcome is KAZOO 4.3's rule, restated here from its source:
- reads: the account itself or an ancestor (crossbar's account rule), or a super-duper admin;
  any other account is answered as one that does not exist;
- plans, overrides, manual quantities, sync: the account's reseller or a super-duper admin
  (kazoo 4.3 applications/crossbar/src/modules/cb_services.erl:694-702, is_allowed/1);
- promote, demote: super-duper admins only (cb_accounts.erl:204-213), never the master
  (cb_accounts.erl:351, 390), not while the account has reseller descendants
  (core/kazoo_services/src/kz_services_reseller.erl:91-131; cb_context.erl:989-990).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import pytest
from http_api import TOKENS, Tree, secret
from kazoo_tokens import hmac_with_public_key, kazoo_token, unsigned_token
from waiting import eventually

from svc.amqp.kazoo_notices import doc_change, publish
from svc.api.routes import ROUTES
from svc.settings import ApiToken, Settings, SettingsError, load_settings

# a valid request of every route (path parameters, query, body); a route added to the table
# must be added here
REQUESTS = {
    ("GET", "/services"): {},
    ("POST", "/services"): {"body": {"overrides": {}}},
    ("GET", "/services/summary"): {},
    ("GET", "/services/available"): {},
    ("GET", "/services/overrides"): {},
    ("POST", "/services/overrides"): {"body": {"overrides": {}}},
    ("POST", "/services/manual"): {"body": {"quantities": {"users": {"user": 1}}}},
    ("PATCH", "/services/overrides"): {"body": {"devices": {}}},
    ("PATCH", "/services/manual"): {"body": {"users": {"user": 1}}},
    ("POST", "/services/quote"): {"body": {"changes": {"users": {"user": 1}}}},
    ("POST", "/services/{plan_id}"): {"plan_id": "gold", "query": "?dry_run=true"},
    ("DELETE", "/services/{plan_id}"): {"plan_id": "gold", "query": "?dry_run=true"},
    ("GET", "/reseller"): {},
    ("PUT", "/reseller"): {},
    ("DELETE", "/reseller"): {},
    ("POST", "/services/sync"): {},
    ("POST", "/services/synchronization"): {},
    ("POST", "/services/reconciliation"): {},
    ("GET", "/services/deliveries"): {"query": "?page_size=5"},
    ("POST", "/services/deliveries/{delivery_id}/retry"): {"delivery_id": "unknown"},
    ("POST", "/services/deliveries/{delivery_id}/reroute"): {"delivery_id": "unknown"},
    ("POST", "/services/deliveries/{delivery_id}/abandon"): {
        "delivery_id": "unknown", "body": {"reason": "billed by hand"}},
    ("GET", "/services/audit"): {"query": "?since=2026-01-01T00:00:00Z&page_size=5"},
    ("GET", "/services/audit/{entry_id}"): {"entry_id": "unknown"},
    ("GET", "/services/audit_summary"): {"query": "?created_from=63902908800"},
    ("GET", "/services/editable"): {},
    ("GET", "/services/audit_summary/{item}"): {"item": "sip_device"},
    ("GET", "/services/ledger"): {"query": "?from=63902908800"},
}
READS = {("POST", "/services/quote")}  # a POST that changes nothing (cb_services: no check)
RESELLER_STATUS = {("PUT", "/reseller"), ("DELETE", "/reseller")}


def test_every_route_is_in_the_matrix():
    assert {(route.method, route.path) for route in ROUTES} == set(REQUESTS)


@dataclass(frozen=True)
class Who:
    label: str
    account_id: str
    superduper: bool
    writes: bool = True
    static: str | None = None  # a static token's name
    token: str | None = None  # a KAZOO token


def expected(who: Who, account_id: str, route: tuple[str, str], tree: Tree,
             superduper_account: str) -> str:
    """ok, hidden, forbidden or has_descendants."""
    parents = {**tree.parents(), superduper_account: [tree.master]}
    reseller_of = {tree.master: tree.master, tree.reseller_a: tree.master,
                   tree.reseller_b: tree.master, tree.client_a: tree.reseller_a,
                   tree.client_b: tree.reseller_b, superduper_account: tree.master}
    if not (who.superduper or who.account_id == account_id
            or who.account_id in parents[account_id]):
        return "hidden"
    if route[0] == "GET" or route in READS:
        return "ok" if who.writes or route[0] == "GET" else "forbidden"
    if not who.writes:
        return "forbidden"
    if route in RESELLER_STATUS:
        if not who.superduper or account_id == tree.master:
            return "forbidden"
        return "ok"  # no account but the master has reseller descendants in this tree
    if who.superduper or (who.account_id == reseller_of[account_id] != account_id):
        return "ok"
    return "forbidden"


def outcome(answer) -> str:
    if answer.status == 403:
        assert answer.body["message"] == "forbidden", answer.body
        return "forbidden"
    if answer.status == 404 and answer.body["data"].get("message", "").startswith("account "):
        assert answer.body["message"] == "bad_identifier"
        return "hidden"
    if answer.status == 409 and answer.body["message"] == "account_has_descendants":
        return "has_descendants"
    assert answer.status not in (401, 403, 405, 500), answer.body
    return "ok"


@pytest.fixture
async def superduper_account(accounts, channel, api) -> str:
    """An account under the master flagged pvt_superduper_admin (kzd_accounts)."""
    account_id = uuid.uuid4().hex
    await publish(channel, *doc_change({"_id": account_id, "pvt_type": "account",
                                        "pvt_tree": [accounts.master], "name": "ops",
                                        "pvt_superduper_admin": True}, account_id))

    async def known():
        return (await api.account("GET", account_id, "/reseller")).status == 200

    await eventually(known)
    return account_id


async def state(service, account_ids) -> dict:
    """What the store holds for every account (a refused write must leave all of it)."""
    return {a: (await service.repo.account(a), await service.repo.services(a))
            for a in account_ids}


def callers(tree: Tree, superduper_account: str) -> list[Who]:
    found = [Who(f"static {name} ({role})", getattr(tree, account),
                 role == "superduper" or (role == "reseller" and account == "master"),
                 role != "read", static=name) for name, (account, role) in TOKENS.items()]
    for role in ("master", "reseller_a", "reseller_b", "client_a", "client_b"):
        account_id = getattr(tree, role)
        found.append(Who(f"kazoo {role}", account_id, role == "master",
                         token=kazoo_token(account_id)))
    found.append(Who("kazoo pvt_superduper_admin", superduper_account, True,
                     token=kazoo_token(superduper_account)))
    return found


async def restore_reseller(service, account_id: str, before) -> None:
    """An allowed promote or demote changed the tree's resellers: put it back."""
    account = (await service.repo.account(account_id))
    if account["is_reseller"] != before[account_id][0]["is_reseller"]:
        await service.repo.set_reseller(account_id, before[account_id][0]["is_reseller"])


async def test_token_matrix(api, service, accounts, superduper_account):
    everyone = [*accounts.parents(), superduper_account]
    nobody = "f" * 32
    for route, request in REQUESTS.items():
        method, path = route
        concrete = path.format_map(request) + request.get("query", "")
        unknown = await api.account(method, nobody, concrete, body=request.get("body"))
        assert unknown.error == (404, "bad_identifier")
        for account_id in accounts.parents():
            for who in callers(accounts, superduper_account):
                before = await state(service, everyone)
                answer = await api.account(method, account_id, concrete, token=who.static,
                                           raw_token=who.token, body=request.get("body"))
                where = f"{who.label} {method} {concrete} on {account_id}: {answer.body}"
                want = expected(who, account_id, route, accounts, superduper_account)
                assert outcome(answer) == want, where
                if want == "hidden":  # exactly as an account that does not exist
                    assert answer.bare["data"]["message"].replace(account_id, "<id>") == (
                        unknown.bare["data"]["message"].replace(nobody, "<id>")), where
                if want != "ok" and method != "GET":
                    assert await state(service, everyone) == before, where
                elif route in RESELLER_STATUS:
                    await restore_reseller(service, account_id, before)


BAD_TOKENS = {
    "expired": lambda tree: kazoo_token(tree.master, ttl_s=-60),
    "alg none": lambda tree: unsigned_token(tree.master),
    "HMAC signed with the public key": lambda tree: hmac_with_public_key(tree.master),
    "another key": lambda tree: kazoo_token(tree.master, key="intruder"),
    "unknown kid": lambda tree: kazoo_token(tree.master, kid="0" * 32),
    "another issuer": lambda tree: kazoo_token(tree.master, iss="elsewhere"),
    "unknown static": lambda tree: "wrong",
    "a static secret and one more character": lambda tree: secret("master") + "x",
}


async def test_refused_tokens_change_nothing(api, service, accounts):
    everyone = list(accounts.parents())
    for label, make in BAD_TOKENS.items():
        token = make(accounts)
        for (method, path), request in REQUESTS.items():
            concrete = path.format_map(request) + request.get("query", "")
            before = await state(service, everyone)
            answer = await api.account(method, accounts.client_a, concrete, raw_token=token,
                                       body=request.get("body"))
            assert answer.error == (401, "invalid_credentials"), (label, method, concrete)
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
            assert token not in str(answer.body)  # never echoed
            assert await state(service, everyone) == before, (label, method, concrete)
        anonymous = await api.account("GET", accounts.client_a, "/services", token=None)
        assert anonymous.error == (401, "invalid_credentials")


async def test_the_money_hole_is_closed(api, service, accounts):
    """A client's own token may not promote itself nor assign itself a plan; a reseller's
    may not set overrides on itself (a rate of 0) nor remove its own plans."""
    client, reseller = accounts.client_a, accounts.reseller_a
    before = await state(service, accounts.parents())
    for token in ("client_a", kazoo_token(client)):
        static, raw = (token, None) if token == "client_a" else (None, token)
        promote = await api.account("PUT", client, "/reseller", token=static, raw_token=raw)
        assign = await api.account("POST", client, "/services/gold", token=static,
                                   raw_token=raw)
        assert promote.error == assign.error == (403, "forbidden")
    await api.account("POST", reseller, "/services/gold", token="master")  # its reseller's
    before = await state(service, accounts.parents())
    for token in ("reseller_a", kazoo_token(reseller)):
        static, raw = (token, None) if token == "reseller_a" else (None, token)
        free = await api.account("POST", reseller, "/services/overrides", token=static,
                                 raw_token=raw, body={"overrides": {"gold": {
                                     "devices": {"_all": {"rate": 0}}}}})
        removed = await api.account("DELETE", reseller, "/services/gold", token=static,
                                    raw_token=raw)
        assert free.error == removed.error == (403, "forbidden")
    assert await state(service, accounts.parents()) == before
    # its own client's billing is the reseller's to change
    allowed = await api.account("POST", client, "/services/gold", token="reseller_a")
    assert allowed.status == 200


async def test_promote_refused_while_reseller_descendants(api, accounts):
    # master -> reseller_a -> client_a: client_a a reseller makes reseller_a's status fixed
    assert (await api.account("PUT", accounts.client_a, "/reseller")).status == 200
    refused = await api.account("DELETE", accounts.reseller_a, "/reseller")
    assert refused.error == (409, "account_has_descendants")
    assert (await api.account("GET", accounts.reseller_a, "/reseller")).body["data"][
        "is_reseller"] is True


async def test_a_kazoo_token_in_the_query_and_in_the_audit_trail(api, accounts):
    """Monster UI's CSV links carry the token as ?auth_token= (monster-ui 4.3
    src/apps/myaccount/submodules/balance/balance.js ~205-215); the audit trail names the
    KAZOO login's account and user."""
    token = kazoo_token(accounts.reseller_a, owner_id="u42")
    read = await api.account("GET", accounts.client_a, f"/services?auth_token={token}",
                             token=None)
    assert read.status == 200 and read.body["auth_token"] == token  # echoed as crossbar
    assigned = await api.account("POST", accounts.client_a, "/services/gold", token=None,
                                 headers={"Authorization": f"Bearer {token}"},
                                 body={"reason": "upgrade"})
    assert assigned.status == 200
    audit = await api.account("GET", accounts.client_a, "/services/audit")
    [entry] = [e for e in audit.body["data"] if e["action"] == "plan_assigned"]
    assert entry["who"] == {"kind": "token",
                            "name": f"kazoo account {accounts.reseller_a} user u42"}
    static = await api.account("GET", accounts.client_a, "/services", token="reseller_a")
    assert static.body["auth_token"] == ""  # a static secret never leaves svc


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
        assert refused.error == (401, "invalid_credentials"), headers
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
    for name in TOKENS:
        assert secret(name) not in logged


def test_tokens_setting(monkeypatch):
    monkeypatch.setenv("SVC_API_TOKENS", '{"ops": {"token": "s3cret", "account_id": "a1"}, '
                                         '"su": {"token": "t", "account_id": "a2", '
                                         '"role": "superduper"}}')
    tokens = Settings().api_tokens
    assert (tokens["ops"].account_id, tokens["ops"].role) == ("a1", "read")  # no role: read
    assert tokens["su"].role == "superduper"
    assert tokens["ops"].token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(tokens)
    assert Settings.model_fields["api_tokens"].default_factory() == {}

    monkeypatch.setenv("SVC_API_TOKENS", '{"a": {"token": "same", "account_id": "x"}, '
                                         '"b": {"token": "same", "account_id": "y"}}')
    with pytest.raises(SettingsError, match="SVC_API_TOKENS: two tokens share one secret"):
        load_settings()
    for bad in ('{"a": {"token": "", "account_id": "x"}}',
                '{"a": {"token": "t", "account_id": "x", "role": "admin"}}'):
        monkeypatch.setenv("SVC_API_TOKENS", bad)
        with pytest.raises(SettingsError, match="SVC_API_TOKENS"):
            load_settings()


def test_kazoo_keys_setting(monkeypatch):
    monkeypatch.setenv("SVC_KAZOO_AUTH_KEYS", '{"k1": "not a key"}')
    with pytest.raises(SettingsError, match="SVC_KAZOO_AUTH_KEYS: the key 'k1' is not an RSA"):
        load_settings()
    assert ApiToken(token="t", account_id="a").role == "read"
