"""Rule-by-rule tests of KAZOO 4.3's rating and merging rules (docs/rating.md)."""

from __future__ import annotations

import pytest
from rating_helpers import D, items, quote, recurring, total

from svc.rating import PlanInvalid, QuoteInvalid, load_plan, parse_quote


def one(category, item, item_plan, **quantities):
    return quote({"plan": {category: {item: item_plan}}}, **quantities)


# --- quantity and billable -------------------------------------------------------

def test_manual_quantity_replaces_account_value_for_an_item():
    reply = one("devices", "sip_device", {"rate": 1},
                A={"devices": {"sip_device": 5}}, M={"devices": {"sip_device": 2}})
    assert total(reply, "devices", "sip_device") == 2


def test_all_merges_manual_over_account_per_item_then_sums():
    reply = one("devices", "_all", {"rate": 1},
                A={"devices": {"sip_device": 5, "fax": 1}}, M={"devices": {"sip_device": 2}})
    assert items(reply)[("devices", "_all")]["quantity"] == 3


def test_all_with_every_item_excepted_bills_nothing():
    reply = one("devices", "_all", {"rate": 3, "exceptions": ["a", "b"]},
                A={"devices": {"a": 4, "b": 1}})
    assert total(reply, "devices", "_all") == 0


def test_step_rounds_quantity_minimum_and_maximum_up():
    reply = one("users", "user", {"rate": 1, "step": 5}, A={"users": {"user": 6}})
    assert items(reply)[("users", "user")]["billable"] == 10
    reply = one("users", "user", {"rate": 1, "step": 5, "maximum": 6}, A={"users": {"user": 13}})
    assert items(reply)[("users", "user")]["billable"] == 10


def test_minimum_beats_maximum():
    reply = one("users", "user", {"rate": 1, "minimum": 5, "maximum": 2}, A={"users": {"user": 1}})
    assert items(reply)[("users", "user")]["billable"] == 5


def test_explicit_maximum_zero_caps_billable_at_zero_but_flat_rates_still_charge():
    reply = one("users", "user", {"rate": 4, "maximum": 0}, A={"users": {"user": 3}})
    assert total(reply, "users", "user") == 0
    reply = one("users", "user", {"flat_rates": {"10": 50}, "maximum": 0}, A={"users": {"user": 3}})
    assert total(reply, "users", "user") == 50


# --- rates ------------------------------------------------------------------

def test_flat_rates_bill_one_unit_even_at_quantity_zero():
    reply = one("ips", "dedicated", {"flat_rates": {"5": 30, "10": 50}})
    item = items(reply)[("ips", "dedicated")]
    assert (item["billable"], item["rate"], item["total"]) == (1, 30, 30)


def test_above_top_flat_tier_falls_through_to_flat_rate_then_rates_then_rate():
    plan = {"flat_rates": {"2": 10}, "flat_rate": 25, "rates": {"100": 3}, "rate": 9}
    assert total(one("x", "y", plan, A={"x": {"y": 5}}), "x", "y") == 25
    plan.pop("flat_rate")
    assert total(one("x", "y", plan, A={"x": {"y": 5}}), "x", "y") == 15
    plan.pop("rates")
    assert total(one("x", "y", plan, A={"x": {"y": 5}}), "x", "y") == 45


def test_above_top_tier_without_rate_bills_zero():
    assert total(one("x", "y", {"rates": {"5": 2}}, A={"x": {"y": 6}}), "x", "y") == 0


def test_non_canonical_tier_key_falls_through_instead_of_next_tier():
    reply = one("x", "y", {"rates": {"05": 2, "10": 7}, "rate": 9}, A={"x": {"y": 3}})
    assert total(reply, "x", "y") == 27  # "05" selected, not found, so `rate`, not tier 10


def test_tiered_price_applies_to_all_units_not_graduated():
    reply = one("x", "y", {"rates": {"5": 10, "10": 8}}, A={"x": {"y": 7}})
    assert total(reply, "x", "y") == 56


# --- discounts ----------------------------------------------------------------------

