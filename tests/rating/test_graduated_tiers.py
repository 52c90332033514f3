"""svc's opt-in ``"tiers_mode": "graduated"``: each unit at its own tier's rate (Stripe and
Lago semantics) instead of KAZOO's volume tiers. The worked examples are the
docs/rating.md's ("Graduated tiers")."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rating_helpers import items, quote, total

from svc.rating import PlanInvalid, Quantities, QuoteInvalid, lint_plan, load_plan, parse_quote
from svc.rating.item import compile_item, rate_item

TIERS = {"10": 5, "50": 4, "100": 3}


def sip_devices(count: int, **item_plan) -> dict:
    reply = quote({"plan": {"devices": {"sip_device": item_plan}}},
                  A={"devices": {"sip_device": count}})
    return items(reply)[("devices", "sip_device")]


# --- docs/rating.md's worked examples ------------------------------------------------------------

@pytest.mark.parametrize(("count", "volume", "graduated"), [
    (0, 0, 0),
    (10, 50, 50),     # 10 × 5 either way
    (11, 44, 54),     # volume: 11 × 4, a cliff; graduated: 10 × 5 + 1 × 4
    (60, 180, 240),   # 60 × 3; 10 × 5 + 40 × 4 + 10 × 3
    (120, 240, 400),  # above the top tier: 120 × rate 2; 50 + 160 + 150 + 20 × 2
])
def test_worked_examples_with_a_fallback_rate(count, volume, graduated):
    assert sip_devices(count, rates=TIERS, rate=2)["total"] == volume
    assert sip_devices(count, rates=TIERS, rate=2, tiers_mode="volume")["total"] == volume
    assert sip_devices(count, rates=TIERS, rate=2, tiers_mode="graduated")["total"] == graduated


def test_without_a_rate_units_above_the_top_tier_bill_zero_in_both_modes():
    assert sip_devices(120, rates=TIERS)["total"] == 0
    assert sip_devices(120, rates=TIERS, tiers_mode="graduated")["total"] == 360


def test_a_graduated_item_shows_the_rate_of_its_last_units_tier():
    item = sip_devices(60, rates=TIERS, rate=2, tiers_mode="graduated")
    assert (item["quantity"], item["billable"], item["rate"], item["total"]) == (60, 60, 3, 240)


def test_graduated_tiers_price_the_billable_quantity():
    item = sip_devices(3, rates=TIERS, minimum=20, tiers_mode="graduated")
    assert (item["billable"], item["total"]) == (20, 90)  # 10 × 5 + 10 × 4


def test_flat_prices_still_come_first():
    plan = {"rates": TIERS, "flat_rates": {"5": 30}, "tiers_mode": "graduated"}
    assert sip_devices(4, **plan)["total"] == 30
    assert sip_devices(11, **plan)["total"] == 54


def test_discounts_follow_kazoos_rules_on_a_graduated_item():
    discounts = {"single": {"rate": 4}, "cumulative": {"maximum": 5, "rate": 1}}
    item = sip_devices(11, rates=TIERS, rate=2, discounts=discounts, tiers_mode="graduated")
    assert item["total"] == 54 - 4 - 5
    gated = sip_devices(11, rates=TIERS, discounts=discounts, tiers_mode="graduated")
    assert gated["total"] == 54  # no plan rate: KAZOO's gate gives no discount


def test_a_cumulative_merge_keeps_the_mode():
    plan = {"merge": {"strategy": "cumulative"},
            "plan": {"devices": {"sip_device": {"rates": TIERS, "tiers_mode": "graduated"}}}}
    reply = quote(plan, A={"devices": {"sip_device": 11}})
    assert total(reply, "devices", "sip_device") == 54


# --- validation and lint ---------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["marginal", "Graduated", 1, True])
def test_an_unknown_tiers_mode_is_refused_with_its_path(mode):
    document = {"plans": [{"id": "p", "doc": {"plan": {"devices": {"sip_device": {
        "rates": TIERS, "tiers_mode": mode}}}}}]}
    with pytest.raises(QuoteInvalid) as error:
        parse_quote(document)
    [violation] = error.value.violations
    assert violation.path == "$.plans[0].doc.plan.devices.sip_device.tiers_mode"
    assert "volume" in violation.rule and "graduated" in violation.rule


def test_an_override_may_switch_the_mode_and_is_validated_too():
    plan = {"plan": {"devices": {"sip_device": {"rates": TIERS, "rate": 2}}}}
    switched = quote((plan, {"plan": {"devices": {"sip_device": {"tiers_mode": "graduated"}}}}),
                     A={"devices": {"sip_device": 11}})
    assert total(switched, "devices", "sip_device") == 54
    with pytest.raises(QuoteInvalid) as error:
        quote((plan, {"plan": {"devices": {"sip_device": {"tiers_mode": "stepped"}}}}))
    assert [v.path for v in error.value.violations] == [
        "$.plans[0].overrides.plan.devices.sip_device.tiers_mode"]


def test_lint_suggests_graduated_at_each_cliff_of_a_volume_table():
    warnings = lint_plan({"plan": {"devices": {"sip_device": {"rates": TIERS, "rate": 2}}}})
    cliffs = {v.path: v.rule for v in warnings if "graduated" in v.rule}
    assert set(cliffs) == {f"$.plan.devices.sip_device.rates['{k}']" for k in TIERS}
    first = cliffs["$.plan.devices.sip_device.rates['10']"]
    assert "drops from 50 at 10 units to 44 at 11" in first


def test_lint_is_quiet_without_a_cliff_or_once_graduated():
    rising = {"rates": {"5": 10, "10": 9}, "rate": 9}  # 50 → 54 at 6 units, 90 → 99 at 11
    assert lint_plan({"plan": {"devices": {"y": rising}}}) == []
    graduated = {"rates": TIERS, "rate": 2, "tiers_mode": "graduated"}
    assert lint_plan({"plan": {"devices": {"y": graduated}}}) == []


def test_load_plan_refuses_a_bad_mode_naming_the_path():
    with pytest.raises(PlanInvalid) as error:
        load_plan({"plan": {"x": {"y": {"tiers_mode": "tiered"}}}})
    assert error.value.violations[0].path == "$.plan.x.y.tiers_mode"


# --- properties ------------------------------------------------------------------------------

money = st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False, allow_infinity=False)
tables = st.dictionaries(st.integers(0, 200).map(str), money, min_size=1, max_size=5)
graduated_plans = st.fixed_dictionaries({"rates": tables, "tiers_mode": st.just("graduated")},
                                        optional={"rate": money})


def graduated_total(item_plan: dict, count: int) -> Decimal:
    loaded = load_plan({"plan": {"devices": {"sip_device": item_plan}}})
    plan = compile_item("devices", "sip_device", loaded["plan"]["devices"]["sip_device"])
    return rate_item(plan, Quantities({"devices": {"sip_device": count}})).total


@settings(max_examples=300)
@given(graduated_plans, st.integers(1, 10), st.integers(0, 400))
def test_the_graduated_total_never_drops_when_the_quantity_grows(item_plan, step, count):
    item_plan = {**item_plan, "step": step}
    assert graduated_total(item_plan, count) <= graduated_total(item_plan, count + 1)


@settings(max_examples=300)
@given(graduated_plans, st.integers(0, 400))
def test_the_graduated_total_never_exceeds_the_top_rate_times_the_quantity(item_plan, count):
    top = max([*item_plan["rates"].values(), item_plan.get("rate", Decimal(0))])
    assert graduated_total(item_plan, count) <= top * count
