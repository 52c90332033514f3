"""deploy/grafana/svc-dashboard.json: valid JSON on a datasource variable, every panel query uses
only the metrics of the operations guide's metrics (and only their labels), every one of those
metrics is shown, and the metrics svc exports are exactly those."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "svc-dashboard.json"

# name -> (type, labels)
METRICS: dict[str, tuple[str, frozenset[str]]] = {
    "svc_rpc_requests_total": ("counter", frozenset({"category", "event", "status"})),
    "svc_rpc_duration_seconds": ("histogram", frozenset({"category"})),
    "svc_doc_changes_total": ("counter", frozenset({"type", "outcome"})),
    "svc_dirty_accounts": ("gauge", frozenset()),
    "svc_oldest_dirty_account_age_seconds": ("gauge", frozenset()),
    "svc_sync_attempts_total": ("counter", frozenset({"bookkeeper", "outcome"})),
    "svc_dead_letters_total": ("counter", frozenset({"reason"})),
    "svc_broker_connected": ("gauge", frozenset()),
    "svc_deliveries_stuck": ("gauge", frozenset()),
    "svc_oldest_unsettled_delivery_age_seconds": ("gauge", frozenset()),
    "svc_pending_rereads": ("gauge", frozenset()),
    "svc_http_requests_total": ("counter", frozenset({"route", "method", "status"})),
    "svc_http_request_duration_seconds": ("histogram", frozenset({"route", "method"})),
}
# the process collector's, beside svc's own: the dashboard shows these
PROCESS_METRICS: dict[str, tuple[str, frozenset[str]]] = {
    "process_resident_memory_bytes": ("gauge", frozenset()),
    "process_cpu_seconds_total": ("counter", frozenset()),
}
TARGET_LABELS = frozenset({"job", "instance"})  # added by Prometheus to every series
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

PROMQL_KEYWORDS = frozenset({
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan", "atan2",
})
IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def sample_family(name: str) -> str | None:
    """The svc metric a series name belongs to (``…_bucket`` of a histogram included)."""
    if name in METRICS or name in PROCESS_METRICS:
        return name
    for suffix in HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and METRICS.get(base, ("",))[0] == "histogram":
            return base
    return None


def parse(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) of a PromQL expression, from a small tokenizer: strings,
    numbers, durations and ``$variables`` are dropped; ``by (…)``/``without (…)``/``on (…)``
    lists and ``{…}`` matchers give label names; an identifier followed by ``(`` is a function
    or an aggregation; any other identifier that is not a keyword is a metric name."""
    labels: set[str] = set()
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors and subqueries
    for grouping in re.finditer(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*"
                                r"\(([^)]*)\)", text):
        labels.update(x.strip() for x in grouping.group(1).split(",") if x.strip())
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    for matchers in re.finditer(r"\{([^}]*)\}", text):
        labels.update(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers.group(1)))
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)
    # numbers, with an exponent or a duration unit (offset 5m)
    text = re.sub(r"(?<![\w:])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?[a-z]*", " ", text)
    metrics = set()
    for match in IDENT.finditer(text):
        word = match.group(0)
        if re.match(r"\s*\(", text[match.end():]) or word.lower() in PROMQL_KEYWORDS:
            continue
        metrics.add(word)
    return metrics, labels


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # collapsed rows keep theirs inside
    return out


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in panels(dashboard)
            for target in panel.get("targets", [])]


def variable_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", text)
            out.append((f"variable {variable['name']}", inner.group(1) if inner else text))
    return out


def test_parser_sees_metrics_and_labels():
    metrics, labels = parse('histogram_quantile(0.99, sum by (category, le) (rate('
                            'svc_rpc_duration_seconds_bucket{job=~"$job"}[$__rate_interval])))'
                            ' / on (category) up{x="a{b}"} offset 5m > 1e-9')
    assert metrics == {"svc_rpc_duration_seconds_bucket", "up"}
    assert labels == {"category", "le", "job", "x"}


def test_dashboard_is_grafana_json_on_a_datasource_variable(dashboard):
    assert dashboard["uid"] and dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, (
            panel["title"])
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == "${datasource}", variable["name"]


def test_queries_use_only_the_spec_metrics_and_their_labels(dashboard):
    for where, expr in panel_queries(dashboard) + variable_queries(dashboard):
        metrics, labels = parse(expr)
        assert metrics, f"{where}: no metric in {expr!r}"
        unknown = {m for m in metrics if sample_family(m) is None}
        assert not unknown, f"{where}: not a svc metric: {sorted(unknown)}"
        allowed = set(TARGET_LABELS)
        for metric in metrics:
            family = sample_family(metric)
            allowed |= {**METRICS, **PROCESS_METRICS}[family][1]
            if metric.endswith("_bucket"):
                allowed.add("le")
        assert labels <= allowed, f"{where}: labels {sorted(labels - allowed)} not on {metrics}"


def test_every_spec_metric_is_on_some_panel(dashboard):
    shown = {sample_family(m) for _, expr in panel_queries(dashboard) for m in parse(expr)[0]}
    shown.discard(None)  # reported by the test above
    shown_too = set(METRICS) | set(PROCESS_METRICS)
    assert shown == shown_too, f"not shown: {sorted(shown_too - shown)}"


def test_latency_quantiles_and_error_rate(dashboard):
    exprs = [expr for _, expr in panel_queries(dashboard)]
    for quantile in ("0.5", "0.99"):
        assert any(re.search(rf"histogram_quantile\(\s*{re.escape(quantile)}\s*,.*by \("
                             rf"category, le\).*svc_rpc_duration_seconds_bucket", e)
                   for e in exprs), f"p{quantile} latency by category"
    assert any('status!="success"' in e and "/" in e for e in exprs), "an RPC error ratio"


def test_the_exported_metrics_are_the_spec_ones():
    """What svc's registry exposes (names and types) is what the dashboard is built on."""
    metrics_module = pytest.importorskip("svc.ops.metrics")
    text = metrics_module.Metrics().exposition().decode()
    exported = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE))
    own = {name: kind for name, kind in exported.items() if not name.startswith("process_")}
    assert own == {name: kind for name, (kind, _) in METRICS.items()}
    assert {name: exported.get(name) for name in PROCESS_METRICS} == {
        name: kind for name, (kind, _) in PROCESS_METRICS.items()}
