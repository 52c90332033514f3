"""What was billed, per item and per UTC day: KAZOO's ``audit_summary`` (its views
``services/day_summary_by_date`` and ``…_by_source`` over the audit logs' invoices), from
svc's answered delivery records.

For each invoice a bookkeeper answered (a declined one presented again is the same invoice,
counted once), each item whose billable quantity changed adds its rise to ``addition`` or its
fall to ``removal`` of that day; ``quantity`` is the billable quantity the day's latest invoice
gave it, at ``last_timestamp``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from .models.fields import gregorian_of

Doc = dict[str, Any]


def _day(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).date().isoformat()


def day_summaries(records: Iterable[Doc], since: float | None = None,
                  until: float | None = None) -> dict[str, dict[str, Doc]]:
    """``{item: {day: {addition, removal, quantity, last_timestamp, sum_quantity}}}`` of the
    answered deliveries written from ``since`` up to ``until`` (epoch seconds, both
    included)."""
    answered = sorted((r for r in records if r["state"] == "answered"
                       and not r.get("presentation")
                       and (since is None or since <= float(r["updated_at"]))
                       and (until is None or float(r["updated_at"]) <= until)),
                      key=lambda r: float(r["updated_at"]))
    days: dict[str, dict[str, Doc]] = {}
    for record in answered:
        at = float(record["updated_at"])
        for item in record["invoice"]["items"]:
            moved = ((item.get("changes") or {}).get("difference") or {}).get("billable", 0)
            if not moved:
                continue
            day = days.setdefault(item["item"], {}).setdefault(_day(at), {
                "addition": 0, "removal": 0, "sum_quantity": False})
            day["addition" if moved > 0 else "removal"] += abs(moved)
            day.update(quantity=item["billable"], last_timestamp=gregorian_of(at))
    return days
