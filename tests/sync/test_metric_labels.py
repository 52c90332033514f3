"""``svc_sync_attempts_total{bookkeeper}`` takes its values from a closed set:
the SVC_BOOKKEEPERS ids, ``local``, ``kazoo`` and ``other``; a plan document naming any
bookkeeper it likes adds no series."""

from __future__ import annotations

import pytest

from svc.bookkeepers.abc import Answer, BookkeeperAdapter, InvoiceDelivery
from svc.bookkeepers.router import BookkeeperRouter
from svc.ops import Metrics
from svc.rating import Bookkeeper

INVOICE = {"items": [], "activation_charges": [], "summary": {}}


class Answering(BookkeeperAdapter):
    async def deliver(self, delivery: InvoiceDelivery) -> Answer:
        return Answer("good_standing")


@pytest.mark.parametrize(("bookkeeper", "label"), [
    (Bookkeeper("billing", "http", "r1"), "billing"),  # configured
    (Bookkeeper("default_bookkeeper", "local", "r1"), "local"),
    (Bookkeeper("made-up-by-a-plan-1", "default", "r1"), "local"),
    (Bookkeeper("made-up-by-a-plan-2", "braintree", "r1"), "kazoo"),
    (Bookkeeper("made-up-by-a-plan-3", "http", "r1"), "other"),  # no such SVC_BOOKKEEPERS id
])
async def test_labels_come_from_a_closed_set(bookkeeper, label):
    metrics = Metrics()
    router = BookkeeperRouter(Answering(), {"billing": Answering()}, Answering(),
                              observe=metrics.sync_attempt, configured={"billing": None})
    await router.adapter_for(bookkeeper).deliver(
        InvoiceDelivery("a1", "1", "k", bookkeeper, INVOICE))
    labels = {sample.labels["bookkeeper"] for metric in metrics.sync_attempts.collect()
              for sample in metric.samples if sample.name.endswith("_total")}
    assert labels == {label}
