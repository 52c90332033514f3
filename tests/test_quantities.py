"""Quantity rules on KAZOO-shaped documents."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from svc.jsonio import loads
from svc.quantities import (
    DEFAULT_CLASSIFIERS,
    USER_APPS_ADMINS,
    USER_APPS_ALL,
    Counts,
    QuantityInputError,
    account_of,
    account_quantities,
    add_counts,
    classify_number,
    diff_counts,
    document_contributions,
    parse_classifiers,
    resolve_counts,
    subtract_counts,
)

ACCOUNT = "3a7f0c1e9b2d4f6a8c0e1f2a3b4c5d6e"
OTHER = "9d0e5b7c2a1f4e3d8b6c0a9f1e2d3c4b"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "account-docs.json"


def kazoo(pvt_type: str, _id: str = "5d4e6f708192a3b4c5d6e7f8091a2b3c", **fields: Any) -> dict:
    return {"_id": _id, "_rev": "1-5f8c0e1d", "pvt_type": pvt_type, "pvt_account_id": ACCOUNT,
            "pvt_created": 63869812345, **fields}


def counts(doc: dict) -> Counts:
    return document_contributions(doc).counts


def warnings(doc: dict) -> tuple[str, ...]:
    return document_contributions(doc).warnings


def number(e164: str, **fields: Any) -> dict:
    return kazoo("number", e164, **{"pvt_module_name": "knm_bandwidth2",
                                    "pvt_state": "in_service", **fields})


# --- number classifiers -------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    ("+14155550123", "did_us"),
    ("4155550123", "did_us"),                # bare 10-digit NANP gets +1
    ("14155550123", "did_us"),
    ("+18005550199", "tollfree_us"),
    ("8885550199", "tollfree_us"),           # tollfree needs +1: only matches after E.164
    ("18445550199", "tollfree_us"),
    ("+19005550123", "toll_us"),
    ("911", "emergency"),
    ("+18765550100", "caribbean"),           # Jamaica: before did_us, which also matches it
    ("8095550100", "caribbean"),
    ("+442071838750", "international"),
    ("011442071838750", "international"),    # 011 prefix becomes +
    ("00442071838750", "international"),     # 00 prefix becomes +
    ("+15551", "unknown"),
    ("sip:alice@example.com", "unknown"),
])
def test_classify_number_defaults(raw, expected):
    assert classify_number(raw, DEFAULT_CLASSIFIERS) == expected


def test_classifier_order_decides_caribbean_versus_did_us():
    did_first = sorted(DEFAULT_CLASSIFIERS, key=lambda c: c.name != "did_us")
    assert classify_number("+18765550100", did_first) == "did_us"
    assert classify_number("+18765550100", DEFAULT_CLASSIFIERS) == "caribbean"


def test_classify_number_without_a_match_is_unknown():
    assert classify_number("+14155550123", ()) == "unknown"
    only_uk = parse_classifiers([{"name": "uk", "regex": r"^\+44"}])
    assert classify_number("0044207", only_uk) == "uk"
    assert classify_number("+14155550123", only_uk) == "unknown"


def test_parse_classifiers_accepts_a_list_or_its_json_text():
    entries = [{"name": "tollfree_us", "regex": r"^\+1800\d{7}$"}, {"name": "rest", "regex": ".*"}]
    for value in (entries, json.dumps(entries)):
        parsed = parse_classifiers(value)
        assert [c.name for c in parsed] == ["tollfree_us", "rest"]
        assert classify_number("8005550199", parsed) == "tollfree_us"


@pytest.mark.parametrize(("value", "message"), [
    ([{"name": "ok", "regex": "^1"}, {"name": "bad", "regex": "("}], "[1].regex: invalid"),
    ([{"regex": "^1"}], "[0].name"),
    ([{"name": "", "regex": "^1"}], "[0].name"),
    ([{"name": "x", "regex": 5}], "[0].regex: must be a string"),
    ([{"name": "x", "regex": "x"}, "x"], "[1]: must be an object"),
    ({"name": "x", "regex": "x"}, "must be a JSON list"),
    ("[{", "not valid JSON"),
])
def test_parse_classifiers_names_the_index_and_field(value, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        parse_classifiers(value)


# --- global rules ---------------------------------------------------


@pytest.mark.parametrize("flags", [
    {"pvt_deleted": True}, {"pvt_deleted": "true"}, {"enabled": False}, {"enabled": "false"},
])
def test_deleted_or_disabled_documents_count_nothing(flags):
    device = kazoo("device", device_type="softphone", billing={"minutes": 10}, **flags)
    assert document_contributions(device).counts == {}
    assert document_contributions({**device, "_id": "apps_store", "apps": {"a": {}}}).counts == {}


@pytest.mark.parametrize("flags", [
    {}, {"pvt_deleted": False}, {"pvt_deleted": "false"}, {"enabled": True}, {"enabled": "true"},
])
def test_other_flag_values_count(flags):
    device = kazoo("device", device_type="softphone", **flags)
    assert counts(device) == {"devices": {"softphone": 1}}


def test_unknown_types_count_only_billing():
    assert counts(kazoo("callflow", numbers=["1000"])) == {}
    assert counts(kazoo("callflow", billing={"ivr": 1})) == {"billing": {"ivr": 1}}


# --- users and qubicle ---------------------------------------------


@pytest.mark.parametrize(("fields", "item"), [
    ({"priv_level": "admin"}, "admin"),
    ({"priv_level": "user"}, "user"),
    ({"priv_level": "operator"}, "operator"),
    ({}, "user"),
    ({"priv_level": ""}, "user"),
    ({"priv_level": None}, "user"),
])
def test_users_by_priv_level(fields, item):
    user = kazoo("user", username="alice@acme.example", first_name="Alice", **fields)
    assert counts(user) == {"users": {item: 1}}
    assert warnings(user) == ()


def test_user_with_a_non_string_priv_level_is_a_user_with_a_warning():
    contribution = document_contributions(kazoo("user", priv_level=3))
    assert contribution.counts == {"users": {"user": 1}}
    assert contribution.warnings == ("$.priv_level: not a string; counted as 'user'",)


@pytest.mark.parametrize(("qubicle", "expected"), [
    ({"enabled": True, "recipient": {"offering": "premium"}}, {"premium_recipient": 1}),
    ({"enabled": "true", "recipient": {}}, {"basic_recipient": 1}),
    ({"enabled": False, "recipient": {"offering": "premium"}}, {}),
    ({"recipient": {"offering": "premium"}}, {}),
    ({"enabled": True}, {}),
    ({"enabled": True, "recipient": "yes"}, {}),
])
def test_qubicle_recipients(qubicle, expected):
    got = counts(kazoo("user", priv_level="user", qubicle=qubicle))
    assert got.pop("users") == {"user": 1}
    assert got.get("qubicle", {}) == expected


@pytest.mark.parametrize(("fields", "item"), [
    ({"pvt_offering": "premium"}, "premium_queue"), ({}, "basic_queue"),
])
def test_qubicle_queues(fields, item):
    assert counts(kazoo("qubicle_queue", name="Sales", **fields)) == {"qubicle": {item: 1}}


# --- devices, limits, single-unit types --------------------------------------------------


@pytest.mark.parametrize(("fields", "item"), [
    ({"device_type": "sip_device"}, "sip_device"),
    ({"device_type": "softphone"}, "softphone"),
    ({"device_type": "cellphone"}, "cellphone"),
    ({"device_type": "fax"}, "fax"),
    ({}, "sip_device"),
    ({"device_type": ""}, "sip_device"),
])
def test_devices_by_type(fields, item):
    device = kazoo("device", name="Desk phone", sip={"username": "user_k2j4h6"}, **fields)
    assert counts(device) == {"devices": {item: 1}}


def test_limits_count_positive_trunks_only():
    limits = kazoo("limits", "limits", twoway_trunks=4, inbound_trunks="2", outbound_trunks=0,
                   allow_prepay=True)
    assert counts(limits) == {"limits": {"twoway_trunks": 4, "inbound_trunks": 2}}
    unlimited = kazoo("limits", "limits", twoway_trunks=-1, inbound_trunks=None,
                      outbound_trunks=Decimal("2.5"))
    assert counts(unlimited) == {"limits": {"outbound_trunks": 3}}
    assert warnings(unlimited) == ()


def test_limits_junk_values_warn():
    contribution = document_contributions(kazoo("limits", "limits", twoway_trunks="many"))
    assert contribution.counts == {}
    assert contribution.warnings == ("$.twoway_trunks: ignored: not a number",)


@pytest.mark.parametrize(("pvt_type", "expected"), [
    ("whitelabel", {"branding": {"whitelabel": 1}}),
    ("dedicated_ip", {"ips": {"dedicated": 1}}),
    ("faxbox", {"faxes": {"mailbox": 1}}),
    ("conference", {"conferences": {"conference": 1}}),
])
def test_single_unit_types(pvt_type, expected):
    assert counts(kazoo(pvt_type, name="x")) == expected


@pytest.mark.parametrize(("transcribe", "expected"), [
    (True, {"mailbox": 1, "transcription": 1}),
    ("true", {"mailbox": 1, "transcription": 1}),
    (False, {"mailbox": 1}),
    ("yes", {"mailbox": 1}),
    (None, {"mailbox": 1}),
])
def test_voicemail_boxes_and_transcription(transcribe, expected):
    vmbox = kazoo("vmbox", mailbox="1000", pin="4321", transcribe=transcribe)
    assert counts(vmbox) == {"voicemails": expected}


# --- numbers ------------------------------------------------------------------


def test_number_with_e911_and_cnam():
    doc = number("+14155550123", pvt_features={"e911": {"postal_code": "94105"},
                                               "cnam": {"inbound": True}})
    assert counts(doc) == {
        "phone_numbers": {"did_us": 1},
        "number_carriers": {"knm_bandwidth2": 1},
        "number_services": {"e911": 1, "cnam": 1},
    }


@pytest.mark.parametrize("local", [{}, True, "true", 1, {"x": 1}])
def test_local_numbers_stay_out_of_phone_numbers_only(local):
    doc = number("+14155550144", pvt_module_name="knm_local", pvt_features={"local": local},
                 billing={"port_fee": 1})
    assert counts(doc) == {
        "number_carriers": {"knm_local": 1},
        "number_services": {"local": 1},
        "billing": {"port_fee": 1},
    }


@pytest.mark.parametrize("local", [False, "false", None, 0, ""])
def test_falsy_local_feature_still_counts_the_number(local):
    got = counts(number("+14155550144", pvt_features={"local": local}))
    assert got["phone_numbers"] == {"did_us": 1}
    assert got["number_services"] == {"local": 1}


def test_number_classification_uses_the_e164_form_of_the_id():
    assert counts(number("8005550199"))["phone_numbers"] == {"tollfree_us": 1}
    assert counts(number("011442071838750"))["phone_numbers"] == {"international": 1}
    assert counts(number("+18765550100"))["phone_numbers"] == {"caribbean": 1}


def test_number_classifiers_are_configurable():
    doc = number("+14155550123")
    classifiers = parse_classifiers([{"name": "sf", "regex": r"^\+1415"}])
    assert document_contributions(doc, classifiers).counts["phone_numbers"] == {"sf": 1}


def test_number_features_that_are_not_an_object_count_nothing():
    contribution = document_contributions(number("+14155550123", pvt_features=["e911"]))
    assert contribution.counts == {"phone_numbers": {"did_us": 1},
                                   "number_carriers": {"knm_bandwidth2": 1}}
    assert contribution.warnings == ("$.pvt_features: not an object; ignored",)


def test_number_without_carrier_module():
    doc = number("+14155550123")
    del doc["pvt_module_name"]
    assert counts(doc) == {"phone_numbers": {"did_us": 1}}


# --- billing ------------------------------------------------------------------


def test_billing_on_any_document_rounds_half_away_from_zero():
    doc = kazoo("device", device_type="softphone", billing={
        "minutes": 10, "storage_gb": Decimal("2.5"), "seats": "1.5", "half": 0.5,
        "tiny": Decimal("0.4"), "none": 0})
    assert counts(doc) == {"devices": {"softphone": 1},
                           "billing": {"minutes": 10, "storage_gb": 3, "seats": 2, "half": 1}}
    assert all(type(v) is int for v in counts(doc)["billing"].values())
    assert warnings(doc) == ()


def test_billing_junk_values_are_ignored_with_a_warning():
    doc = kazoo("conference", billing={"a": "ten", "b": -1, "c": True, "d": None, "e": {"x": 1},
                                       "f": float("nan"), "ok": 2, "odd key": "-0.5"})
    contribution = document_contributions(doc)
    assert contribution.counts == {"conferences": {"conference": 1}, "billing": {"ok": 2}}
    assert contribution.warnings == (
        "$.billing.a: ignored: not a number",
        "$.billing.b: ignored: negative",
        "$.billing.c: ignored: not a number",
        "$.billing.d: ignored: not a number",
        "$.billing.e: ignored: not a number",
        "$.billing.f: ignored: not a number",
        "$.billing['odd key']: ignored: negative",
    )


def test_billing_that_is_not_an_object_warns():
    contribution = document_contributions(kazoo("faxbox", billing=[1, 2]))
    assert contribution.counts == {"faxes": {"mailbox": 1}}
    assert contribution.warnings == ("$.billing: not an object; ignored",)


# --- the seed's ui_apps on the account document ---------------------------------


def account_doc(**fields: Any) -> dict:
    return kazoo("account", ACCOUNT, name="Acme", pvt_tree=[OTHER], **fields)


@pytest.mark.parametrize(("install", "charged"), [
    ({"name": "accounts", "allowed_users": "specific", "users": []}, False),  # seed row 1
    ({"name": "accounts", "allowed_users": "specific", "users": ["u1", "u2"]}, True),  # row 2
    ({"name": "accounts", "allowed_users": "all", "users": []}, True),  # seed row 3
    ({"name": "accounts", "allowed_users": "admin", "users": []}, True),  # seed row 4
    ({"name": "accounts", "allowed_users": "admins"}, True),
    ({"name": "accounts", "users": ["u1"]}, True),  # missing allowed_users = specific
    ({"name": "accounts"}, False),
    ({"name": "accounts", "allowed_users": "specific", "users": "u1"}, False),
    ({"name": "accounts", "allowed_users": "nobody", "users": ["u1"]}, False),
])
def test_ui_apps_in_use_per_the_seed_table(install, charged):
    for key in ("apps", "ui_apps"):
        expected = {"ui_apps": {"accounts": 1}} if charged else {}
        assert counts(account_doc(**{key: {"0f3c5e7a9b": install}})) == expected


def test_ui_apps_are_named_by_name_else_id_and_charged_once():
    doc = account_doc(
        apps={"id-voip": {"allowed_users": "all"},
              "id-numbers": {"name": "numbers", "allowed_users": "all"},
              "id-numbers-2": {"name": "numbers", "allowed_users": "admins"}},
        ui_apps={"id-voip": {"allowed_users": "specific", "users": ["u1"]},
                 "id-branding": {"name": "branding", "allowed_users": "specific", "users": []}})
    assert counts(doc) == {"ui_apps": {"id-voip": 1, "numbers": 1}}


def test_ui_apps_only_from_account_documents():
    user = kazoo("user", priv_level="user", apps={"a": {"name": "voip", "allowed_users": "all"}})
    assert counts(user) == {"users": {"user": 1}}
    deleted = account_doc(pvt_deleted=True, apps={"a": {"allowed_users": "all"}})
    assert counts(deleted) == {}


def test_ui_apps_malformed_entries_warn():
    contribution = document_contributions(account_doc(apps={"a": "all"}, ui_apps=["x"]))
    assert contribution.counts == {}
    assert contribution.warnings == ("$.apps.a: not an object; ignored",
                                     "$.ui_apps: not an object; ignored")


# --- 4.3 apps_store: account_apps / user_apps ---------------------------


def apps_store(apps: dict, blacklist: list | None = None, **fields: Any) -> dict:
    doc = {"_id": "apps_store", "_rev": "3-9a8b", "pvt_account_id": ACCOUNT, "apps": apps,
           **fields}
    if blacklist is not None:
        doc["blacklist"] = blacklist
    return doc


def test_apps_store_installs_are_symbolic_for_all_and_admins():
    doc = apps_store({
        "id-voip": {"name": "voip", "allowed_users": "all", "users": []},
        "id-callflows": {"name": "callflows", "allowed_users": "admins", "users": []},
        "id-pbxs": {"name": "pbxs", "allowed_users": "admin"},
        "id-fax": {"name": "fax", "allowed_users": "specific",
                   "users": [{"id": "u1"}, {"id": "u2"}, {"id": "ghost"}]},
        "id-empty": {"name": "empty", "allowed_users": "specific", "users": []},
        "id-loose": {"name": "loose", "allowed_users": "specific"},
        "id-odd": {"name": "odd", "allowed_users": "nobody", "users": [{"id": "u1"}]},
        "id-bare": {"allowed_users": "all"},
    })
    assert counts(doc) == {
        "account_apps": {"voip": 1, "callflows": 1, "pbxs": 1, "fax": 1, "empty": 1,
                         "loose": 1, "odd": 1, "id-bare": 1},
        USER_APPS_ALL: {"voip": 1, "id-bare": 1},
        USER_APPS_ADMINS: {"callflows": 1, "pbxs": 1},
        "user_apps": {"fax": 3},
    }


def test_apps_store_blacklist_is_honoured():
    doc = apps_store({"id-voip": {"name": "voip", "allowed_users": "all"},
                      "id-webhooks": {"name": "webhooks", "allowed_users": "all"}},
                     blacklist=["id-webhooks"])
    assert counts(doc) == {"account_apps": {"voip": 1}, USER_APPS_ALL: {"voip": 1}}


def test_apps_store_is_recognised_by_id_only():
    install = {"id-voip": {"name": "voip", "allowed_users": "all"}}
    assert counts({**apps_store(install), "pvt_type": "apps_store"})["account_apps"] == {"voip": 1}
    assert counts({**apps_store(install), "_id": "apps_store_2", "pvt_type": "apps_store"}) == {}


def test_apps_store_same_name_installs_add_up():
    doc = apps_store({"id-a": {"name": "voip", "allowed_users": "all"},
                      "id-b": {"name": "voip", "allowed_users": "all"},
                      "id-c": {"name": "voip", "allowed_users": "specific", "users": ["u1"]}})
    assert counts(doc) == {"account_apps": {"voip": 3}, USER_APPS_ALL: {"voip": 2},
                           "user_apps": {"voip": 1}}


def test_apps_store_bad_blacklist_warns_and_blacklists_nothing():
    contribution = document_contributions(apps_store({"a": {"name": "voip"}}, blacklist="a"))
    assert contribution.counts == {"account_apps": {"voip": 1}}
    assert contribution.warnings == ("$.blacklist: not a list; nothing blacklisted",)


def test_user_apps_resolve_against_enabled_users_and_admins():
    docs = [
        kazoo("user", "u1", priv_level="admin"),
        kazoo("user", "u2", priv_level="user"),
        kazoo("user", "u3"),
        kazoo("user", "u4", priv_level="operator"),  # other priv levels do not count
        kazoo("user", "u5", priv_level="admin", enabled=False),  # disabled users do not count
        apps_store({"id-voip": {"name": "voip", "allowed_users": "all"},
                    "id-callflows": {"name": "callflows", "allowed_users": "admins"},
                    "id-fax": {"name": "fax", "allowed_users": "specific", "users": ["u2"]},
                    "id-voip-2": {"name": "voip", "allowed_users": "admin"}}),
    ]
    quantities, _ = account_quantities(docs)
    assert quantities["user_apps"] == {"voip": 3 + 1, "callflows": 1, "fax": 1}
    assert USER_APPS_ALL not in quantities and USER_APPS_ADMINS not in quantities
    # adding an admin changes user_apps too
    more, _ = account_quantities([*docs, kazoo("user", "u6", priv_level="admin")])
    assert more["user_apps"] == {"voip": 4 + 2, "callflows": 2, "fax": 1}


def test_resolve_drops_zero_user_apps_and_pseudo_categories():
    symbolic = {USER_APPS_ALL: {"voip": 2}, USER_APPS_ADMINS: {"callflows": 1},
                "users": {"user": 3}, "account_apps": {"voip": 2, "callflows": 1}}
    assert resolve_counts(symbolic) == {"users": {"user": 3},
                                        "account_apps": {"voip": 2, "callflows": 1},
                                        "user_apps": {"voip": 6}}
    assert resolve_counts({USER_APPS_ALL: {"voip": 1}}) == {}


def test_resolve_refuses_negative_counts():
    with pytest.raises(ValueError, match=r"users\.user = -1"):
        resolve_counts({"users": {"user": -1}})


# --- counts arithmetic ------------------------------------------------------------------


def test_add_subtract_and_diff():
    a = {"devices": {"sip_device": 2}, "users": {"user": 1}}
    b = {"devices": {"sip_device": 1, "softphone": 1}}
    assert add_counts(a, b) == {"devices": {"sip_device": 3, "softphone": 1}, "users": {"user": 1}}
    assert subtract_counts(b, a) == {"devices": {"sip_device": -1, "softphone": 1},
                                     "users": {"user": -1}}
    assert subtract_counts(a, a) == {}
    assert a == {"devices": {"sip_device": 2}, "users": {"user": 1}}  # inputs untouched
    assert diff_counts(a, b) == [("devices", "sip_device", 2, 1), ("devices", "softphone", 0, 1),
                                 ("users", "user", 1, 0)]
    assert diff_counts(a, {**a}) == []


# --- one account's documents ------------------------------------------------------------


def test_example_account_documents():
    quantities, warned = account_quantities(loads(EXAMPLE.read_text()))
    assert warned == ()
    assert quantities == {
        "ui_apps": {"numbers": 1, "voip": 1, "callflows": 1},
        "users": {"admin": 1, "user": 2},
        "devices": {"sip_device": 2, "softphone": 1, "cellphone": 1, "fax": 1},
        "limits": {"twoway_trunks": 4, "inbound_trunks": 2},
        "phone_numbers": {"did_us": 1, "tollfree_us": 1, "international": 1},
        "number_carriers": {"knm_bandwidth2": 2, "knm_local": 1, "knm_inventory": 1},
        "number_services": {"e911": 1, "cnam": 1, "local": 1},
        "voicemails": {"mailbox": 1, "transcription": 1},
        "faxes": {"mailbox": 1},
        "account_apps": {"voip": 1, "callflows": 1},
        "user_apps": {"voip": 3, "callflows": 1},
    }


@pytest.mark.parametrize(("doc", "owner"), [
    ({"pvt_account_id": ACCOUNT, "pvt_account_db": "account%2F9d%2F0e%2Frest"}, ACCOUNT),
    ({"pvt_account_db": "account%2F3a%2F7f%2F0c1e9b2d4f6a8c0e1f2a3b4c5d6e"}, ACCOUNT),
    ({"pvt_account_db": "account/3a/7f/0c1e9b2d4f6a8c0e1f2a3b4c5d6e"}, ACCOUNT),
    ({"pvt_type": "account", "_id": ACCOUNT}, ACCOUNT),
    ({"pvt_type": "device", "_id": ACCOUNT}, None),
    ({"pvt_account_db": "accounts"}, None),
])
def test_account_of(doc, owner):
    assert account_of(doc) == owner


@pytest.mark.parametrize("stranger", [
    {"pvt_account_id": OTHER, "pvt_type": "device"},
    {"pvt_account_db": "account%2F9d%2F0e%2F5b7c2a1f4e3d8b6c0a9f1e2d3c4b", "pvt_type": "user"},
    {"pvt_account_db": "account/9d/0e/5b7c2a1f4e3d8b6c0a9f1e2d3c4b", "pvt_type": "user"},
    {"_id": OTHER, "pvt_type": "account"},
    {"_id": OTHER, "pvt_type": "account", "pvt_deleted": True},
])
def test_documents_of_several_accounts_are_refused(stranger):
    docs = [account_doc(), {"pvt_type": "limits"}, stranger]
    with pytest.raises(QuantityInputError) as caught:
        account_quantities(docs)
    assert caught.value.path == "$[2]"
    assert f"but $[0] to account {ACCOUNT}" in caught.value.rule


def test_non_object_elements_are_refused():
    with pytest.raises(QuantityInputError) as caught:
        account_quantities([account_doc(), "device"])
    assert caught.value.path == "$[1]"
    assert caught.value.rule == "must be a JSON object (a KAZOO document)"
    assert isinstance(caught.value, ValueError)


def test_account_warnings_carry_the_document_index_and_values_are_ints():
    docs = [kazoo("device", billing={"seats": Decimal("1.5")}),
            kazoo("device", billing={"seats": "2", "junk": "x"})]
    quantities, warned = account_quantities(docs)
    assert quantities == {"devices": {"sip_device": 2}, "billing": {"seats": 4}}
    assert type(quantities["billing"]["seats"]) is int
    assert warned == ("$[1].billing.junk: ignored: not a number",)


# --- properties ------------------------------------------------------------------------

FLAGS = st.sampled_from([True, False, "true", "false", None, 0, 1, "", "yes"])
SCALARS = st.one_of(
    FLAGS, st.integers(-3, 1000), st.text(max_size=6),
    st.decimals(min_value=-5, max_value=500, places=2),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["2", "2.5", "-1", "0.4", "admin", "user", "all", "admins", "specific"]),
)
NAMES = st.sampled_from(["voip", "callflows", "numbers", "a", "b", "odd key"])
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(NAMES, inner, max_size=3), max_leaves=6)
APP = st.fixed_dictionaries({}, optional={
    "name": NAMES | SCALARS,
    "allowed_users": st.sampled_from(["all", "admins", "admin", "specific", "x", None]),
    "users": st.lists(st.text(max_size=3), max_size=4) | SCALARS,
})
APPS = st.dictionaries(NAMES, APP | SCALARS, max_size=4)
DOC_FIELDS = {
    "pvt_deleted": FLAGS, "enabled": FLAGS, "billing": st.dictionaries(NAMES, SCALARS) | SCALARS,
    "priv_level": st.sampled_from(["user", "admin", "operator", ""]) | SCALARS,
    "qubicle": st.fixed_dictionaries({}, optional={"enabled": FLAGS, "recipient": JSON}),
    "device_type": st.sampled_from(["sip_device", "softphone", "fax"]) | SCALARS,
    "pvt_offering": SCALARS, "twoway_trunks": SCALARS, "inbound_trunks": SCALARS,
    "outbound_trunks": SCALARS, "transcribe": FLAGS,
    "pvt_features": st.dictionaries(st.sampled_from(["e911", "cnam", "local"]), JSON) | SCALARS,
    "pvt_module_name": st.sampled_from(["knm_local", "knm_bandwidth2"]) | SCALARS,
    "apps": APPS | SCALARS, "ui_apps": APPS, "blacklist": st.lists(NAMES, max_size=2) | SCALARS,
}
TYPES = ["user", "device", "limits", "number", "vmbox", "faxbox", "conference", "whitelabel",
         "dedicated_ip", "qubicle_queue", "account", "callflow"]
IDS = st.sampled_from(["apps_store", "+14155550123", "8005550199", "+18765550100",
                       "0044207183875", "911", "x"]) | st.text(max_size=12)
TYPED_DOCS = st.builds(
    lambda pvt_type, _id, fields: {"pvt_type": pvt_type, "_id": _id, **fields,
                                   "pvt_account_id": ACCOUNT},
    st.sampled_from(TYPES), IDS, st.fixed_dictionaries({}, optional=DOC_FIELDS),
)
APPS_STORES = st.builds(
    lambda apps, fields: {**fields, "_id": "apps_store", "apps": apps, "pvt_account_id": ACCOUNT},
    APPS, st.fixed_dictionaries({}, optional={"blacklist": DOC_FIELDS["blacklist"],
                                              "pvt_deleted": FLAGS, "billing": SCALARS}),
)
DOCS = TYPED_DOCS | APPS_STORES
NONZERO_COUNTS = st.dictionaries(
    st.sampled_from(["users", "devices", USER_APPS_ALL]),
    st.dictionaries(NAMES, st.integers(-50, 50).filter(bool), min_size=1), max_size=3)


@given(DOCS)
def test_contributions_are_positive_ints(doc):
    contribution = document_contributions(doc)
    for items in contribution.counts.values():
        assert items
        assert all(type(v) is int and v > 0 for v in items.values())
    assert all(w.startswith("$") for w in contribution.warnings)


@given(st.lists(DOCS, max_size=8).flatmap(lambda docs: st.tuples(st.just(docs),
                                                                  st.permutations(docs))))
def test_account_quantities_is_the_resolved_sum_in_any_order(pair):
    docs, shuffled = pair
    total: Counts = {}
    for doc in docs:
        total = add_counts(total, document_contributions(doc).counts)
    quantities, _ = account_quantities(docs)
    assert quantities == resolve_counts(total) == account_quantities(shuffled)[0]
    assert all(type(v) is int and v > 0 for items in quantities.values() for v in items.values())


@given(NONZERO_COUNTS, NONZERO_COUNTS)
def test_subtract_undoes_add(a, b):
    assert subtract_counts(add_counts(a, b), b) == a
    assert diff_counts(a, add_counts(a, b)) == [
        (c, i, a.get(c, {}).get(i, 0), a.get(c, {}).get(i, 0) + v)
        for c, items in sorted(b.items()) for i, v in sorted(items.items())
    ]
