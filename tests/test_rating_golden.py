"""KAZOO 4.3's public golden vectors, each as a test (values KAZOO 4.3 printed)."""

from __future__ import annotations

from rating_helpers import D, items, quote, recurring, total


def test_gv01_flat_per_unit_rate():
    reply = quote({"plan": {"devices": {"sip_device": {"rate": 1.5}}}},
                  A={"devices": {"sip_device": 4}})
    item = items(reply)[("devices", "sip_device")]
    assert item["total"] == D("6.0") and item["maximum"] == 4
    assert item["name"] == "devices/sip_device"
    assert recurring(reply) == D("6.0")


def test_gv02_tier_table_inclusive_upper_bounds_with_fallback():
    tier = {"rates": {"5": 10, "10": 8, "20": 6}, "rate": 12}
    names = ["ata", "cellphone", "fax", "landline", "mobile", "softphone"]
    reply = quote({"plan": {"devices": {n: tier for n in names}}},
                  A={"devices": {"ata": 5, "cellphone": 6, "fax": 10, "landline": 20,
                                 "mobile": 21}})
    got = {n: total(reply, "devices", n) for n in names}
    assert got == {"ata": 50, "cellphone": 48, "fax": 80, "landline": 120, "mobile": 252,
                   "softphone": 0}
    assert items(reply)[("devices", "softphone")]["rate"] == 10
    assert recurring(reply) == 550


def test_gv04_minimum_and_maximum():
    plan = {"plan": {
        "limits": {"twoway_trunks": {"rate": 20, "minimum": 2},
                   "inbound_trunks": {"rate": 5, "minimum": 2},
                   "outbound_trunks": {"rate": 7, "maximum": 4}},
        "ips": {"dedicated": {"minimum": 3, "rates": {"2": 10, "5": 8}}}}}
    reply = quote(plan, A={"limits": {"twoway_trunks": 1, "inbound_trunks": 3,
                                      "outbound_trunks": 6}})
    got = items(reply)
    twoway = got[("limits", "twoway_trunks")]
    assert (twoway["billable"], twoway["total"]) == (2, 40)
    assert (twoway["minimum"], twoway["maximum"]) == (2, 1)
    assert got[("limits", "inbound_trunks")]["total"] == 15
    assert (got[("limits", "outbound_trunks")]["billable"],
            got[("limits", "outbound_trunks")]["total"]) == (4, 28)
    assert (got[("ips", "dedicated")]["billable"], got[("ips", "dedicated")]["total"]) == (3, 24)
    assert recurring(reply) == 107


def test_gv07_single_discounts_rate_gate_and_negative_totals():
    plan = {"plan": {"number_services": {
        "e911": {"rate": 2, "discounts": {"single": {"rate": 1.5}}},
        "cnam": {"rate": 2, "discounts": {"single": {}}},
        "port": {"rate": 2, "discounts": {"single": {"rate": 1.5}}},
        "inbound_cnam": {"rates": {"10": 3}, "discounts": {"single": {"rate": 1}}},
        "outbound_cnam": {"rate": 1, "discounts": {"single": {"rate": 5}}}}}}
    reply = quote(plan, A={"number_services": {"e911": 3, "cnam": 3, "inbound_cnam": 2,
                                               "outbound_cnam": 1}})
    got = {k[1]: v["total"] for k, v in items(reply).items()}
    assert got == {"e911": D("4.5"), "cnam": 6, "port": 0, "inbound_cnam": 6,
                   "outbound_cnam": -4}
    assert recurring(reply) == D("12.5")


def test_gv10_all_with_exceptions_and_as():
    plan = {"plan": {"devices": {"_all": {"as": "sip_device", "name": "SIP Device", "rate": 2,
                                          "exceptions": ["softphone"]}}}}
    reply = quote(plan, A={"devices": {"sip_device": 3, "softphone": 2, "cellphone": 1}})
    [item] = reply["invoices"][0]["items"]
    assert (item["category"], item["item"], item["name"]) == ("devices", "sip_device",
                                                              "SIP Device")
    assert (item["quantity"], item["total"]) == (4, 8)


def test_gv12_cascade():
    plan = {"plan": {
        "phone_numbers": {"did_us": {"rate": 1, "cascade": True}, "tollfree_us": {"rate": 1}},
        "devices": {"_all": {"rate": 1, "cascade": True, "exceptions": ["softphone"]}}}}
    reply = quote(plan,
                  A={"phone_numbers": {"did_us": 2, "tollfree_us": 1},
                     "devices": {"sip_device": 1, "softphone": 1}},
                  C={"phone_numbers": {"did_us": 5, "tollfree_us": 10},
                     "devices": {"sip_device": 2, "softphone": 3, "fax": 1}})
    assert total(reply, "phone_numbers", "did_us") == 7
    assert total(reply, "phone_numbers", "tollfree_us") == 1
    assert total(reply, "devices", "_all") == 4
    assert recurring(reply) == 12


def test_gv14_simple_strategy_highest_priority_wins_deeply():
    plan_a = {"merge": {"strategy": "simple", "priority": 10},
              "plan": {"devices": {"sip_device": {"rate": 5, "discounts": {"single": {"rate": 1}}}},
                       "users": {"user": {"rate": 4}}}}
    plan_b = {"merge": {"strategy": "simple", "priority": 20},
              "plan": {"devices": {"sip_device": {"rate": 3}}}}
    reply = quote(plan_a, plan_b, A={"devices": {"sip_device": 2}, "users": {"user": 1}})
    assert total(reply, "devices", "sip_device") == 5
    assert total(reply, "users", "user") == 4
    assert recurring(reply) == 9


def test_gv19_activation_charges_on_billable_increase_only():
    plan = {"plan": {
        "devices": {"sip_device": {"rate": 1, "activation_charge": 20, "minimum": 4}},
        "users": {"user": {"rate": 1, "activation_charge": 5}},
        "phone_numbers": {"did_us": {"rate": 1, "activation_charge": 3}}}}
    reply = quote(plan,
                  A={"devices": {"sip_device": 6}, "users": {"user": 4},
                     "phone_numbers": {"did_us": 2}},
                  current={"quantities": {"account": {
                      "devices": {"sip_device": 2}, "users": {"user": 1},
                      "phone_numbers": {"did_us": 5}}}})
    invoice = reply["invoices"][0]
    charges = {(c["category"], c["item"]): (c["billable"], c["rate"], c["total"])
               for c in invoice["activation_charges"]}
    assert charges == {("devices", "sip_device"): (2, 20, 40), ("users", "user"): (3, 5, 15)}
    assert invoice["summary"] == {"recurring": 12, "today": 55}
    assert items(reply)[("devices", "sip_device")]["changes"] == {
        "type": "modified", "difference": {"billable": 2, "quantity": 4, "total": 2}}
