"""A real service with API tokens for a small tree, and an HTTP client that checks every
answer against the OpenAPI document (SPEC §15).

    master ─┬─ reseller_a ── client_a
            └─ reseller_b ── client_b

Accounts come from document-change notices, plans from ``plan_put`` over AMQP: the HTTP API
is then tested on the state the other doors made.
"""

from __future__ import annotations

import uuid

import aiohttp
import pytest
from http_api import PLAN, TOKENS, Api, Tree, secret
from kazoo_tokens import KID, public_pem
from waiting import eventually

from svc.amqp.kazoo_notices import doc_change, publish
from svc.settings import ApiToken


@pytest.fixture
def tree() -> Tree:
    return Tree(*(uuid.uuid4().hex for _ in range(5)))


@pytest.fixture
def settings(settings, tree):
    tokens = {name: ApiToken(token=secret(name), account_id=getattr(tree, account), role=role)
              for name, (account, role) in TOKENS.items()}
    return settings.model_copy(update={"api_tokens": tokens, "master_account_id": tree.master,
                                       "kazoo_auth_keys": {KID: public_pem()},
                                       "sync_interval_s": 3600})


@pytest.fixture
async def api(service):
    async with aiohttp.ClientSession() as session:
        yield Api(session, f"http://127.0.0.1:{service.probes.port}")


@pytest.fixture
async def accounts(service, client, channel, tree, api) -> Tree:
    """The tree, known to svc, with the resellers flagged and a plan of reseller A's."""
    resellers = {tree.reseller_a, tree.reseller_b}
    for account_id, parents in tree.parents().items():
        doc = {"_id": account_id, "pvt_type": "account", "pvt_tree": parents,
               "name": account_id, "pvt_reseller": account_id in resellers}
        await publish(channel, *doc_change(doc, account_id))

    async def known() -> bool:
        answers = [await api.account("GET", account_id, "/reseller")
                   for account_id in tree.parents()]
        return all(answer.status == 200 for answer in answers)

    await eventually(known)
    put = await client.call("plan_put", {"Account-ID": tree.reseller_a,
                                         "Plan": {"id": "gold", "doc": PLAN}})
    assert put["Status"] == "success", put
    return tree