def test_cumulative_discount_without_maximum_discounts_nothing_but_shows_its_rate():
    reply = one("x", "y", {"rate": 1, "discounts": {"cumulative": {"rate": 0.5}}},
                A={"x": {"y": 4}})
    item = items(reply)[("x", "y")]
    assert item["total"] == 4 and item["discounts"] == {"cumulative": {"rate": D("0.5")}}


def test_cumulative_tier_is_looked_up_with_the_capped_quantity():
    plan = {"rate": 10, "discounts": {"cumulative": {"maximum": 3, "rates": {"3": 2, "10": 1}}}}
    assert total(one("x", "y", plan, A={"x": {"y": 8}}), "x", "y") == 80 - 3 * 2


def test_single_discount_with_only_a_minimum_defaults_to_the_plan_rate():
    reply = one("x", "y", {"rate": 3, "discounts": {"single": {"minimum": 1}}}, A={"x": {"y": 2}})
    assert total(reply, "x", "y") == 3


def test_discount_minimum_zero_applies_at_quantity_zero():
    reply = one("x", "y", {"rate": 3, "discounts": {"single": {"minimum": 0}}})
    assert total(reply, "x", "y") == -3


def test_discounts_apply_after_the_flat_rate_reset():
    plan = {"rate": 2, "flat_rate": 10, "discounts": {"cumulative": {"maximum": 5, "rate": 1}}}
    assert total(one("x", "y", plan, A={"x": {"y": 4}}), "x", "y") == 10 - 1


def test_exact_decimals_no_float_artefacts():
    reply = one("x", "y", {"rate": 0.4}, A={"x": {"y": 3}})
    assert total(reply, "x", "y") == D("1.2")


# --- coercions ----------------------------------------------------------------------

def test_numeric_strings_and_string_booleans_are_coerced():
    reply = quote({"plan": {"x": {"y": {"rate": "2.5", "minimum": "2.5", "cascade": "true"}}}},
                  A={"x": {"y": 1}}, C={"x": {"y": 1}})
    item = items(reply)[("x", "y")]
    assert (item["quantity"], item["billable"], item["total"]) == (2, 3, D("7.5"))


@pytest.mark.parametrize(("raw", "rounded"), [(2.5, 3), (3.5, 4), (2.4, 2), ("0.5", 1)])
def test_integer_fields_round_half_away_from_zero(raw, rounded):
    loaded = load_plan({"plan": {"x": {"y": {"minimum": raw}}}})
    assert loaded["plan"]["x"]["y"]["minimum"] == rounded


# --- merging and overrides ---------------------------------------------------------

def test_absent_priority_beats_every_numbered_priority():
    numbered = {"merge": {"priority": 99}, "plan": {"x": {"y": {"rate": 1}}}}
    unnumbered = {"plan": {"x": {"y": {"rate": 7}}}}
    assert total(quote(unnumbered, numbered, A={"x": {"y": 1}}), "x", "y") == 7
    assert total(quote(numbered, unnumbered, A={"x": {"y": 1}}), "x", "y") == 7


def test_equal_priorities_first_listed_wins():
    first = {"merge": {"priority": 5}, "plan": {"x": {"y": {"rate": 1}}}}
    second = {"merge": {"priority": 5}, "plan": {"x": {"y": {"rate": 2}}}}
    assert total(quote(first, second, A={"x": {"y": 1}}), "x", "y") == 1
    assert total(quote(second, first, A={"x": {"y": 1}}), "x", "y") == 2


def test_cumulative_merge_sums_minimums_unions_tiers_and_drops_maximum():
    high = {"merge": {"strategy": "cumulative", "priority": 20},
            "plan": {"x": {"y": {"rate": 5, "minimum": 2, "maximum": 1, "rates": {"10": 4}}}}}
    low = {"merge": {"strategy": "cumulative", "priority": 10},
           "plan": {"x": {"y": {"rate": 9, "minimum": 3, "rates": {"10": 1, "20": 2}}}}}
    item = items(quote(high, low, A={"x": {"y": 15}}))[("x", "y")]
    assert item["billable"] == 15  # maximum dropped by the cumulative merge
    assert item["rate"] == 2  # tier 20 comes from the low plan
    assert items(quote(high, low))[("x", "y")]["billable"] == 5  # minimum 2 + 3


