"""The public KAZOO 4.3 differential cases: each one rated by svc must give the item totals and
the invoice summary KAZOO's own code printed (fixtures/kazoo_oracle, see its PROVENANCE.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rating_helpers import assert_rates_as_kazoo

from svc.jsonio import loads

ORACLE = Path(__file__).parent / "fixtures" / "kazoo_oracle" / "rating-diff.json"
CASES = loads(ORACLE.read_bytes())["cases"]
QUOTE_FIELDS = ("plans", "overrides", "quantities", "current")


def test_the_fixture_holds_the_thousand_public_cases():
    assert len(CASES) == 1000
    assert len({case["id"] for case in CASES}) == 1000


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_svc_rates_as_kazoo(case):
    # a case is a quote document plus KAZOO's answer
    assert_rates_as_kazoo({name: case[name] for name in QUOTE_FIELDS if name in case},
                          case["expect"])
