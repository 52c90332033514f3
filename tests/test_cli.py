"""The offline commands, run as a user runs them: the installed ``svc`` console script."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from svc.jsonio import loads

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SVC = [str(Path(sys.executable).parent / "svc")]


def svc(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SVC, *args], input=stdin, capture_output=True, text=True,
                          timeout=60, check=False)


def test_quote_prints_the_seed_invoice_as_json():
    result = svc("quote", str(EXAMPLES / "quote.json"))
    assert result.returncode == 0, result.stderr
    [invoice] = loads(result.stdout)["invoices"]
    by_item = {(i["category"], i["item"]): i for i in invoice["items"]}
    devices = by_item[("devices", "sip_devices")]
    # 7 devices (6 sip + 1 softphone under _all) fall in the "20" tier of the seed plan
    assert (devices["quantity"], devices["rate"], devices["total"]) == (
        7, Decimal("24.95"), Decimal("174.65"))
    assert by_item[("phone_numbers", "tollfree_us")]["billable"] == 10  # seed minimum
    assert invoice["summary"]["recurring"] == sum(i["total"] for i in invoice["items"])
    assert invoice["activation_charges"] == [{
        "category": "number_services", "item": "cnam", "name": "CNAM Update",
        "billable": 2, "rate": 2, "total": 4}]


def test_quote_reads_stdin_and_prints_a_table():
    document = (EXAMPLES / "quote.json").read_text()
    result = svc("quote", "-", "--format", "table", stdin=document)
    assert result.returncode == 0, result.stderr
    assert "SIP Device" in result.stdout and "174.65" in result.stdout
    assert "recurring" in result.stdout and "today" in result.stdout


@pytest.mark.parametrize(("stdin", "message"), [
    ("{not json", "is not valid JSON"),
    ("[]", "$: Input should be"),
    (json.dumps({"plans": [{"id": "p", "doc": {"plan": {"d": {"x": {"rates": {"abc": 1}}}}}}]}),
     "$.plans[0].doc.plan.d.x.rates['abc']: tier keys must match"),
    (json.dumps({"quantities": {"account": {"d": {"x": -1}}}}), "$.quantities.account.d.x"),
])
def test_bad_quote_input_exits_2_with_the_path_and_no_traceback(stdin, message):
    result = svc("quote", "-", stdin=stdin)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_quote_of_a_missing_file_exits_2():
    result = svc("quote", "/nonexistent/quote.json")
    assert result.returncode == 2 and "cannot read" in result.stderr


def test_plans_lint_warns_about_footguns_and_exits_0():
    plan = {"plan": {"devices": {"_all": {"rate": 1}, "sip_device": {"rates": {"5": 1}}},
                     "users": {"user": {"rate": 1, "discounts": {"cumulative": {"rate": 1}}}}}}
    result = svc("plans", "lint", "-", stdin=json.dumps(plan))
    assert result.returncode == 0
    assert "$.plan.devices.sip_device: also counted by _all" in result.stderr
    assert "$.plan.devices.sip_device.rates: tiers without a fallback rate" in result.stderr
    assert "$.plan.users.user.discounts.cumulative: cumulative discount without maximum" in (
        result.stderr)


def test_plans_lint_names_typos_unknown_categories_and_negative_totals():
    plan = {"plan": {"devices": {"sip_device": {"rate": 1, "minimun": 2,
                                                "activation_charges": 3,
                                                "discounts": {"single": {"rate": 5}}}},
                     "device": {"softphone": {"rate": 1}}}}
    result = svc("plans", "lint", "-", stdin=json.dumps(plan))
    assert result.returncode == 0 and result.stdout == "ok: 4 warning(s)\n"
    assert result.stderr.splitlines() == [
        "warning: $.plan.devices.sip_device.minimun: unknown item key (did you mean "
        "minimum?): KAZOO and svc ignore it",
        "warning: $.plan.devices.sip_device.activation_charges: unknown item key (did you "
        "mean activation_charge?): KAZOO and svc ignore it",
        "warning: $.plan.devices.sip_device.discounts: the discounts exceed the charge: the "
        "total is -4 at 1 units (discounts 5, charge 1)",
        "warning: $.plan.device: did you mean devices? no document counts toward this "
        "category: it bills manual quantities only"]


def test_plans_lint_of_the_seed_plan_is_valid():
    result = svc("plans", "lint", str(EXAMPLES / "seed-plan.json"))
    assert result.returncode == 0, result.stderr


def test_plans_lint_refuses_an_invalid_plan_with_exit_2():
    plan = {"plan": {"devices": {"_all": {"step": 0, "rate": "cheap"}}}}
    result = svc("plans", "lint", "-", stdin=json.dumps(plan))
    assert result.returncode == 2
    assert "$.plan.devices._all.step: must be >= 1" in result.stderr
    assert "$.plan.devices._all.rate: must be a number" in result.stderr


def test_quantities_of_the_example_account():
    result = svc("quantities", str(EXAMPLES / "account-docs.json"))
    assert result.returncode == 0, result.stderr
    counts = loads(result.stdout)
    docs = loads((EXAMPLES / "account-docs.json").read_text())
    devices = [d for d in docs if d.get("pvt_type") == "device"]
    assert sum(counts["devices"].values()) == len(devices)
    assert counts["phone_numbers"]["tollfree_us"] == 1
    assert "user_apps@all" not in counts  # symbolic entries never leave svc resolved


def test_quantities_refuses_documents_of_several_accounts():
    docs = [{"_id": "d1", "pvt_type": "device", "pvt_account_id": "a"},
            {"_id": "d2", "pvt_type": "device", "pvt_account_id": "b"}]
    result = svc("quantities", "-", stdin=json.dumps(docs))
    assert result.returncode == 2 and "$[1]" in result.stderr


def test_a_bad_classifier_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv("SVC_NUMBER_CLASSIFIERS", '[{"name": "x", "regex": "("}]')
    result = svc("quantities", str(EXAMPLES / "account-docs.json"))
    assert result.returncode == 2
    assert "SVC_NUMBER_CLASSIFIERS: [0].regex" in result.stderr


def test_custom_classifiers_are_used_in_order(monkeypatch):
    monkeypatch.setenv("SVC_NUMBER_CLASSIFIERS", '[{"name": "everything", "regex": "^.*$"}]')
    docs = [{"_id": "+14155550123", "pvt_type": "number", "pvt_account_id": "a"}]
    result = svc("quantities", "-", stdin=json.dumps(docs))
    assert loads(result.stdout)["phone_numbers"] == {"everything": 1}
