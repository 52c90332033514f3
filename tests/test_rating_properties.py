"""Invariants of the rating engine, checked with hypothesis over generated plans."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from svc.rating import AssignedPlan, Quantities, load_plan, merge_plans, rate_invoices
from svc.rating.item import compile_item, rate_item

ITEMS = ["sip_device", "softphone", "fax", "cellphone"]
money = st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False, allow_infinity=False)
counts = st.integers(min_value=0, max_value=500)
tiers = st.dictionaries(st.integers(1, 200).map(str), money, max_size=4)
discount = st.fixed_dictionaries({}, optional={"rate": money, "maximum": counts,
                                               "minimum": st.integers(0, 5)})
item_plans = st.fixed_dictionaries({}, optional={
    "rate": money, "rates": tiers, "flat_rates": tiers, "flat_rate": money,
    "minimum": counts, "maximum": counts, "step": st.integers(1, 10),
    "cascade": st.booleans(), "activation_charge": money,
    "discounts": st.fixed_dictionaries({}, optional={"single": discount,
                                                    "cumulative": discount}),
})
quantity_objects = st.dictionaries(st.sampled_from(ITEMS), counts, max_size=4)


def plan_of(item_plan: dict) -> dict:
    return load_plan({"plan": {"devices": {"sip_device": item_plan}}})


def rated(item_plan: dict, account: dict, cascade: dict | None = None):
    loaded = plan_of(item_plan)["plan"]["devices"]["sip_device"]
    return rate_item(compile_item("devices", "sip_device", loaded),
                     Quantities({"devices": account}, {"devices": cascade or {}}))


@given(item_plans, quantity_objects, quantity_objects)
def test_total_is_billable_times_rate_minus_discounts(item_plan, account, cascade):
    item = rated(item_plan, account, cascade)
    single = item.single_rate
    cumulative = item.cumulative_quantity * item.cumulative_rate
    assert item.total == item.billable * item.rate - single - cumulative
    assert item.cumulative_quantity <= item.billable
    assert isinstance(item.total, Decimal)


@given(item_plans, quantity_objects)
def test_billable_respects_minimum_and_step(item_plan, account):
    item = rated(item_plan, account)
    flat = item.billable == 1 and (item_plan.get("flat_rate") or item_plan.get("flat_rates"))
    if not flat:
        step = item_plan.get("step", 1)
        assert item.billable % step == 0
        minimum, maximum = item_plan.get("minimum", 0), item_plan.get("maximum")
        # KAZOO tests the minimum only when the quantity is below it, so a maximum set
        # under the minimum can still cap a larger quantity
        if maximum is None or maximum >= minimum:
            assert item.billable >= minimum


@given(st.lists(st.sampled_from(ITEMS), unique=True), quantity_objects, money)
def test_all_with_every_item_excepted_bills_nothing(excepted, account, rate):
    account = {k: v for k, v in account.items() if k in excepted}
    plan = load_plan({"plan": {"devices": {"_all": {"rate": rate, "exceptions": excepted}}}})
    [merged] = merge_plans([AssignedPlan("p", "r", plan)], {})
    [invoice] = rate_invoices([merged], Quantities({"devices": account}))
    assert invoice.recurring == 0


@given(st.sampled_from(["simple", "recursive"]), item_plans, quantity_objects)
def test_merging_a_plan_with_itself_changes_nothing(strategy, item_plan, account):
    doc = plan_of(item_plan) | {"merge": {"strategy": strategy}}
    quantities = Quantities({"devices": account})
    alone = rate_invoices(merge_plans([AssignedPlan("p", "r", doc)], {}), quantities)
    twice = rate_invoices(
        merge_plans([AssignedPlan("p", "r", doc), AssignedPlan("q", "r", doc)], {}),
        quantities)
    assert [i.as_json() for i in alone] == [i.as_json() for i in twice]


simple_item_plans = st.fixed_dictionaries({"rate": money}, optional={
    "minimum": counts, "maximum": counts, "step": st.integers(1, 10), "flat_rate": money})


@settings(max_examples=200)
@given(simple_item_plans, st.integers(0, 500))
def test_adding_a_unit_never_lowers_an_invoice_without_tiers_or_discounts(item_plan, n):
    before = rated(item_plan, {"sip_device": n}).total
    after = rated(item_plan, {"sip_device": n + 1}).total
    assert after >= before
