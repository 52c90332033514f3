"""KAZOO's view of svc's summary (``kz_services:summary/1``): the standing object and the
billing cycle, pure functions of the Summary and the clock."""

from __future__ import annotations

from datetime import UTC, datetime

from svc.api.views import kazoo_summary
from svc.models.documents import Summary

GREGORIAN_1970 = 62_167_219_200


def summary(status: str, results: list[dict]) -> Summary:
    return Summary.model_validate({
        "account_id": "a" * 32, "reseller_id": "r" * 32, "is_reseller": False,
        "status": status, "plans": {}, "overrides": {},
        "quantities": {"account": {}, "cascade": {}, "manual": {}}, "invoices": [],
        "dirty": False, "last_sync": {"timestamp": GREGORIAN_1970 + 1, "results": results}})


def test_a_delinquent_account_is_not_acceptable_with_what_its_bookkeeper_said():
    declined = summary("delinquent", [
        {"bookkeeper": {"id": "local", "type": "local", "vendor_id": "r" * 32},
         "status": "completed", "reason": None, "message": None},
        {"bookkeeper": {"id": "stripe", "type": "http", "vendor_id": "r" * 32},
         "status": "completed", "reason": "card_declined", "message": "the card expired"}])
    view = kazoo_summary(declined, datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    assert view.status.model_dump() == {"acceptable": False, "reason": "delinquent",
                                        "message": "the card expired"}
    assert view.standing == "delinquent"
    assert view.billing_cycle.next == GREGORIAN_1970 + int(
        datetime(2027, 1, 1, tzinfo=UTC).timestamp())  # next month's first, across the year


def test_a_decline_whose_answer_said_nothing_still_says_why():
    view = kazoo_summary(summary("delinquent", []), datetime(2026, 6, 1, tzinfo=UTC))
    assert not view.status.acceptable and view.status.message
    good = kazoo_summary(summary("good_standing", []), datetime(2026, 6, 1, tzinfo=UTC))
    assert good.status.model_dump() == {"acceptable": True, "reason": "good_standing",
                                        "message": None}