def test_global_override_is_applied_per_plan_before_a_cumulative_merge():
    plan = {"merge": {"strategy": "cumulative"}, "plan": {"x": {"y": {"rate": 1}}}}
    reply = quote(plan, plan, overrides={"plan": {"x": {"y": {"minimum": 4}}}})
    assert items(reply)[("x", "y")]["billable"] == 8


def test_strategy_priority_cumulative_beats_recursive_beats_simple():
    simple = {"plan": {"x": {"y": {"rate": 1}}}}
    recursive = {"merge": {"strategy": "recursive"}, "plan": {"x": {"y": {"rate": 2}}}}
    cumulative = {"merge": {"strategy": "cumulative"}, "plan": {"x": {"y": {"rate": 3}}}}
    assert total(quote(cumulative, simple, recursive, A={"x": {"y": 1}}), "x", "y") == 3
    assert total(quote(simple, recursive, A={"x": {"y": 1}}), "x", "y") == 2


def test_global_null_deletes_but_per_plan_null_only_cancels_the_global_value():
    plan = {"plan": {"x": {"y": {"rate": 1, "minimum": 3}}}}
    deleted = quote(plan, overrides={"plan": {"x": {"y": {"minimum": None}}}})
    assert items(deleted)[("x", "y")]["billable"] == 0
    kept = quote((plan, {"plan": {"x": {"y": {"minimum": None}}}}))
    assert items(kept)[("x", "y")]["billable"] == 3
    restored = quote((plan, {"plan": {"x": {"y": {"minimum": None}}}}),
                     overrides={"plan": {"x": {"y": {"minimum": None}}}})
    assert items(restored)[("x", "y")]["billable"] == 3


def test_per_plan_override_wins_over_global():
    plan = {"plan": {"x": {"y": {"rate": 1}}}}
    reply = quote((plan, {"plan": {"x": {"y": {"rate": 5}}}}),
                  overrides={"plan": {"x": {"y": {"rate": 3}}}}, A={"x": {"y": 1}})
    assert total(reply, "x", "y") == 5


def test_setting_beneath_a_globally_deleted_key_is_refused_not_crashed():
    plan = {"plan": {"x": {"y": {"rate": 1}}}}
    with pytest.raises(QuoteInvalid) as error:
        quote((plan, {"plan": {"x": {"y": {"rate": 2}}}}), overrides={"plan": {"x": None}})
    assert error.value.violations[0].path == "$.plans[0].overrides.plan.x"


def test_plans_with_different_bookkeepers_make_separate_invoices():
    a = {"plan": {"x": {"y": {"rate": 1}}}}
    b = {"bookkeeper": {"id": "bt", "type": "braintree"}, "plan": {"x": {"z": {"rate": 2}}}}
    reply = quote(a, b, A={"x": {"y": 1, "z": 1}})
    assert [i["bookkeeper"] for i in reply["invoices"]] == [
        {"id": "default_bookkeeper", "type": "local", "vendor_id": "reseller"},
        {"id": "bt", "type": "braintree", "vendor_id": "reseller"},
    ]
    assert [recurring(reply, n) for n in (0, 1)] == [1, 2]


# --- comparison -----------------------------------------------------------------------

def test_assigning_a_plan_charges_activation_on_every_existing_unit():
    plan = {"plan": {"x": {"y": {"rate": 1, "activation_charge": 2}}}}
    reply = quote(plan, A={"x": {"y": 3}}, current={"plans": [], "quantities": {
        "account": {"x": {"y": 3}}}})
    assert reply["invoices"][0]["summary"]["today"] == 6
    assert items(reply)[("x", "y")]["changes"]["type"] == "modified"


def test_removed_plan_items_are_reported_removed_with_zero_total():
    plan = {"plan": {"x": {"y": {"rate": 1, "discounts": {"single": {"rate": 1}}}}}}
    document = {"plans": [], "quantities": {"account": {"x": {"y": 3}}},
                "current": {"plans": [{"id": "p", "vendor_id": "r", "doc": plan}]}}
    from svc.rating import quote_json, rate_quote
    [invoice] = quote_json(rate_quote(parse_quote(document)))["invoices"]
    [item] = invoice["items"]
    assert item["total"] == 0 and item["changes"]["type"] == "removed"
    assert invoice["summary"]["recurring"] == 0


