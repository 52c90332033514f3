"""The public KAZOO 4.3 differential cases: each one rated by svc must give the item totals and
the invoice summary KAZOO's own code printed (fixtures/kazoo_oracle, see its PROVENANCE.md).

KAZOO computes in IEEE doubles and sums ``recurring`` in its own item order, svc in exact
decimals, hence the tolerance.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from svc.jsonio import dumps, loads
from svc.rating import parse_quote, quote_json, rate_quote

ORACLE = Path(__file__).parent / "fixtures" / "kazoo_oracle" / "rating-diff.json"
CASES = loads(ORACLE.read_bytes())["cases"]
TOLERANCE = Decimal("1e-6")
QUOTE_FIELDS = ("plans", "overrides", "quantities", "current")


def test_the_fixture_holds_the_thousand_public_cases():
    assert len(CASES) == 1000
    assert len({case["id"] for case in CASES}) == 1000


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_svc_rates_as_kazoo(case):
    # a case is a quote document plus KAZOO's answer; through bytes, as on the wire
    document = {name: case[name] for name in QUOTE_FIELDS if name in case}
    reply = loads(dumps(quote_json(rate_quote(parse_quote(loads(dumps(document)))))))
    [invoice] = reply["invoices"]  # every case has one bookkeeper, so one invoice
    expect = case["expect"]

    got = {f"{item['category']}.{item['item']}": item["total"] for item in invoice["items"]}
    assert set(got) == set(expect["items"])
    wrong = {key: (got[key], want) for key, want in expect["items"].items()
             if abs(got[key] - want) > TOLERANCE}
    assert not wrong, f"item totals (svc, KAZOO): {wrong}"
    summary = invoice["summary"]
    assert abs(summary["recurring"] - expect["recurring"]) <= TOLERANCE
    if "today" in expect:
        assert abs(summary["today"] - expect["today"]) <= TOLERANCE
