"""deploy/docker-compose.yml against the compose-spec schema, the GitHub workflows against the
workflow schema (both vendored by check-jsonschema, run offline), and the compose stack's parts
against each other: MongoDB as a replica set, health-gated start-up, Prometheus scraping svc,
Grafana provisioned with the dashboard."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))


def check_jsonschema(builtin: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", builtin, str(path)],
        capture_output=True, text=True, timeout=120, check=False)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(COMPOSE)


def test_compose_file_matches_the_compose_spec():
    result = check_jsonschema("vendor.compose-spec", COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_spec_check_catches_a_bad_key(tmp_path):
    """Guards the guard: the schema check fails on a key compose does not know."""
    broken = load(COMPOSE)
    broken["services"]["svc"]["depends"] = broken["services"]["svc"].pop("depends_on")
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    result = check_jsonschema("vendor.compose-spec", path)
    assert result.returncode != 0 and "depends" in result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[w.name for w in WORKFLOWS])
def test_github_workflow_matches_the_workflow_schema(workflow):
    result = check_jsonschema("vendor.github-workflows", workflow)
    assert result.returncode == 0, result.stdout + result.stderr


def test_there_is_a_workflow():
    assert WORKFLOWS


def test_mongo_is_a_single_node_replica_set_initiated_by_its_healthcheck(compose):
    mongo = compose["services"]["mongo"]
    assert mongo["image"].split(":")[1].split(".")[0] == "7"
    command = mongo["command"]
    assert command[command.index("--replSet") + 1] == "rs0"
    assert "--bind_ip_all" in command
    test = mongo["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "mongosh"
    script = test[-1]
    # idempotent: initiate only when rs.status() fails, healthy only once PRIMARY
    assert "rs.status()" in script and "catch" in script and "rs.initiate(" in script
    assert "_id: 'rs0'" in script and "host: 'mongo:27017'" in script
    assert "isWritablePrimary" in script


def test_svc_is_built_from_the_repo_and_waits_for_healthy_dependencies(compose):
    svc = compose["services"]["svc"]
    context = (DEPLOY / svc["build"]["context"]).resolve()
    assert context == ROOT
    assert (context / svc["build"].get("dockerfile", "Dockerfile")).is_file()
    env = svc["environment"]
    store = urlsplit(env["SVC_STORE_URL"])
    assert (store.scheme, store.netloc, store.path) == ("mongodb", "mongo:27017", "/svc")
    assert parse_qs(store.query)["replicaSet"] == ["rs0"]
    amqp = urlsplit(env["SVC_AMQP_URL"])
    assert amqp.scheme == "amqp" and amqp.hostname == "rabbitmq" and amqp.port == 5672
    assert svc["depends_on"] == {"rabbitmq": {"condition": "service_healthy"},
                                 "mongo": {"condition": "service_healthy"}}
    for dependency in ("rabbitmq", "mongo"):
        assert "healthcheck" in compose["services"][dependency], dependency
    assert "9102:9102" in svc["ports"]


def test_images_are_pinned(compose):
    assert compose["services"]["rabbitmq"]["image"] == "rabbitmq:3.13-management"
    for name, service in compose["services"].items():
        if "image" in service and "build" not in service:
            assert ":" in service["image"] and not service["image"].endswith(":latest"), name


def test_bind_mounts_exist(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source}"


def test_prometheus_scrapes_svc(compose):
    prometheus = compose["services"]["prometheus"]
    mounts = dict(v.split(":")[:2] for v in prometheus["volumes"])
    config_path = next(src for src, dst in mounts.items() if dst.endswith("prometheus.yml"))
    config = load(DEPLOY / config_path)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    svc = jobs["svc"]
    assert svc.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for static in svc["static_configs"] for t in static["targets"]]
    assert targets == ["svc:9102"]


def test_grafana_is_provisioned_with_the_datasource_and_the_dashboard(compose):
    grafana = compose["services"]["grafana"]
    mounts = {dst: src for src, dst, *_ in (v.split(":") for v in grafana["volumes"])}
    provisioning = DEPLOY / mounts["/etc/grafana/provisioning"]
    datasources = [ds for f in sorted((provisioning / "datasources").glob("*.y*ml"))
                   for ds in load(f)["datasources"]]
    assert [ds["type"] for ds in datasources] == ["prometheus"]
    assert urlsplit(datasources[0]["url"]).netloc == "prometheus:9090"
    providers = [p for f in sorted((provisioning / "dashboards").glob("*.y*ml"))
                 for p in load(f)["providers"]]
    assert len(providers) == 1
    dashboard_dir = providers[0]["options"]["path"].rstrip("/")
    dashboards = {dst: src for dst, src in mounts.items() if dst.startswith(dashboard_dir + "/")}
    assert dashboards, f"nothing is mounted under the provider's path {dashboard_dir}"
    for source in dashboards.values():
        assert (DEPLOY / source).resolve() == (DEPLOY / "grafana" / "svc-dashboard.json")
