"""svc.auth on its own: KAZOO token verification, identity signatures and the permission
rules, without a service."""

from __future__ import annotations

import pytest
from kazoo_tokens import (
    KID,
    SYSTEM_SECRET,
    hmac_with_public_key,
    identity_sig,
    kazoo_token,
    public_pem,
    unsigned_token,
)

from svc.auth import Authenticator, Unauthenticated
from svc.auth.identity import IdentityCheck, IdentityUnavailable, signature_matches
from svc.auth.keys import KazooKeys
from svc.auth.permissions import Access, Caller, Refusal, Target, is_superduper, refusal
from svc.auth.principal import Principal
from svc.ingest.databases import account_database
from svc.settings import ApiToken
from svc.sources import DocumentSource, Fetched, SourceUnavailable

ACCOUNT = "a" * 32


def authenticator(identity=None) -> Authenticator:
    return Authenticator({"ops": ApiToken(token="s3cret", account_id="m", role="superduper")},
                         KazooKeys({KID: public_pem()}), identity)


async def principal(token: str, identity=None, where: str = "X-Auth-Token") -> Principal:
    headers = {where: token} if where == "X-Auth-Token" else (
        {"Authorization": f"Bearer {token}"} if where == "bearer" else {})
    query = {"auth_token": token} if where == "query" else {}
    return await authenticator(identity).principal(headers, query)


@pytest.mark.parametrize("where", ["X-Auth-Token", "bearer", "query"])
async def test_a_kazoo_token_is_its_account_and_user(where):
    found = await principal(kazoo_token(ACCOUNT, owner_id="u1"), where=where)
    assert (found.account_id, found.user_id, found.role) == (ACCOUNT, "u1", "kazoo")
    assert found.name == f"kazoo account {ACCOUNT} user u1"


@pytest.mark.parametrize("alg", ["RS384", "RS512"])
async def test_every_algorithm_kazoo_issues(alg):
    # kz_auth_jwt.erl:19-27 (?ALGORITHMS: RS256, RS384, RS512)
    assert (await principal(kazoo_token(ACCOUNT, alg=alg))).account_id == ACCOUNT


@pytest.mark.parametrize(("token", "why"), [
    (kazoo_token(ACCOUNT, ttl_s=-10), "expired"),  # kz_auth_jwt.erl:121-128
    (unsigned_token(ACCOUNT), "algorithm"),  # kz_auth_jwt.erl:75-92
    (hmac_with_public_key(ACCOUNT), "algorithm"),
    (kazoo_token(ACCOUNT, key="another"), "not valid"),  # kz_auth_jwt.erl:94-118
    (kazoo_token(ACCOUNT, kid="unknown"), "kid"),
    (kazoo_token(ACCOUNT, iss="someone"), "not valid"),
    ("not-a-token", "not known"),
], ids=["expired", "alg-none", "hmac-public-key", "another-key", "unknown-kid", "issuer",
        "garbage"])
async def test_refused_tokens(token, why):
    with pytest.raises(Unauthenticated, match=why):
        await principal(token)


async def test_static_tokens_keep_working_with_their_role():
    found = await authenticator().principal({"X-Auth-Token": "s3cret"}, {})
    assert (found.account_id, found.role, found.name) == ("m", "superduper", "ops")
    assert ApiToken(token="x", account_id="a").role == "read"  # no role: read only


class Couch(DocumentSource):
    def __init__(self, docs: dict[tuple[str, str], dict], up: bool = True) -> None:
        self.docs, self.up = docs, up

    async def fetch(self, database, ids):
        if not self.up:
            raise SourceUnavailable("down")
        return {i: Fetched(1, self.docs.get((database, i))) for i in ids}

    def pages(self, database, page_size):  # pragma: no cover - not used here
        raise NotImplementedError

    async def ping(self):  # pragma: no cover - not used here
        pass


def couch(user_secret: str = "usersecret", system: str = SYSTEM_SECRET, up: bool = True):
    return IdentityCheck(Couch({
        ("system_config", "auth"): {"default": {"secret_for_user_signature": system}},
        (account_database(ACCOUNT), "user0"): {"pvt_signature_secret": user_secret}}, up))


async def test_identity_signature_as_kz_auth_identity_checks_it():
    # kz_auth_identity.erl:78-87 (owner_id's doc in the account db), 312-318 (the HMAC)
    assert (await principal(kazoo_token(ACCOUNT), identity=couch())).user_id == "user0"
    for revoked in (couch(user_secret="reset"), couch(system="reset")):
        with pytest.raises(Unauthenticated, match="identity signature"):
            await principal(kazoo_token(ACCOUNT), identity=revoked)
    with pytest.raises(Unauthenticated, match="identity signature"):
        await principal(kazoo_token(ACCOUNT, identity_sig=""), identity=couch())
    with pytest.raises(IdentityUnavailable):
        await principal(kazoo_token(ACCOUNT), identity=couch(up=False))


def test_identity_is_device_then_owner_then_account():
    # kz_auth_identity.erl:67-96
    sig = identity_sig("s", "dev1")
    assert signature_matches({"account_id": ACCOUNT, "owner_id": "u", "device_id": "dev1",
                              "identity_sig": sig}, "s", SYSTEM_SECRET)
    assert signature_matches({"account_id": ACCOUNT, "identity_sig": identity_sig("s", ACCOUNT)},
                             "s", SYSTEM_SECRET)
    assert not signature_matches({"account_id": ACCOUNT, "owner_id": "u",
                                  "identity_sig": sig}, "s", SYSTEM_SECRET)


