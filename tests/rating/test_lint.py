"""``lint_plan``: what a plan says that svc and KAZOO will not do as its author meant."""

from __future__ import annotations

import json
from pathlib import Path

from svc.quantities import account_quantities
from svc.rating import lint_plan
from svc.rating.lint import COUNTED_CATEGORIES

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def rules(plan: dict) -> dict[str, str]:
    return {w.path: w.rule for w in lint_plan({"plan": plan})}


def test_unknown_keys_inside_an_item_are_named_with_the_key_meant():
    found = rules({"devices": {"sip_device": {
        "rate": 1, "minimun": 2, "activation_charges": 3,
        "discounts": {"single": {"rate": 0.5, "minimun": 1}, "bulk": {"rate": 1}},
        "prorate": {"addition": False}}}})
    item = "$.plan.devices.sip_device"
    assert found == {
        f"{item}.minimun": "unknown item key (did you mean minimum?): KAZOO and svc ignore it",
        f"{item}.activation_charges": "unknown item key (did you mean activation_charge?): "
                                      "KAZOO and svc ignore it",
        f"{item}.discounts.single.minimun": "unknown discount key (did you mean minimum?): "
                                            "KAZOO and svc ignore it",
        f"{item}.discounts.bulk": "unknown discount: only single and cumulative are applied",
        f"{item}.prorate.addition": "unknown prorate key (did you mean additions?): KAZOO "
                                    "and svc ignore it"}


def test_a_category_nothing_counts_is_named():
    found = rules({"device": {"sip_device": {"rate": 1}}, "devices": {"x": {"rate": 1}}})
    assert found == {"$.plan.device": "did you mean devices? no document counts toward this "
                                      "category: it bills manual quantities only"}


def test_every_category_the_quantity_rules_count_is_known():
    docs = json.loads((EXAMPLES / "account-docs.json").read_text())
    counts, _ = account_quantities(docs)
    assert set(counts) <= COUNTED_CATEGORIES


def test_discounts_that_drive_a_total_below_zero_are_named():
    found = discounts({"devices": {"sip_device": {"rate": 1, "discounts": {"single": {"rate": 5}}}},
                   "users": {"user": {"rate": 2, "discounts": {"cumulative": {
                       "rate": 3, "maximum": 10}}}},
                   "phone_numbers": {"did_us": {"rates": {"10": 2, "100": 1}, "rate": 1,
                                                "discounts": {"cumulative": {
                                                    "rate": 1.5, "maximum": 1000}}}}})
    assert found == {
        "$.plan.devices.sip_device.discounts": "the discounts exceed the charge: the total "
                                               "is -4 at 1 units (discounts 5, charge 1)",
        "$.plan.users.user.discounts": "the discounts exceed the charge: the total is -1 at 1 "
                                       "units (discounts 3, charge 2)",
        # 2 a unit up to 10 units, 1 a unit from 11: the discount of 1.5 a unit wins there
        "$.plan.phone_numbers.did_us.discounts": "the discounts exceed the charge: the total "
                                                 "is -5.5 at 11 units (discounts 16.5, "
                                                 "charge 11)"}


def discounts(plan: dict) -> dict[str, str]:
    return {path: rule for path, rule in rules(plan).items() if path.endswith(".discounts")}


def test_discounts_within_the_charge_are_not_named():
    assert rules({"devices": {"sip_device": {"rate": 5, "discounts": {
        "single": {"rate": 5}, "cumulative": {"rate": 0, "maximum": 3}}}},
        "users": {"_all": {"rate": 2, "minimum": 1, "discounts": {
            "cumulative": {"rate": 2, "maximum": 100}}}}}) == {}
