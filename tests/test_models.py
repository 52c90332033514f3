"""The models are the one description of what svc sends: the invoice model holds exactly what
the rating engine renders (KAZOO's item JSON) on all 1,000 public KAZOO cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from svc.jsonio import loads
from svc.models.documents import Quote
from svc.rating import parse_quote, quote_json, rate_quote

ORACLE = Path(__file__).parent / "rating" / "fixtures" / "kazoo_oracle" / "rating-diff.json"
CASES = loads(ORACLE.read_bytes())["cases"]
QUOTE_FIELDS = ("plans", "overrides", "quantities", "current")


def rendered(case: dict) -> dict:
    return quote_json(rate_quote(parse_quote({k: case[k] for k in QUOTE_FIELDS if k in case})))


def test_the_cases_render_every_optional_part():
    items = [item for case in CASES for invoice in rendered(case)["invoices"]
             for item in invoice["items"]]
    for part in ("discounts", "minimum", "maximum", "changes"):
        assert any(part in item for item in items), part
    assert any(invoice["activation_charges"] for case in CASES
               for invoice in rendered(case)["invoices"])


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_the_quote_model_dumps_what_rating_renders(case):
    quote = rendered(case)
    assert Quote.model_validate(quote).model_dump() == quote
