"""Money is exact at the input bounds: a rate of 30 significant digits times the largest
quantity, checked against exact rational arithmetic (Decimal's default 28 digits rounds it)."""

from __future__ import annotations

import threading
from decimal import Decimal
from fractions import Fraction

from svc.rating import parse_quote, rate_quote
from svc.rating.coerce import MAX_QUANTITY

RATE = "1234567890.12345678901234567890"  # 30 significant digits
QUANTITY = MAX_QUANTITY - 1


def recurring_total() -> Decimal:
    request = parse_quote({
        "plans": [{"id": "p", "doc": {"devices": {"_all": {"rate": Decimal(RATE)}}}}],
        "quantities": {"account": {"devices": {"sip_device": QUANTITY}}}})
    [invoice] = rate_quote(request)
    return Decimal(invoice.as_json()["summary"]["recurring"])


def test_a_rate_of_thirty_digits_times_the_largest_quantity_is_exact():
    assert Fraction(recurring_total()) == Fraction(RATE) * QUANTITY


def test_it_is_exact_in_a_new_thread_too():
    totals: list[Decimal] = []
    thread = threading.Thread(target=lambda: totals.append(recurring_total()))
    thread.start()
    thread.join(10)
    assert [Fraction(t) for t in totals] == [Fraction(RATE) * QUANTITY]
