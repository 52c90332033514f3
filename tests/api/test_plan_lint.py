"""Plans that lie, at the doors that store them, against a running service: a stored plan's
lint warnings are logged and returned by ``plan_put``; an overrides body keyed by plan id
(a common slip) is refused with its path, and nothing changes."""

from __future__ import annotations

import logging

from http_api import PLAN

LYING = {"name": "Lying", "plan": {"devices": {"sip_device": {
    "rate": 1, "minimun": 2, "discounts": {"single": {"rate": 5}}}}}}


async def test_a_plan_is_stored_with_its_warnings_returned_and_logged(client, accounts, caplog):
    with caplog.at_level(logging.WARNING, logger="svc.store"):
        put = await client.call("plan_put", {"Account-ID": accounts.reseller_a,
                                             "Plan": {"id": "lying", "doc": LYING}})
    assert put["Status"] == "success", put
    assert put["Plan"]["version"] == 1
    assert [w["path"] for w in put["Warnings"]] == [
        "$.Plan.doc.plan.devices.sip_device.minimun",
        "$.Plan.doc.plan.devices.sip_device.discounts"]
    logged = [r.getMessage() for r in caplog.records if r.name == "svc.store"]
    assert logged == [
        "plan lying stored with a warning: $.plan.devices.sip_device.minimun: unknown item "
        "key (did you mean minimum?): KAZOO and svc ignore it",
        "plan lying stored with a warning: $.plan.devices.sip_device.discounts: the discounts "
        "exceed the charge: the total is -4 at 1 units (discounts 5, charge 1)"]
    clean = await client.call("plan_put", {"Account-ID": accounts.reseller_a,
                                           "Plan": {"id": "clean", "doc": PLAN}})
    assert "Warnings" not in clean


async def test_overrides_keyed_by_plan_id_are_refused_naming_the_path(api, client, accounts):
    account = accounts.client_a
    assert (await api.account("POST", account, "/services/gold")).status == 200
    before = (await api.account("GET", account, "/services")).body["data"]
    slip = {"overrides": {"gold": {"devices": {"_all": {"rate": 1}}}}}

    refused = await api.account("POST", account, "/services/overrides", body=slip)
    assert refused.status == 400, refused.body
    [(field, rules)] = refused.body["data"].items()
    assert field == "overrides.gold"
    assert next(iter(rules.values()))["message"].startswith("a plan id, not a category")

    assign = await api.account("POST", account, "/services/gold", body=slip)
    assert assign.status == 400
    assert "overrides.gold" in assign.body["data"]
    rpc = await client.call("overrides_set", {"Account-ID": account, **{
        "Overrides": slip["overrides"]}})
    assert rpc["Status"] == "error" and rpc["Details"][0]["path"] == "$.Overrides.gold"

    assert (await api.account("GET", account, "/services")).body["data"] == before
    trail = (await api.account("GET", account, "/services/audit")).body["data"]
    assert [entry["action"] for entry in trail] == ["plan_assigned"]
