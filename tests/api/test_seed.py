"""The seed's operator commands (the service-plan guide's curl lines), as the README's "HTTP
API" section adapts them to svc, run as they are with ``curl``; and the seed's questions,
answered over HTTP as the README says."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import uuid
from pathlib import Path

import aiohttp
import pytest
from kazoo_tokens import kazoo_token
from waiting import eventually

from svc.amqp.kazoo_notices import doc_change, publish
from svc.settings import BookkeeperSetting

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- seed curl commands -->"


def seed_commands() -> list[str]:
    """The curl lines of the README's block after the marker."""
    block = README.read_text().split(MARKER, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.startswith("curl ")]


def test_the_readme_has_every_seed_command():
    routes = [(re.search(r"-X (\w+)", c)[1], c.rsplit("$ACCOUNT_ID", 1)[1].rstrip('"'))
              for c in seed_commands()]
    assert routes == [("GET", "/services/available"), ("GET", "/services"),
                      ("GET", "/services/summary"), ("POST", "/services/$PLAN_ID"),
                      ("DELETE", "/services/$PLAN_ID"), ("PUT", "/reseller"),
                      ("DELETE", "/reseller")]


async def run(command: str, env: dict[str, str]) -> dict:
    """One command: with curl through bash as written, else the same request by aiohttp.
    Never blocking: the service answers in this same event loop."""
    if shutil.which("curl"):
        process = await asyncio.create_subprocess_exec(
            "bash", "-c", command, env={**os.environ, **env},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, err.decode()
        return json.loads(out)
    words = [os.path.expandvars(word) for word in shlex.split(command)]  # with env exported
    method, header = words[words.index("-X") + 1], words[words.index("-H") + 1]
    name, _, value = header.partition(": ")
    async with aiohttp.ClientSession() as http, http.request(
            method, words[-1], headers={name: value}) as response:
        return await response.json()


async def test_seed_commands_work_against_svc(service, accounts, api, monkeypatch):
    env = {"SVC": f"http://127.0.0.1:{service.probes.port}",
           # a KAZOO login of the master: promote and demote are super-duper admins' only
           "AUTH_TOKEN": kazoo_token(accounts.master), "ACCOUNT_ID": accounts.client_a,
           "PLAN_ID": "gold"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # for the aiohttp stand-in's expandvars
    answers = [await run(command, env) for command in seed_commands()]
    assert [answer["status"] for answer in answers] == ["success"] * 7, answers
    available, services, summary, assigned, removed, promoted, demoted = answers
    assert [plan["id"] for plan in available["data"]] == ["gold"]
    assert services["data"] == summary["data"]["plans"] == {}  # GET /services: the plans
    assert assigned["data"]["plans"] == {"gold": {"vendor_id": accounts.reseller_a,
                                                  "overrides": {}}}
    assert removed["data"]["plans"] == {}
    assert (promoted["data"]["is_reseller"], demoted["data"]["is_reseller"]) == (True, False)


async def test_is_this_account_set_up_as_a_reseller(api, accounts):
    reseller = await api.account("GET", accounts.reseller_a, "/reseller")
    assert reseller.body["data"]["is_reseller"] is True
    child = await api.account("GET", accounts.client_a, "/reseller")
    assert child.body["data"] == {"reseller_id": accounts.reseller_a, "is_reseller": False}
    offered = await api.account("GET", accounts.client_a, "/services/available")
    assert [plan["vendor_id"] for plan in offered.body["data"]] == [accounts.reseller_a]


async def test_what_the_default_plan_does(api, client, channel, accounts):
    before = uuid.uuid4().hex
    await new_account(api, channel, before, [accounts.master, accounts.reseller_a])
    reply = await client.call("default_plan_set", {"Account-ID": accounts.reseller_a,
                                                   "Plan-ID": "gold"})
    assert reply["Plan-ID"] == "gold"
    after = uuid.uuid4().hex
    await new_account(api, channel, after, [accounts.master, accounts.reseller_a])
    plans = (await api.account("GET", after, "/services")).body["data"]
    assert plans == {"gold": {"vendor_id": accounts.reseller_a, "overrides": {}}}
    untouched = (await api.account("GET", before, "/services")).body["data"]
    assert untouched == {}  # changing the default affects new accounts only


async def new_account(api, channel, account_id: str, parents: list[str]) -> None:
    doc = {"_id": account_id, "pvt_type": "account", "pvt_tree": parents, "name": "new"}
    await publish(channel, *doc_change(doc, account_id))

    async def known():
        return (await api.account("GET", account_id, "/reseller")).status == 200

    await eventually(known)


@pytest.fixture
def settings(settings):
    # a webhook bookkeeper nobody answers: port 1 on loopback refuses at once
    down = BookkeeperSetting(adapter="http", url="http://127.0.0.1:1/books", secret="s",
                             timeout_s=2)
    return settings.model_copy(update={"bookkeepers": {"books": down}})


async def test_what_happens_when_the_bookkeeper_is_down(api, client, channel, accounts):
    reply = await client.call("bookkeeper_set", {"Account-ID": accounts.reseller_a,
                                                 "Bookkeeper": {"id": "books", "type": "http"}})
    assert reply["Status"] == "success"
    await publish(channel, *doc_change({"_id": "d1", "pvt_type": "device"}, accounts.client_a))
    await api.account("POST", accounts.client_a, "/services/gold")

    async def counted():
        summary = (await api.account("GET", accounts.client_a, "/services/summary")).body[
            "data"]
        return summary["quantities"]["account"]

    await eventually(counted)
    synced = await api.account("POST", accounts.client_a, "/services/sync")
    assert synced.status == 200
    [result] = synced.body["data"]["results"]
    assert result["status"] == "failed" and result["bookkeeper"]["id"] == "books"
    assert synced.body["data"]["account_status"] == "good_standing"  # unchanged
    summary = (await api.account("GET", accounts.client_a, "/services/summary")).body["data"]
    assert summary["dirty"] is True
    assert summary["last_sync"]["results"][0]["status"] == "failed"
    async with api.session.get(api.base + "/readyz") as response:
        books = [b for b in (await response.json())["bookkeepers"] if b["id"] == "books"]
    assert books[0]["last_result"]["outcome"] == "failed"
