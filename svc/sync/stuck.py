"""Deliveries stuck longer than a threshold: a bookkeeper that keeps failing (or a record left
``sending`` by a process that died) owes an invoice that no retry has delivered. An operator
sees them (a gauge, ``/readyz``) and settles each: fix the bookkeeper, re-route, or abandon."""

from __future__ import annotations

from dataclasses import dataclass

from ..store import DocumentStore

UNSETTLED = ("sending", "failed")


@dataclass(frozen=True)
class StuckDeliveries:
    count: int  # unsettled for at least the threshold
    oldest_age_s: float  # since the first attempt of the oldest unsettled one; 0 if none

    def as_json(self, threshold_s: float) -> dict[str, float]:
        return {"stuck": self.count, "oldest_age_s": round(self.oldest_age_s, 1),
                "threshold_s": threshold_s}


async def stuck_deliveries(store: DocumentStore, now: float, threshold_s: float
                           ) -> StuckDeliveries:
    keys = [key for state in UNSETTLED
            for key in await store.find_keys("deliveries", "state", state)]
    records = (await store.get_many("deliveries", keys)).values()
    ages = [now - float(found.doc.get("since", found.doc["updated_at"])) for found in records
            if found.doc["state"] in UNSETTLED]
    return StuckDeliveries(sum(age >= threshold_s for age in ages), max(ages, default=0.0))
