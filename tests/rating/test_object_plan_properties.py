"""Invariants of object plans (plans named by the account's documents), over generated plans."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from svc.jsonio import dumps, loads
from svc.rating import QuoteInvalid, parse_quote, quote_json, rate_quote
from svc.rating.objects import NamingDocument, view_order

money = st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False, allow_infinity=False)
counts = st.integers(min_value=0, max_value=50)
item_plans = st.fixed_dictionaries({"rate": money}, optional={
    "minimum": st.integers(0, 20), "maximum": st.integers(0, 50),
    "flat_rates": st.dictionaries(st.integers(1, 60).map(str), money, max_size=3),
    "discounts": st.fixed_dictionaries({"single": st.fixed_dictionaries({"rate": money})}),
})
plans = st.fixed_dictionaries({
    "merge": st.fixed_dictionaries({"strategy": st.sampled_from(
        ["simple", "recursive", "cumulative"])}, optional={"priority": st.integers(0, 5)}),
    "plan": st.fixed_dictionaries({"devices": st.dictionaries(
        st.sampled_from(["sip_device", "softphone"]), item_plans, min_size=1)}),
})
device_counts = st.fixed_dictionaries({"devices": st.fixed_dictionaries(
    {"sip_device": counts, "softphone": counts})})
documents = st.lists(st.tuples(st.sampled_from(["user", "device"]),
                               st.text("abcdef0123456789", min_size=1, max_size=4)),
                     unique=True, max_size=5)


def rate(document: dict) -> list[dict]:
    return loads(dumps(quote_json(rate_quote(parse_quote(loads(dumps(document)))))))["invoices"]


def naming(docs: list[tuple[str, str]], refs: dict) -> list[dict]:
    return [{"id": doc_id, "type": doc_type, "plans": refs} for doc_type, doc_id in docs]


@given(plans, device_counts, documents, st.sampled_from(["missing", "other_vendor"]))
def test_a_reference_to_no_known_plan_changes_nothing(plan, quantities, docs, which):
    base = {"plans": [{"id": "gold", "vendor_id": "reseller", "doc": plan}],
            "quantities": {"account": quantities}}
    ref = ({"missing": {}} if which == "missing"
           else {"gold": {"vendor_id": "another_reseller"}})
    assert rate({**base, "object_plans": naming(docs, ref)}) == rate(base)


@given(st.sampled_from(["simple", "recursive"]).flatmap(
    lambda strategy: plans.map(lambda p: {**p, "merge": {**p["merge"], "strategy": strategy}})),
    device_counts, documents)
def test_naming_an_assigned_simple_or_recursive_plan_again_changes_nothing(plan, quantities,
                                                                           docs):
    base = {"plans": [{"id": "gold", "vendor_id": "reseller", "doc": plan}],
            "quantities": {"account": quantities}}
    # the same invoices; the items' order may follow the merge of the plan with its copy
    assert in_any_order(rate({**base, "object_plans": naming(docs, {"gold": {}})})) == \
        in_any_order(rate(base))


def in_any_order(invoices: list[dict]) -> list[dict]:
    return [{**invoice, "items": sorted(invoice["items"], key=lambda i: (i["category"],
                                                                         i["item"]))}
            for invoice in invoices]


@settings(max_examples=50)
@given(st.integers(0, 20), st.integers(1, 5), counts, money)
def test_each_reference_to_a_cumulative_plan_adds_its_minimum_again(minimum, copies, quantity,
                                                                    price):
    plan = {"merge": {"strategy": "cumulative"},
            "plan": {"devices": {"sip_device": {"rate": price, "minimum": minimum}}}}
    invoices = rate({
        "extra_plans": [{"id": "licence", "vendor_id": "reseller", "doc": plan}],
        "object_plans": [{"id": f"user{i}", "type": "user", "plans": {"licence": {}}}
                         for i in range(copies)],
        "quantities": {"account": {"devices": {"sip_device": quantity}}}})
    [item] = invoices[0]["items"]
    assert item["billable"] == max(quantity, minimum * copies)


@given(plans, device_counts, documents,
       st.fixed_dictionaries({"plan": st.fixed_dictionaries({"devices": st.fixed_dictionaries(
           {"sip_device": st.one_of(st.none(), item_plans)})})}))
def test_global_overrides_never_touch_an_object_plan(plan, quantities, docs, overrides):
    base = {"extra_plans": [{"id": "licence", "vendor_id": "reseller", "doc": plan}],
            "object_plans": naming(docs, {"licence": {}}), "vendor_id": "reseller",
            "quantities": {"account": quantities}}
    assert rate({**base, "overrides": overrides}) == rate(base)


@given(documents)
def test_the_view_order_is_by_type_then_id_whatever_the_order_read(docs):
    named = [NamingDocument(doc_id, doc_type, {}) for doc_type, doc_id in docs]
    for permutation in itertools.islice(itertools.permutations(named), 24):
        assert [(d.type, d.id) for d in view_order(permutation)] == sorted(docs)


def test_a_reference_with_an_empty_vendor_names_the_account_vendor():
    plan = {"plan": {"devices": {"sip_device": {"rate": 3}}}}
    document = {"vendor_id": "reseller",
                "extra_plans": [{"id": "licence", "vendor_id": "reseller", "doc": plan}],
                "object_plans": [{"id": "u1", "type": "user",
                                  "plans": {"licence": {"vendor_id": ""}}}],
                "quantities": {"account": {"devices": {"sip_device": 2}}}}
    [invoice] = rate(document)
    assert invoice["summary"]["recurring"] == 6
    assert invoice["bookkeeper"]["vendor_id"] == "reseller"


def test_a_copy_from_another_vendor_is_billed_by_the_account_vendor():
    """kz_services_plans:prepare_plan gives every copy the account's default bookkeeper."""
    assigned = {"plan": {"users": {"user": {"rate": 1}}}}
    licence = {"plan": {"devices": {"sip_device": {"rate": 3}}}}
    [invoice] = rate({
        "plans": [{"id": "base", "vendor_id": "reseller", "doc": assigned}],
        "extra_plans": [{"id": "licence", "vendor_id": "master", "doc": licence}],
        "object_plans": [{"id": "u1", "type": "user",
                          "plans": {"licence": {"vendor_id": "master"}}}],
        "quantities": {"account": {"devices": {"sip_device": 2}, "users": {"user": 1}}}})
    assert invoice["bookkeeper"]["vendor_id"] == "reseller"
    assert invoice["summary"]["recurring"] == 7