def test_overrides_alone_are_no_change_between_states():
    plan = {"plan": {"x": {"y": {"rate": 1, "activation_charge": 5}}}}
    reply = quote(plan, A={"x": {"y": 2}}, overrides={"plan": {"x": {"y": {"rate": 4}}}},
                  current={})
    assert "changes" not in items(reply)[("x", "y")]
    assert reply["invoices"][0]["activation_charges"] == []


# --- the seed's ui_apps -----------------------------------------------------------------------

def test_ui_apps_match_by_app_id_and_disabled_apps_are_not_billed():
    plan = {"ui_apps": {
        "numbers": {"enabled": True, "app_id": "a1", "rate": 2},
        "branding": {"enabled": False, "app_id": "a2", "rate": 5}}}
    reply = quote(plan, A={"ui_apps": {"a1": 1, "branding": 1}})
    assert total(reply, "ui_apps", "numbers") == 2
    assert ("ui_apps", "branding") not in items(reply)


def test_seed_bare_category_map_is_a_plan():
    reply = quote({"devices": {"_all": {"as": "sip_devices", "rates": {"5": 0, "20": 24.95}}}},
                  A={"devices": {"sip_device": 7}})
    assert total(reply, "devices", "sip_devices") == D("174.65")


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("document", "path"), [
    ({"plans": [{"id": "p", "doc": {"plan": {"x": {"y": {"rates": {"abc": 1}}}}}}]},
     "$.plans[0].doc.plan.x.y.rates['abc']"),
    ({"plans": [{"id": "p", "doc": {"plan": {"x": {"y": {"step": 0}}}}}]},
     "$.plans[0].doc.plan.x.y.step"),
    ({"plans": [{"id": "p", "doc": {"plan": {"x": {"y": {"rate": -1}}}}}]},
     "$.plans[0].doc.plan.x.y.rate"),
    ({"plans": [{"id": "p", "doc": {"plan": {"x": {"y": {"cascade": "yes"}}}}}]},
     "$.plans[0].doc.plan.x.y.cascade"),
    ({"plans": [{"id": "p", "doc": {"plan": {"x": 5}}}]}, "$.plans[0].doc.plan.x"),
    ({"plans": [{"id": "p", "doc": {"merge": {"strategy": "max"}}}]},
     "$.plans[0].doc.merge.strategy"),
    ({"quantities": {"account": {"x": {"y": 2.5}}}}, "$.quantities.account.x.y"),
    ({"quantities": {"account": {"x": {"y": -1}}}}, "$.quantities.account.x.y"),
    ({"quantities": {"account": {"x": {"y": True}}}}, "$.quantities.account.x.y"),
    ({"plans": [{"doc": {}}]}, "$.plans[0].id"),
    ({"plans": "nope"}, "$.plans"),
])
def test_bad_quote_documents_name_the_path(document, path):
    with pytest.raises(QuoteInvalid) as error:
        parse_quote(document)
    assert path in [v.path for v in error.value.violations]


def test_quantities_accept_integer_spellings():
    request = parse_quote({"quantities": {"account": {"x": {"a": 2, "b": 2.0, "c": "2"}}}})
    assert request.proposed.quantities.account == {"x": {"a": 2, "b": 2, "c": 2}}


def test_every_violation_is_reported_at_once():
    with pytest.raises(PlanInvalid) as error:
        load_plan({"plan": {"x": {"y": {"rate": "a", "step": 0}, "z": {"minimum": -2}}}})
    assert len(error.value.violations) == 3


def test_a_crashing_override_on_a_current_only_plan_is_refused_at_parse_time():
    plan = {"plan": {"x": {"y": {"rate": 1}}}}
    document = {"overrides": {"plan": {"x": None}},
                "current": {"plans": [{"id": "old", "doc": plan,
                                       "overrides": {"plan": {"x": {"y": {"rate": 2}}}}}]}}
    with pytest.raises(QuoteInvalid) as error:
        parse_quote(document)
    assert error.value.violations[0].path == "$.current.plans[0].overrides.plan.x"
