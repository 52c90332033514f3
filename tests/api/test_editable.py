"""KAZOO's ``editable`` over real HTTP: what a plan may price, per category and item
(cb_services.erl list_editable/1: with an account, its reseller's fields; without one, at
``/v2/services/editable``, to anyone; kz_services_plans:editable_fields/1 gives each category
``_all`` and its items, an item without ``as``)."""

from __future__ import annotations


async def test_editable_lists_each_counted_item_with_what_a_plan_item_takes(api, accounts):
    answer = await api.account("GET", accounts.client_a, "/services/editable")
    assert answer.status == 200, answer.body
    fields = answer.body["data"]
    assert {"users", "devices", "limits", "phone_numbers"} <= fields.keys()
    assert set(fields["users"]) == {"_all", "user", "admin"}
    assert fields["devices"]["_all"]["as"] == {"type": "string"}
    assert "as" not in fields["devices"]["sip_device"]
    assert fields["devices"]["sip_device"]["activation_charge"]["type"] == "number"
    # the phone numbers are svc's classifiers (SVC_NUMBER_CLASSIFIERS)
    assert {"tollfree_us", "did_us", "unknown"} <= set(fields["phone_numbers"])

    anyone = await api.call("GET", "/v2/services/editable", token=None)
    assert anyone.status == 200 and anyone.body["data"] == fields, anyone.body
    assert anyone.body["status"] == "success"


async def test_editable_of_an_unknown_account_is_refused(api):
    answer = await api.account("GET", "0" * 32, "/services/editable", token="master")
    assert answer.status == 404, answer.body
