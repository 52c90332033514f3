"""KAZOO's audit summary over real HTTP: what the bookkeepers were billed, per item and per
UTC day, from the invoices they answered (cb_services.erl validate/2 ``audit_summary`` and
validate/3 ``audit_summary/{source}``; the views ``day_summary_by_date`` and
``day_summary_by_source`` of kazoo_modb's services.json)."""

from __future__ import annotations

import datetime

GREGORIAN_1970 = 62_167_219_200


async def billed(api, account: str, devices: int) -> None:
    manual = await api.account("POST", account, "/services/manual",
                               body={"quantities": {"devices": {"sip_device": devices}}})
    assert manual.status == 200, manual.body
    synced = await api.account("POST", account, "/services/sync")
    assert synced.status == 200, synced.body


async def test_a_days_billed_changes_are_summed_per_item(api, accounts):
    account = accounts.client_a
    assert (await api.account("POST", account, "/services/gold")).status == 200
    for devices in (2, 5, 3):  # +2, +3, -2: five added, two removed, three at the end
        await billed(api, account, devices)
    today = datetime.datetime.now(datetime.UTC).date().isoformat()

    by_item = await api.account("GET", account, "/services/audit_summary")
    assert by_item.status == 200, by_item.body
    [items] = by_item.body["data"]  # normalize_day_summary_by_date: one object
    assert list(items) == ["_all"]  # the plan bills devices as _all; users never changed
    day = items["_all"][today]
    assert {k: v for k, v in day.items() if k != "last_timestamp"} == {
        "addition": 5, "removal": 2, "quantity": 3, "sum_quantity": False}
    now = datetime.datetime.now(datetime.UTC).timestamp() + GREGORIAN_1970
    assert now - 60 < day["last_timestamp"] <= now + 1

    one = await api.account("GET", account, "/services/audit_summary/_all")
    assert one.status == 200 and one.body["data"] == [{today: day}], one.body
    assert (await api.account("GET", account, "/services/audit_summary/user")
            ).body["data"] == []
    ended = await api.account("GET", account,  # crossbar_view's range, Gregorian seconds
                              f"/services/audit_summary?created_to={int(now) - 3600}")
    assert ended.status == 200 and ended.body["data"] == [{}], ended.body