def test_a_null_in_a_reference_override_deletes_from_that_copy_only():
    plan = {"merge": {"strategy": "cumulative"},
            "plan": {"devices": {"sip_device": {"rate": 2, "minimum": 5}}}}
    [invoice] = rate({
        "extra_plans": [{"id": "licence", "vendor_id": "reseller", "doc": plan}],
        "object_plans": [
            {"id": "u1", "type": "user", "plans": {"licence": {}}},
            {"id": "u2", "type": "user", "plans": {"licence": {"overrides": {
                "plan": {"devices": {"sip_device": {"minimum": None}}}}}}}],
        "quantities": {"account": {}}})
    [item] = invoice["items"]
    assert item["billable"] == 5  # one copy's minimum, not two


def test_unreadable_references_are_refused_with_their_paths():
    document = {"object_plans": [{"id": "u1", "type": "user", "plans": {
        "a": "gold", "b": {"vendor_id": 7}, "c": {"overrides": {"plan": {"devices": {
            "sip_device": {"rate": -1}}}}}}}]}
    with pytest.raises(QuoteInvalid) as refused:
        parse_quote(document)
    assert [v.path for v in refused.value.violations] == [
        "$.object_plans[0].plans.a", "$.object_plans[0].plans.b.vendor_id",
        "$.object_plans[0].plans.c.overrides.plan.devices.sip_device.rate"]


def test_the_example_bills_two_licences_beside_the_assigned_plan():
    example = Path(__file__).resolve().parents[2] / "examples" / "quote-object-plans.json"
    [invoice] = rate(loads(example.read_bytes()))
    totals = {(i["category"], i["item"]): i["total"] for i in invoice["items"]}
    assert totals == {("devices", "sip_device"): 15, ("users", "user"): 24}
