"""The HTTP API's test helpers: the token tree, an HTTP client that checks every answer
against the OpenAPI document (SPEC §15), and devices from notices. A module of its own
(not ``conftest``), so that importing it never picks another directory's conftest."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import aiohttp
from jsonschema import Draft202012Validator

from svc.amqp.kazoo_notices import doc_change, publish
from svc.api.openapi import openapi

PLAN = {"name": "Gold", "plan": {"devices": {"_all": {"rate": 2, "activation_charge": 5}},
                                 "users": {"user": {"rate": 3}}}}
# token name -> the account (by tree role) it acts for, and its role; the master's token
# acts as the master, a super-duper admin
TOKENS = {"master": ("master", "reseller"), "reseller_a": ("reseller_a", "reseller"),
          "reseller_b": ("reseller_b", "reseller"), "client_a": ("client_a", "reseller"),
          "reader_a": ("reseller_a", "read"), "super_b": ("client_b", "superduper")}
TOKEN_ACCOUNTS = {name: account for name, (account, _) in TOKENS.items()}
# the envelope's fields beside data and status (crossbar's api_util.erl:1628-1651)
META = ("auth_token", "request_id", "node", "version", "timestamp", "revision")


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
        return (TOKENS[token][1] == "superduper" or account_id == own
                or own in self.parents()[account_id])


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: Any

    @property
    def bare(self) -> Any:
        """The body without the envelope's per-request fields."""
        return {k: v for k, v in self.body.items() if k not in META}

    @property
    def error(self) -> tuple[int, str]:
        return self.status, self.body["message"]


class Api:
    """HTTP calls to the running service; every JSON answer must match the document."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def call(self, method: str, path: str, token: str | None = "master",
                   body: Any = None, data: bytes | None = None,
                   headers: dict[str, str] | None = None, raw_token: str | None = None
                   ) -> Answer:
        sent = dict(headers or {})
        if raw_token is not None:
            sent["X-Auth-Token"] = raw_token
        elif token is not None:
            sent.setdefault("X-Auth-Token", secret(token))
        async with self.session.request(method, self.base + path, json=body, data=data,
                                        headers=sent) as response:
            answer = Answer(response.status, await response.json(content_type=None),
                            response.headers)
        check_against_document(method, path, answer)
        return answer

    async def account(self, method: str, account_id: str, path: str, **kwargs: Any) -> Answer:
        return await self.call(method, f"/v2/accounts/{account_id}{path}", **kwargs)



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
        if re.fullmatch(pattern + "/?", path.split("?")[0]) and method.lower() in item:
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

