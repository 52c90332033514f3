"""The metrics of the operations guide's metrics, on a registry of their own per service (so a
test reads a fresh one). Label values come from closed sets: free text from the wire never
becomes a label, or one bad client could create unbounded series."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from ..quantities import DOC_TYPES

# RPC latencies sit between a millisecond (a cached quote) and seconds (a forced sync).
RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
NOTICE_TYPES = DOC_TYPES | {"service_plan"}


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        on = {"registry": self.registry}
        self.rpc_requests = Counter(
            "svc_rpc_requests", "RPC requests, by category, request name and status "
            "(success, error: a domain error reply, invalid: the generic error reply, "
            "expired: not executed, its caller had given up).",
            ["category", "event", "status"], **on)
        self.rpc_duration = Histogram(
            "svc_rpc_duration_seconds", "Time from delivery to reply, by category.",
            ["category"], buckets=RPC_BUCKETS, **on)
        self.doc_changes = Counter(
            "svc_doc_changes", "Document-change notices by document type and outcome.",
            ["type", "outcome"], **on)
        self.dirty_accounts = Gauge(
            "svc_dirty_accounts", "Accounts whose services changed since their last sync.", **on)
        self.oldest_dirty_age = Gauge(
            "svc_oldest_dirty_account_age_seconds",
            "Seconds since the oldest change that no sync has billed yet.", **on)
        self.sync_attempts = Counter(
            "svc_sync_attempts", "Invoice deliveries to bookkeepers, by bookkeeper (an "
            "SVC_BOOKKEEPERS id, else local, kazoo or other) and outcome (good_standing, "
            "delinquent, failed).", ["bookkeeper", "outcome"], **on)
        self.dead_letters = Counter(
            "svc_dead_letters", "Messages svc dead-lettered, by reason code.", ["reason"], **on)
        self.stuck_deliveries = Gauge(
            "svc_deliveries_stuck", "Invoice deliveries unsettled (failed or unanswered) for "
            "longer than SVC_STUCK_DELIVERY_S: an operator fixes the bookkeeper, re-routes or "
            "abandons each.", **on)
        self.oldest_unsettled_delivery_age = Gauge(
            "svc_oldest_unsettled_delivery_age_seconds",
            "Seconds since the first attempt of the oldest unsettled delivery.", **on)
        self.pending_rereads = Gauge(
            "svc_pending_rereads", "Documents a lagging CouchDB replica had only at an older "
            "revision than their notice, recorded to be read again.", **on)
        self.broker_connected = Gauge(
            "svc_broker_connected", "1 while the AMQP connection is up, else 0.", **on)
        self.http_requests = Counter(
            "svc_http_requests", "HTTP requests, by route template (unmatched: no route), "
            "method and status.", ["route", "method", "status"], **on)
        self.http_duration = Histogram(
            "svc_http_request_duration_seconds", "Time to answer an HTTP request, by route "
            "template and method.", ["route", "method"], buckets=RPC_BUCKETS, **on)
        ProcessCollector(registry=self.registry)  # process_*: CPU, memory, open files

    def rpc(self, category: str, event: str, status: str, seconds: float) -> None:
        self.rpc_requests.labels(category, event, status).inc()
        self.rpc_duration.labels(category).observe(seconds)

    def http(self, route: str, method: str, status: int, seconds: float) -> None:
        self.http_requests.labels(route, method, str(status)).inc()
        self.http_duration.labels(route, method).observe(seconds)

    def doc_change(self, doc_type: str, outcome: str) -> None:
        self.doc_changes.labels(doc_type if doc_type in NOTICE_TYPES else "other",
                                outcome).inc()

    def sync_attempt(self, bookkeeper_id: str, outcome: str) -> None:
        self.sync_attempts.labels(bookkeeper_id, outcome).inc()

    def dead_letter(self, reason: str) -> None:
        self.dead_letters.labels(reason).inc()

    def set_dirty(self, count: int, oldest_change: float | None, now: float) -> None:
        self.dirty_accounts.set(count)
        self.oldest_dirty_age.set(0 if oldest_change is None else max(now - oldest_change, 0))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
