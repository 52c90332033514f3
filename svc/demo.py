"""``svc demo``: the seed's story against a running service.

A reseller loads the seed plan and makes it its default; two client accounts are created
through document-change notices, get devices, users and numbers; svc counts them, and the
summary is printed as a table once the counts (and, when the sync loop runs, the sync) are in,
followed by the ids a newcomer needs to try the HTTP API on those accounts.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .amqp.client import ServicesClient
from .amqp.kazoo_notices import doc_change, publish
from .jsonio import loads

Doc = dict[str, Any]
SEED_PLAN_ID = "seed_plan"


@dataclass(frozen=True)
class DemoAccounts:
    """The accounts the demo made, and the plan it gave them."""

    master: str
    reseller: str
    clients: tuple[str, ...]
    plan: str = SEED_PLAN_ID


def seed_plan() -> Doc:
    return loads(resources.files("svc").joinpath("seed_plan.json").read_text())


def _account(account_id: str, tree: list[str], name: str, reseller: bool = False) -> Doc:
    return {"_id": account_id, "pvt_type": "account", "pvt_tree": tree, "name": name,
            "pvt_reseller": reseller}


def client_documents(n: int) -> list[Doc]:
    """What a small office has: phones, a softphone, users, numbers, trunks."""
    return [
        *({"_id": f"dev{n}{i}", "pvt_type": "device", "device_type": "sip_device"}
          for i in range(3 + n)),
        {"_id": f"soft{n}", "pvt_type": "device", "device_type": "softphone"},
        {"_id": f"user{n}", "pvt_type": "user", "priv_level": "admin"},
        {"_id": f"+1415555{n:04d}", "pvt_type": "number", "pvt_module_name": "knm_bandwidth2",
         "pvt_features": {"e911": {}, "cnam": {}}},
        {"_id": f"+1800555{n:04d}", "pvt_type": "number", "pvt_module_name": "knm_bandwidth2"},
        {"_id": "limits", "pvt_type": "limits", "twoway_trunks": 2},
    ]


async def _until(check, timeout: float, what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while (result := await check()) is None:
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")
        await asyncio.sleep(0.2)
    return result


async def run_demo(client: ServicesClient, timeout: float = 120,
                   master: str | None = None) -> tuple[DemoAccounts, list[Doc]]:
    """The accounts made, and each client account's summary once its counts are in (and
    synced, if the service syncs). ``master`` names the top account (an HTTP API token may
    already be configured for it); by default it is new."""
    master = master or uuid.uuid4().hex
    reseller = uuid.uuid4().hex
    clients = tuple(uuid.uuid4().hex for _ in range(2))
    channel = client.channel
    for routing_key, body in (doc_change(_account(master, [], "Master"), master),
                              doc_change(_account(reseller, [master], "Reseller", True),
                                         reseller)):
        await publish(channel, routing_key, body)

    async def known() -> Doc | None:
        reply = await client.call("reseller_get", {"Account-ID": reseller})
        return reply if reply.get("Is-Reseller") else None

    await _until(known, timeout, "the reseller's account document")
    await client.call("plan_put", {"Account-ID": reseller,
                                   "Plan": {"id": SEED_PLAN_ID, "doc": seed_plan()}})
    await client.call("default_plan_set", {"Account-ID": reseller, "Plan-ID": SEED_PLAN_ID})
    for n, account in enumerate(clients):
        await publish(channel, *doc_change(_account(account, [master, reseller],
                                                    f"Client {n + 1}"), account))
        for doc in client_documents(n):
            await publish(channel, *doc_change(doc, account))

    summaries = []
    for n, account in enumerate(clients):
        devices = 4 + n

        async def ready(account: str = account, devices: int = devices) -> Doc | None:
            reply = await client.call("summary", {"Account-ID": account})
            summary = reply.get("Summary")
            if not summary:
                return None
            counted = sum(summary["quantities"]["account"].get("devices", {}).values())
            return summary if counted == devices and not summary["dirty"] else None

        summaries.append(await _until(ready, timeout, f"client {n + 1} to be counted and synced"))
    return DemoAccounts(master, reseller, clients), summaries


def accounts_text(accounts: DemoAccounts, http_port: int) -> str:
    """What to paste to try the HTTP API on the demo's accounts: their ids, how to make a
    token that reaches them, and the shell variables the README's curl commands use."""
    # superduper: the guide's commands include promoting and demoting, which only such a
    # caller may do (a read token answers the GETs alone)
    token = json.dumps({"demo": {"token": "<a secret>", "account_id": accounts.master,
                                 "role": "superduper"}})
    lines = [
        "The demo's accounts, for the HTTP API:",
        f"  master account  {accounts.master}",
        f"  reseller        {accounts.reseller}",
        *(f"  client {n}        {client}" for n, client in enumerate(accounts.clients, 1)),
        f"  plan            {accounts.plan} (the reseller's default, assigned to each client)",
        f"  API token       a token of `svc serve` whose account_id is {accounts.master}, e.g.",
        f"                  SVC_API_TOKENS='{token}'",
        f"export SVC=http://127.0.0.1:{http_port} ACCOUNT_ID={accounts.clients[0]} "
        f"PLAN_ID={accounts.plan} AUTH_TOKEN='<the token>'",
    ]
    return "\n".join(lines)
