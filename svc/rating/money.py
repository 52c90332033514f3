"""Money is exact: amounts are ``Decimal`` with enough digits that no product or sum of
bounded inputs is ever rounded.

An input carries at most ``MAX_DIGITS`` significant digits with an exponent within
±``MAX_EXPONENT`` (so its digits span at most 2 × 30 + 30 places), a quantity at most
10**9; a rate times a quantity, less a discount, summed over an invoice's items, stays well
within ``PRECISION`` digits, where Decimal's default of 28 would round it silently.
"""

from __future__ import annotations

import decimal

from ..jsonio import MAX_DIGITS, MAX_EXPONENT

PRECISION = 2 * MAX_EXPONENT + MAX_DIGITS + 40


def exact_money() -> None:
    """For this thread's context and every context made later (new threads and tasks that
    never read one)."""
    decimal.DefaultContext.prec = PRECISION
    decimal.getcontext().prec = PRECISION


exact_money()
