"""A real service with API tokens for a small tree, and an HTTP client that checks every
answer against the OpenAPI document (SPEC §15).

    master ─┬─ reseller_a ── client_a
            └─ reseller_b ── client_b

Accounts come from document-change notices, plans from ``plan_put`` over AMQP: the HTTP API
is then tested on the state the other doors made.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from waiting import eventually

from svc.amqp.kazoo_notices import doc_change, publish
from svc.api.openapi import openapi
from svc.settings import ApiToken

PLAN = {"name": "Gold", "plan": {"devices": {"_all": {"rate": 2, "activation_charge": 5}},
                                 "users": {"user": {"rate": 3}}}}
# token name -> the account (by tree role) it acts for
TOKEN_ACCOUNTS = {"master": "master", "reseller_a": "reseller_a", "reseller_b": "reseller_b",
                  "client_a": "client_a"}


def secret(name: str) -> str:
    return f"{name}-secret-{name[::-1]}"


@dataclass(frozen=True)
class Tree:
    master: str
    reseller_a: str
    reseller_b: str
    client_a: str
    client_b: str

    def parents(self) -> dict[str, list[str]]:
        """Each account's pvt_tree (its ancestors, root first)."""
        return {self.master: [], self.reseller_a: [self.master],
                self.reseller_b: [self.master],
                self.client_a: [self.master, self.reseller_a],
                self.client_b: [self.master, self.reseller_b]}

    def sees(self, token: str, account_id: str) -> bool:
        own = getattr(self, TOKEN_ACCOUNTS[token])
        return account_id == own or own in self.parents()[account_id]


@pytest.fixture
def tree() -> Tree:
    return Tree(*(uuid.uuid4().hex for _ in range(5)))


@pytest.fixture
def settings(settings, tree):
    tokens = {name: ApiToken(token=secret(name), account_id=getattr(tree, role))
              for name, role in TOKEN_ACCOUNTS.items()}
    return settings.model_copy(update={"api_tokens": tokens, "master_account_id": tree.master,
                                       "sync_interval_s": 3600})


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: Any


class Api:
    """HTTP calls to the running service; every JSON answer must match the document."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def call(self, method: str, path: str, token: str | None = "master",
                   body: Any = None, data: bytes | None = None,
                   headers: dict[str, str] | None = None) -> Answer:
        sent = dict(headers or {})
        if token is not None:
            sent.setdefault("X-Auth-Token", secret(token))
        async with self.session.request(method, self.base + path, json=body, data=data,
                                        headers=sent) as response:
            answer = Answer(response.status, await response.json(content_type=None),
                            response.headers)
        check_against_document(method, path, answer)
        return answer

    async def account(self, method: str, account_id: str, path: str, **kwargs: Any) -> Answer:
        return await self.call(method, f"/v2/accounts/{account_id}{path}", **kwargs)


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


async def add_devices(channel, account_id: str, count: int) -> None:
    for n in range(count):
        await publish(channel, *doc_change({"_id": f"device{n}", "pvt_type": "device"},
                                           account_id))


# --- the answers against the OpenAPI document ------------------------------------------


@cache
def document() -> dict[str, Any]:
    return openapi()


def operation(method: str, path: str) -> dict[str, Any]:
    """The documented operation of a concrete path; fixed segments win over parameters, as
    aiohttp matches them (routes.ROUTES order)."""
    for template, item in document()["paths"].items():
        pattern = re.sub(r"\\{\w+\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path.split("?")[0]) and method.lower() in item:
            return item[method.lower()]
    raise AssertionError(f"{method} {path} is not in the OpenAPI document")


def check_against_document(method: str, path: str, answer: Answer) -> None:
    components = document()["components"]
    responses = operation(method, path)["responses"]
    assert str(answer.status) in responses, (
        f"{method} {path} answered {answer.status}, not documented: {answer.body}")
    response = responses[str(answer.status)]
    if "$ref" in response:
        response = components["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response["content"]["application/json"]["schema"]
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in Draft202012Validator(
        {**schema, "components": components}).iter_errors(answer.body)]
    assert not errors, f"{method} {path} ({answer.status}) does not match the document: {errors}"

