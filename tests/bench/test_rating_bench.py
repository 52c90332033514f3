"""Quotes per second of a committed 10-item plan, in-process on one core.

Four figures, measured side by side in one run: the merge cached (what the service does:
plans keyed by id and version), cold (a fresh merge for every quote), the whole path from
JSON bytes (parse, validate, rate, serialise), and the same plan with every item in
``"tiers_mode": "graduated"``, merge cached. Rounds are interleaved and medians reported.
Target: cached >= 20,000 quotes/s.
"""

from __future__ import annotations

import statistics
import time
from decimal import Decimal as D
from pathlib import Path

from svc.jsonio import dumps, loads
from svc.rating import (
    AssignedPlan,
    MergeCache,
    Quantities,
    QuoteRequest,
    State,
    load_plan,
    parse_quote,
    quote_json,
    rate_quote,
)

PLAN = loads((Path(__file__).parent / "fixtures" / "ten-item-plan.json").read_text())
GRADUATED = {**PLAN, "plan": {
    category: {key: {**item_plan, "tiers_mode": "graduated"} for key, item_plan in items.items()}
    for category, items in PLAN["plan"].items()
}}
QUANTITIES = Quantities(
    account={"devices": {"sip_device": 12, "softphone": 3, "fax": 1},
             "users": {"user": 4, "admin": 2}, "limits": {"twoway_trunks": 3, "inbound_trunks": 12},
             "phone_numbers": {"did_us": 7, "tollfree_us": 2},
             "number_services": {"e911": 7, "cnam": 7}},
    cascade={"devices": {"sip_device": 20}, "phone_numbers": {"tollfree_us": 3}},
)


def per_second(count: int, run) -> float:
    started = time.perf_counter()
    for _ in range(count):
        run()
    return count / (time.perf_counter() - started)


def test_rating_throughput(full_size):
    count = 20_000 if full_size else 500
    # as read from a store: keyed by (source, version), the doc is not hashed
    plan = AssignedPlan("bench", "reseller", load_plan(PLAN), version=1, source="bench")
    request = QuoteRequest(State((plan,), {}, QUANTITIES))
    cache = MergeCache()
    [invoice] = rate_quote(request, cache)
    assert len(invoice.items) == 10
    graduated = QuoteRequest(State(
        (AssignedPlan("bench-graduated", "reseller", load_plan(GRADUATED), version=1,
                      source="bench"),),
        {}, QUANTITIES))
    [graduated_invoice] = rate_quote(graduated, cache)
    # only the tiered item differs: 33 SIP devices, volume 33 × 49.95, graduated 15 × 24.95 +
    # 13 × 49.95 (the first 5 are free)
    assert invoice.recurring - graduated_invoice.recurring == 33 * D("49.95") - (
        15 * D("24.95") + 13 * D("49.95"))

    document = dumps({"plans": [{"id": "bench", "vendor_id": "reseller", "doc": PLAN,
                                 "version": 1}],
                      "quantities": {"account": QUANTITIES.account,
                                     "cascade": QUANTITIES.cascade}})
    runs = {
        "cached": (count, lambda: rate_quote(request, cache)),
        # right after its volume twin, so both run in the same conditions
        "graduated": (count, lambda: rate_quote(graduated, cache)),
        "cold": (count // 4, lambda: rate_quote(request, MergeCache())),
        "end_to_end": (count // 4, lambda: dumps(quote_json(rate_quote(
            parse_quote(loads(document)), cache)))),
    }
    rounds = 3 if full_size else 1
    figures: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, (n, run) in runs.items():
            figures[name].append(per_second(n, run))
    cached, graduated_cached, cold, end_to_end = (
        statistics.median(figures[name]) for name in runs)

    print(f"\nrating, 10-item plan, median of {rounds} x {count} quotes: "
          f"cached merge {cached:,.0f}/s, "
          f"cold merge {cold:,.0f}/s ({cold / cached:.2f}x cached), "
          f"JSON in to JSON out {end_to_end:,.0f}/s ({end_to_end / cached:.2f}x cached), "
          f"graduated tiers, merge cached {graduated_cached:,.0f}/s "
          f"({graduated_cached / cached:.2f}x cached)")
    assert invoice.recurring > 0
    if full_size:
        assert cached >= 20_000, f"target: >= 20,000 quotes/s with the merge cached: {cached:,.0f}"
