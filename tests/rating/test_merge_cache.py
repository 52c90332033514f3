"""The merged-plan cache key: plans read from the store are keyed by
(ids, versions, overrides hash), which the store guarantees; a plan given inline (a quote
document, ``Quote-Request``) by its content hash, whatever ``version`` it claims."""

from __future__ import annotations

from svc.rating import AssignedPlan, MergeCache, load_plan, parse_quote, quote_json, rate_quote


def inline_quote(rate: str, version: int = 3) -> dict:
    return {"plans": [{"id": "gold", "vendor_id": "reseller", "version": version,
                       "doc": {"plan": {"devices": {"sip_device": {"rate": rate}}}}}],
            "quantities": {"account": {"devices": {"sip_device": 2}}}}


def recurring(document: dict, cache: MergeCache | None = None) -> object:
    request = parse_quote(document)
    invoices = rate_quote(request) if cache is None else rate_quote(request, cache)
    return quote_json(invoices)["invoices"][0]["summary"]["recurring"]


def test_two_inline_quotes_with_the_same_id_and_version_but_other_rates_differ():
    # through the process-wide cache every caller (CLI, quote RPC) shares
    assert recurring(inline_quote("1.5")) == 3
    assert recurring(inline_quote("4")) == 8
    cache = MergeCache()
    assert recurring(inline_quote("2"), cache) == 4
    assert recurring(inline_quote("7"), cache) == 14


def test_an_inline_plan_is_keyed_by_content_whatever_version_it_claims():
    doc = load_plan({"plan": {"x": {"y": {"rate": 1}}}})
    other = load_plan({"plan": {"x": {"y": {"rate": 2}}}})
    assert (AssignedPlan("p", "r", doc, version=1).cache_key
            == AssignedPlan("p", "r", doc, version=9).cache_key
            == AssignedPlan("p", "r", doc).cache_key)
    assert (AssignedPlan("p", "r", doc, version=1).cache_key
            != AssignedPlan("p", "r", other, version=1).cache_key)


def test_a_stored_plan_is_keyed_by_its_store_version_and_overrides():
    doc = load_plan({"plan": {"x": {"y": {"rate": 1}}}})
    stored = AssignedPlan("p", "r", doc, version=4, source="store-a")
    # the store guarantees one content per version: the doc is not hashed again
    assert stored.cache_key == AssignedPlan("p", "r", {}, version=4, source="store-a").cache_key
    assert stored.cache_key != AssignedPlan("p", "r", doc, version=5, source="store-a").cache_key
    assert stored.cache_key != AssignedPlan("p", "r", doc, version=4, source="store-b").cache_key
    overridden = AssignedPlan("p", "r", doc, {"plan": {"x": {"y": {"rate": 3}}}}, 4, "store-a")
    assert stored.cache_key != overridden.cache_key
