"""``svc demo`` as a newcomer runs it: against a running service, then the ids it prints are
enough to call the HTTP API on the demo's accounts."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest

from svc.settings import ApiToken

SVC = str(Path(sys.executable).with_name("svc"))
MASTER = uuid.uuid4().hex
TOKEN = "demo-secret"


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={
        "sync_interval_s": 1, "api_tokens": {"demo": ApiToken(token=TOKEN, account_id=MASTER)}})


async def test_demo_prints_the_ids_the_http_api_needs(service, amqp_url):
    port = service.probes.port
    process = await asyncio.create_subprocess_exec(
        SVC, "demo", "--master", MASTER, "--timeout", "60",
        env={**os.environ, "SVC_AMQP_URL": amqp_url, "SVC_HTTP_PORT": str(port)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, err.decode()
    text = out.decode()
    ids = dict(re.findall(r"^  (master account|reseller|client 1|client 2|plan) +(\S+)",
                          text, re.MULTILINE))
    assert ids["master account"] == MASTER and ids["plan"] == "seed_plan"
    # how to make a token that reaches them and may run every command of the guide
    assert f'"account_id": "{MASTER}", "role": "superduper"' in text
    export = dict(re.findall(r"(\w+)=(\S+)", text.rsplit("export ", 1)[1]))
    assert export["SVC"] == f"http://127.0.0.1:{port}"
    assert (export["ACCOUNT_ID"], export["PLAN_ID"]) == (ids["client 1"], "seed_plan")

    url = f"{export['SVC']}/v2/accounts/{export['ACCOUNT_ID']}/services/summary"
    async with aiohttp.ClientSession() as http, http.get(
            url, headers={"X-Auth-Token": TOKEN}) as response:
        assert response.status == 200, await response.text()
        summary = (await response.json())["data"]
    assert summary["reseller_id"] == ids["reseller"]
    assert summary["plans"] == {"seed_plan": {"vendor_id": ids["reseller"], "overrides": {}}}


async def test_demo_without_a_service_says_so_in_one_line(amqp_url):
    process = await asyncio.create_subprocess_exec(
        SVC, "demo", "--timeout", "5", env={**os.environ, "SVC_AMQP_URL": amqp_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert err.decode().strip() == (
        "error: svc did not answer: is `svc serve` running against SVC_AMQP_URL?")