# --- permissions -------------------------------------------------------------------------
# master ─┬─ reseller ── client ; master ── other (a reseller)

MASTER = Target("master", (), "master", True, has_reseller_descendants=True)
RESELLER = Target("reseller", ("master",), "master", False)
CLIENT = Target("client", ("master", "reseller"), "reseller", False)
OTHER = Target("other", ("master",), "master", False)


def caller(account_id: str, role: str = "kazoo", flagged: bool = False) -> Caller:
    principal = Principal(account_id, role, account_id)
    return Caller(principal, is_superduper(principal, flagged, account_id == "master"))


def test_reads_follow_the_tree():
    assert refusal(caller("client"), CLIENT, Access.READ, "GET") is None
    assert refusal(caller("reseller"), CLIENT, Access.READ, "GET") is None
    assert refusal(caller("client"), RESELLER, Access.READ, "GET") is Refusal.HIDDEN
    assert refusal(caller("other"), CLIENT, Access.READ, "GET") is Refusal.HIDDEN
    assert refusal(caller("other", flagged=True), CLIENT, Access.READ, "GET") is None


def test_billing_is_the_resellers_or_a_superduper_admins():
    # cb_services.erl:694-702 (is_allowed/1)
    assert refusal(caller("reseller"), CLIENT, Access.BILLING, "POST") is None
    assert refusal(caller("master"), CLIENT, Access.BILLING, "POST") is None
    assert refusal(caller("client"), CLIENT, Access.BILLING, "POST") is Refusal.FORBIDDEN
    assert refusal(caller("reseller"), RESELLER, Access.BILLING, "POST") is Refusal.FORBIDDEN
    assert refusal(caller("reseller", "read"), CLIENT, Access.BILLING,
                   "POST") is Refusal.FORBIDDEN
    assert refusal(caller("other", flagged=True), RESELLER, Access.BILLING, "POST") is None
    assert refusal(caller("client", "superduper"), CLIENT, Access.BILLING, "POST") is None


def test_reseller_status_is_superduper_only():
    # cb_accounts.erl:204-213; kz_services_reseller.erl:91-131
    assert refusal(caller("master"), CLIENT, Access.RESELLER, "PUT") is None
    assert refusal(caller("reseller"), CLIENT, Access.RESELLER, "PUT") is Refusal.FORBIDDEN
    assert refusal(caller("client"), CLIENT, Access.RESELLER, "PUT") is Refusal.FORBIDDEN
    assert refusal(caller("master"), MASTER, Access.RESELLER, "DELETE") is Refusal.FORBIDDEN
    with_descendants = Target("reseller", ("master",), "master", False, True)
    assert refusal(caller("master"), with_descendants, Access.RESELLER,
                   "DELETE") is Refusal.HAS_DESCENDANTS


# --- keys fetched from crossbar ----------------------------------------------------------


@pytest.fixture
async def crossbar():
    """A stand-in for crossbar's GET /v2/auth/keys/{kid} (cb_auth.erl:525-566): it answers
    {"data": {"public_key_pem"}} to a caller whose token it accepts, and counts the calls."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    calls: list[str] = []

    async def key(request: web.Request) -> web.Response:
        calls.append(request.match_info["kid"])
        if request.match_info["kid"] != KID:
            return web.json_response({"status": "error", "error": "404"}, status=404)
        if request.headers.get("X-Auth-Token", "").count(".") != 2:
            return web.json_response({"status": "error", "error": "401"}, status=401)
        return web.json_response({"status": "success",
                                  "data": {"public_key_pem": public_pem()}})

    app = web.Application()
    app.router.add_get("/v2/auth/keys/{kid}", key)
    async with TestServer(app) as server:
        yield str(server.make_url("")), calls


async def test_a_key_is_fetched_from_crossbar_once(crossbar):
    url, calls = crossbar
    fetching = Authenticator({}, KazooKeys({}, url))
    for _ in range(3):
        found = await fetching.principal({"X-Auth-Token": kazoo_token(ACCOUNT)}, {})
        assert found.account_id == ACCOUNT
    assert calls == [KID]  # kept after the first
    for _ in range(2):  # a key crossbar does not have is not asked for again at once
        with pytest.raises(Unauthenticated, match="kid"):
            await fetching.principal({"X-Auth-Token": kazoo_token(ACCOUNT, kid="nokey")}, {})
    assert calls == [KID, "nokey"]
    with pytest.raises(Unauthenticated, match="not valid"):  # fetched key, wrong signature
        await fetching.principal({"X-Auth-Token": kazoo_token(ACCOUNT, key="another")}, {})


async def test_crossbar_down_refuses_the_token(unused_tcp_port):
    down = Authenticator({}, KazooKeys({}, f"http://127.0.0.1:{unused_tcp_port}", 2))
    with pytest.raises(Unauthenticated, match="could not be fetched"):
        await down.principal({"X-Auth-Token": kazoo_token(ACCOUNT)}, {})
