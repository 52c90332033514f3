"""One test per KAZOO 4.3 rule that the differential cases showed svc getting wrong
(fixtures/kazoo_oracle), each on the smallest plan that shows it. Rules are KAZOO's merging rules
(docs/rating.md), checked against kz_services_plans.erl (``prepare_plan``:
overrides first, then the default bookkeeper's merge drops empty objects) and
kzd_item_plan.erl (``cumulative_merge_or`` / ``cumulative_merge_list``)."""

from __future__ import annotations

from rating_helpers import items, quote, recurring, total

LOW = {"merge": {"strategy": "simple", "priority": 1}}
HIGH = {"merge": {"strategy": "simple", "priority": 2}}
CUMULATIVE = {"merge": {"strategy": "cumulative"}}


# --- a global null that empties a branch removes the branch ---------

def test_a_category_emptied_by_a_global_null_does_not_wipe_a_lower_plans_category():
    # K0360, K0721, K1387: the high plan's only devices item is deleted by the override; its
    # now empty "devices" vanishes as the plan is fetched, so the low plan's devices remain
    low = LOW | {"plan": {"devices": {"sip_device": {"rate": 2}}}}
    high = HIGH | {"plan": {"devices": {"fax": {"rate": 9}}, "users": {"user": {"rate": 1}}}}
    reply = quote(low, high, A={"devices": {"sip_device": 3, "fax": 1}},
                  overrides={"plan": {"devices": {"fax": None}}})
    assert set(items(reply)) == {("devices", "sip_device"), ("users", "user")}
    assert total(reply, "devices", "sip_device") == 6


def test_an_item_emptied_by_a_global_null_leaves_the_lower_plans_item_whole():
    # K0634: the high plan's item loses its only field; the low plan's item is billed as it is
    low = LOW | {"plan": {"devices": {"sip_device": {"rate": 2, "minimum": 5}}}}
    high = HIGH | {"plan": {"devices": {"sip_device": {"activation_charge": 9}}}}
    reply = quote(low, high, A={"devices": {"sip_device": 1}},
                  overrides={"plan": {"devices": {"sip_device": {"activation_charge": None}}}})
    assert total(reply, "devices", "sip_device") == 10


def test_a_global_null_on_a_path_a_plan_lacks_adds_nothing_to_that_plan():
    # K1034: the null names a discount field only the low plan has; the high plan must not
    # gain an empty "cumulative" object that would wipe the low plan's discount
    discount = {"cumulative": {"rate": 1, "maximum": 2, "rates": {"10": 3}}}
    low = LOW | {"plan": {"devices": {"ata": {"rate": 5, "discounts": discount}}}}
    high = HIGH | {"plan": {"devices": {"fax": {"rate": 1}}}}
    nulled = {"plan": {"devices": {"ata": {"discounts": {"cumulative": {"rates": None}}}}}}
    reply = quote(low, high, A={"devices": {"ata": 4}}, overrides=nulled)
    assert total(reply, "devices", "ata") == 4 * 5 - 2 * 1
    assert recurring(reply) == 18


# --- cumulative table and step 4: booleans a cumulative merge defines are explicit ---------

def test_an_explicit_cascade_false_from_a_higher_strategy_group_beats_a_lower_true():
    # K0882, K1144, K1596: cumulative (strategy priority 50) says false, simple (10) says true
    simple = {"plan": {"devices": {"_all": {"rate": 1, "cascade": True}}}}
    cumulative = CUMULATIVE | {"plan": {"devices": {"_all": {"cascade": False}}}}
    reply = quote(simple, cumulative, A={"devices": {"sip_device": 2}},
                  C={"devices": {"sip_device": 10}})
    assert items(reply)[("devices", "_all")]["quantity"] == 2
    assert total(reply, "devices", "_all") == 2


def test_within_a_cumulative_group_any_true_wins():
    first = CUMULATIVE | {"plan": {"devices": {"_all": {"rate": 1, "cascade": False}}}}
    second = CUMULATIVE | {"plan": {"devices": {"_all": {"cascade": True}}}}
    reply = quote(first, second, A={"devices": {"fax": 1}}, C={"devices": {"fax": 4}})
    assert total(reply, "devices", "_all") == 5


def test_a_cumulative_item_with_no_numeric_field_is_listed_with_a_total_of_zero():
    # an item plan of only prorate, only cascade or only exceptions survives the cumulative
    # merge (the key is set, to false or []), so KAZOO lists it
    plan = CUMULATIVE | {"plan": {"devices": {
        "fax": {"prorate": {"additions": False}},
        "ata": {"cascade": False},
        "_all": {"exceptions": []},
    }}}
    reply = quote(plan, A={"devices": {"fax": 3, "ata": 2}})
    got = items(reply)
    assert set(got) == {("devices", "fax"), ("devices", "ata"), ("devices", "_all")}
    assert all(item["total"] == 0 for item in got.values())
    assert got[("devices", "fax")]["prorate"]["additions"] is False


def test_a_cumulative_prorate_false_is_reported_false():
    plan = CUMULATIVE | {"plan": {"x": {"y": {"rate": 1, "prorate": {"removals": "false"}}}}}
    assert items(quote(plan))[("x", "y")]["prorate"] == {"additions": True, "removals": False}
