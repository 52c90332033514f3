"""Schemathesis against the committed OpenAPI document and a running service (SPEC §15): the
documented operations, fed generated valid and invalid input and chained along the document's
links (the stateful phase: assign an available plan then remove it, sync then list and retry
the deliveries, page the audit trail), never answer 5xx, and answer only what the document
says. Bounded: a fixed seed, a few examples per operation, and a time limit.

The account is fixed to a real one (client A, with the master's token: a super-duper admin
may call every route, promote and demote included), so the generated
requests reach the handlers rather than stopping at 404; the token matrix covers the rest.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from pathlib import Path

import pytest
from http_api import secret

DOCUMENT = Path(__file__).resolve().parents[2] / "http_schemas" / "openapi.json"
CLI = Path(sys.executable).with_name("schemathesis")
# Not negative_data_rejection: svc accepts, beyond the canonical types the document shows,
# what the SPEC (§12) asks it to (numeric strings for numbers, "true"/"false" and 0/1 for
# booleans), so some schema-violating input is rightly accepted.
CHECKS = ",".join([
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_schema_conformance", "ignored_auth", "unsupported_method",
])
TIME_LIMIT_S = 180
# Which links the stateful phase can follow depends on the data generated from the document:
# with this seed it follows all of them (another seed may leave one unfollowed, such as a
# next page when there is one page only).
SEED = "2"


async def delivered(api, account_id: str) -> None:
    """A delivery of the account exists, so the links that start from the deliveries list
    (retry the newest, the next page) have data to follow whatever the fuzzing did."""
    for method, path, body in (("POST", "/services/gold", None),
                               ("POST", "/services/manual",
                                {"quantities": {"devices": {"sip_device": 1}}}),
                               ("POST", "/services/sync", None)):
        answer = await api.account(method, account_id, path, body=body)
        assert answer.status == 200, answer.body
    listed = await api.account("GET", account_id, "/services/deliveries")
    assert listed.body["data"], listed.body


@pytest.fixture
def settings(settings):
    # a sync waiting on a bookkeeper nobody answers holds the account (409 to every other
    # sync): it must not last the whole stateful phase
    return settings.model_copy(update={"bookkeeper_timeout_s": 0.5})


@pytest.mark.timeout(TIME_LIMIT_S + 60)
async def test_schemathesis_finds_no_server_error(service, accounts, api, tmp_path):
    if not CLI.exists():
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    await delivered(api, accounts.client_a)
    config = tmp_path / "schemathesis.toml"
    # only the document's own links: every one of them must be followed (inferred ones are
    # schemathesis' guesses, which it may not reach within the bound); the plan is gold, so
    # that assigning succeeds, and its links
    config.write_text(f'[parameters]\n"path.account_id" = "{accounts.client_a}"\n'
                      '"path.plan_id" = "gold"\n'
                      '[phases.stateful.inference]\nalgorithms = []\n')
    process = await asyncio.create_subprocess_exec(  # its own process: svc runs in this loop
        str(CLI), "--config-file", str(config), "run", str(DOCUMENT),
        "--url", f"http://127.0.0.1:{service.probes.port}",
        "--header", f"X-Auth-Token: {secret('master')}",
        "--checks", CHECKS, "--max-examples", "50", "--seed", SEED,
        "--phases", "examples,coverage,fuzzing,stateful",  # not --max-time: fuzzing would repeat
        "--workers", "1", "--request-timeout", "20",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path)
    try:
        out, _ = await asyncio.wait_for(process.communicate(), TIME_LIMIT_S)
    finally:
        if process.returncode is None:
            process.kill()
    report = out.decode(errors="replace")
    assert process.returncode == 0, report[-6000:]
    assert "passed" in report.lower(), report[-2000:]
    links = re.search(r"API Links:\s+(\d+) covered / (\d+) selected", report)
    assert links and int(links[1]) == int(links[2]) > 0, report[-3000:]  # stateful ran them
    shutil.rmtree(tmp_path / "schemathesis-report", ignore_errors=True)
