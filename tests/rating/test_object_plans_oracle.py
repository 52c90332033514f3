"""The public KAZOO 4.3 object-plan cases: plans named by the account's users and devices
(``service.plans``), rated by KAZOO's own code (``kz_services_plans:get_object_plans/3``);
svc must print the same item totals and summary for every one (fixtures/kazoo_oracle, see
its PROVENANCE.md and README.md)."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from rating_helpers import ORACLE_TOLERANCE, assert_rates_as_kazoo

from svc.jsonio import dumps, loads
from svc.models.requests import QuoteReq
from svc.rating import parse_quote, quote_json, rate_quote

ORACLE = Path(__file__).parent / "fixtures" / "kazoo_oracle" / "object-plans.json"
CASES = loads(ORACLE.read_bytes())["cases"]


def test_the_fixture_holds_the_two_hundred_public_cases():
    assert len(CASES) == 200
    assert len({case["id"] for case in CASES}) == 200


def test_the_cases_would_fail_without_their_object_plans():
    """Most cases rate differently when the documents name nothing, so they test the
    object plans and not only what the 1,000 plain cases already test."""
    different = 0
    for case in CASES:
        document = {k: v for k, v in case.items() if k not in ("id", "expect")}
        try:
            assert_rates_as_kazoo({**document, "object_plans": []}, case["expect"])
        except AssertionError:
            different += 1
    assert different >= 180


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_svc_rates_object_plans_as_kazoo(case):
    # the case as given is the quote document (`svc quote` reads it whole), plus KAZOO's answer
    document = {k: v for k, v in case.items() if k not in ("id", "expect")}
    assert_rates_as_kazoo(document, case["expect"])


def test_the_svc_command_reads_a_case_file_whole(tmp_path):
    """``svc quote`` as a user runs it, on a case file with its id and expect left in."""
    case = next(c for c in CASES if c["id"] == "OP0001")
    path = tmp_path / "case.json"
    path.write_bytes(dumps(case))
    svc = Path(sys.executable).parent / "svc"
    result = subprocess.run([str(svc), "quote", str(path)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    [invoice] = loads(result.stdout)["invoices"]
    assert abs(invoice["summary"]["recurring"] - case["expect"]["recurring"]) <= ORACLE_TOLERANCE
    assert invoice["summary"]["recurring"] == Decimal("225.95")


def test_the_quote_request_model_carries_the_object_plans():
    """The ``quote`` request's ``Quote-Request`` goes through its model before rating: the
    model keeps the documents, their order and the extra plans, so every case rates the same
    as its document does."""
    envelope = {"App-Name": "t", "App-Version": "1", "Event-Category": "quote",
                "Event-Name": "quote_req", "Msg-ID": "m"}
    for case in CASES:
        document = {k: v for k, v in case.items() if k not in ("id", "expect")}
        request = QuoteReq.model_validate({**envelope, "Quote-Request": document})
        through_model = parse_quote(request.quote_request.model_dump())
        assert quote_json(rate_quote(through_model)) == quote_json(
            rate_quote(parse_quote(document))), case["id"]
