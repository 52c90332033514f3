"""The Kubernetes base in deploy/k8s.

Every built-in kind is validated against the Kubernetes schemas that kubernetes-validate ships
(strict: an unknown or misspelt field fails); the ServiceMonitor and kustomization.yaml against
the schemas vendored in tests/deploy/schemas (see the README there). Then the parts are checked
against each other and against svc itself: selectors, ports, probes, the Secret and ConfigMap the
Deployment reads, the grace period against svc's drain timeout, the ConfigMap against
svc.settings. No network is used.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SCHEMAS = Path(__file__).resolve().parent / "schemas"

KUBERNETES_VERSION = "1.30.0"
# custom resources: (apiVersion, kind) -> vendored JSON Schema
CRD_SCHEMAS = {("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring-v1.json"}
KUSTOMIZATION = K8S / "kustomization.yaml"
SECRET_EXAMPLE = K8S / "secret.example.yaml"
NAME_LABEL = "app.kubernetes.io/name"


def load_all(path: Path) -> list[dict[str, Any]]:
    with path.open() as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.y*ml") if p != KUSTOMIZATION)


def documents() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{path.name}:{doc.get('kind')}/{doc.get('metadata', {}).get('name')}", doc)
            for path in manifest_files() for doc in load_all(path)]


DOCS = documents()


def schema_errors(schema: dict[str, Any], instance: Any) -> list[str]:
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    return [f"{'.'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
            for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.path))]


def by_kind(kind: str) -> dict[str, Any]:
    found = [doc for path in manifest_files() if path != SECRET_EXAMPLE
             for doc in load_all(path) if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} in the base, found {len(found)}"
    return found[0]


def container() -> dict[str, Any]:
    containers = by_kind("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_the_base_has_every_expected_kind():
    kinds = sorted(doc["kind"] for _, doc in DOCS)
    assert kinds == sorted(["ConfigMap", "Deployment", "HorizontalPodAutoscaler",
                            "PodDisruptionBudget", "Secret", "Service", "ServiceAccount",
                            "ServiceMonitor"])


@pytest.mark.parametrize("doc", [d for _, d in DOCS], ids=[i for i, _ in DOCS])
def test_manifest_validates_against_its_schema(doc):
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in CRD_SCHEMAS:
        schema = json.loads((SCHEMAS / CRD_SCHEMAS[key]).read_text())
        errors = schema_errors(schema, doc)
        assert not errors, f"{key[1]} does not match its vendored schema:\n" + "\n".join(errors)
        return
    problem = None
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(p) for p in error.path) or "<root>"
        problem = (f"{key[1]} is not valid Kubernetes {KUBERNETES_VERSION} (strict): "
                   f"{path}: {error.message}")
    except kubernetes_validate.SchemaNotFoundError:
        problem = (f"no schema for {key}: a custom resource needs a vendored schema in "
                   f"tests/deploy/schemas and an entry in CRD_SCHEMAS")
    assert problem is None, problem


def test_strict_validation_rejects_a_misspelt_field():
    """Guards the guard: strict mode really fails on a field the API does not have."""
    deployment = json.loads(json.dumps(by_kind("Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"][
        "readOnlyRootFilesytem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    monitor = json.loads(json.dumps(by_kind("ServiceMonitor")))
    monitor["spec"]["endpoints"][0]["scrape_interval"] = "30s"
    schema = json.loads((SCHEMAS / CRD_SCHEMAS["monitoring.coreos.com/v1",
                                               "ServiceMonitor"]).read_text())
    assert any("scrape_interval" in e for e in schema_errors(schema, monitor))


def test_kustomization_validates_against_the_schemastore_schema():
    schema = json.loads((SCHEMAS / "kustomization.json").read_text())
    kustomization = load_all(KUSTOMIZATION)
    assert len(kustomization) == 1
    errors = schema_errors(schema, kustomization[0])
    assert not errors, "kustomization.yaml:\n" + "\n".join(errors)
    assert schema_errors(schema, {**kustomization[0], "resource": ["x.yaml"]}), (
        "the vendored kustomization schema must reject unknown keys")


def test_kustomization_lists_exactly_the_manifests_except_the_secret_example():
    resources = load_all(KUSTOMIZATION)[0]["resources"]
    assert len(resources) == len(set(resources)), "a resource is listed twice"
    expected = sorted(p.name for p in manifest_files() if p != SECRET_EXAMPLE)
    assert sorted(resources) == expected, (
        f"kustomization.yaml resources {sorted(resources)} != manifest files {expected}")
    # placeholder credentials are never applied: the user creates the Secret
    assert SECRET_EXAMPLE.name not in resources


def test_everything_carries_the_app_label():
    for ident, doc in DOCS:
        assert doc["metadata"].get("labels", {}).get(NAME_LABEL) == "svc", ident
    template = by_kind("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert template[NAME_LABEL] == "svc"


def test_selectors_pick_the_deployments_pods():
    deployment = by_kind("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = {
        "Deployment": deployment["spec"]["selector"]["matchLabels"],
        "Service": by_kind("Service")["spec"]["selector"],
        "PodDisruptionBudget": by_kind("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
    }
    for kind, selector in selectors.items():
        assert selector and selector.items() <= pod_labels.items(), kind
    monitor_selector = by_kind("ServiceMonitor")["spec"]["selector"]["matchLabels"]
    assert monitor_selector.items() <= by_kind("Service")["metadata"]["labels"].items()


def test_metrics_port_is_named_and_wired_through_service_and_monitor():
    from svc.settings import Settings

    ports = {p["name"]: p for p in container()["ports"]}
    assert ports["metrics"]["containerPort"] == 9102 == Settings().http_port
    assert by_kind("ConfigMap")["data"]["SVC_HTTP_PORT"] == "9102"
    service_ports = {p["name"]: p for p in by_kind("Service")["spec"]["ports"]}
    assert service_ports["metrics"]["port"] == 9102
    assert service_ports["metrics"]["targetPort"] in ("metrics", 9102)
    endpoints = by_kind("ServiceMonitor")["spec"]["endpoints"]
    assert [(e["port"], e.get("path", "/metrics")) for e in endpoints] == [("metrics", "/metrics")]


def test_probes():
    spec = container()
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"),
                        ("readinessProbe", "/readyz")):
        assert spec[probe]["httpGet"] == {"path": path, "port": "metrics"}, probe


def test_hardened_pod_and_container():
    pod = by_kind("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    security = container()["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 10001  # the Dockerfile's USER
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    # the only writable place is an emptyDir at /tmp
    mounts = {m["mountPath"]: m["name"] for m in container()["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    resources = container()["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert {"cpu", "memory"} <= resources["limits"].keys()


def test_grace_period_covers_pre_stop_and_drain():
    from svc.settings import Settings

    DRAIN_TIMEOUT_S = Settings().drain_timeout_s

    pod = by_kind("Deployment")["spec"]["template"]["spec"]
    command = container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "python", "the image has no sleep binary worth relying on"
    sleep = re.search(r"time\.sleep\((\d+(?:\.\d+)?)\)", " ".join(command))
    assert sleep, command
    margin = 10  # flush, close the connection and the store
    assert pod["terminationGracePeriodSeconds"] >= float(sleep.group(1)) + DRAIN_TIMEOUT_S + margin


def test_environment_comes_from_the_configmap_and_the_secret():
    config = by_kind("ConfigMap")
    secret = load_all(SECRET_EXAMPLE)[0]
    spec = container()
    assert spec["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
    env = {e["name"]: e for e in spec["env"]}
    for name in ("SVC_STORE_URL", "SVC_AMQP_URL"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"], name
        assert ref["key"] in secret["stringData"], name
        assert not ref.get("optional", False), f"{name} is required"
        assert name not in config["data"], f"{name} belongs in the Secret"
    assert secret["stringData"]["SVC_STORE_URL"].startswith("mongodb://"), (
        "more than one replica needs MongoDB")
    assert "replicaSet=" in secret["stringData"]["SVC_STORE_URL"]


def test_configmap_holds_valid_svc_settings(monkeypatch):
    """Every key is a setting svc knows, and svc accepts every value (with the example Secret)."""
    from svc.settings import Settings, load_settings

    data = by_kind("ConfigMap")["data"]
    known = {f"SVC_{field.upper()}" for field in Settings.model_fields}
    assert set(data) <= known, f"unknown settings: {sorted(set(data) - known)}"
    assert data["SVC_LOG_FORMAT"] == "json"
    assert {"SVC_SYNC_INTERVAL_S", "SVC_RPC_PREFETCH"} <= data.keys()
    secret = load_all(SECRET_EXAMPLE)[0]["stringData"]
    assert set(secret) <= known
    for name in known:
        monkeypatch.delenv(name, raising=False)
    for name, value in {**data, **secret}.items():
        assert isinstance(value, str), f"{name}: ConfigMap and Secret values are strings"
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.log_format == "json"
    assert settings.store_url.startswith("mongodb://")


def test_autoscaler_and_disruption_budget_fit_the_deployment():
    deployment = by_kind("Deployment")
    hpa = by_kind("HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": deployment["apiVersion"],
                                     "kind": "Deployment",
                                     "name": deployment["metadata"]["name"]}
    assert hpa["minReplicas"] >= 2 and hpa["maxReplicas"] >= hpa["minReplicas"]
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]
    assert hpa["metrics"][0]["resource"]["target"]["type"] == "Utilization"
    # the HPA owns the replica count; a fixed one must at least lie within its range
    replicas = deployment["spec"].get("replicas")
    assert replicas is None or hpa["minReplicas"] <= replicas <= hpa["maxReplicas"]
    # a drain can always evict one pod
    assert by_kind("PodDisruptionBudget")["spec"]["minAvailable"] < hpa["minReplicas"]
    # the requests are what CPU utilization is measured against
    assert "cpu" in container()["resources"]["requests"]


def test_image_is_the_one_kustomize_retags():
    images = {i["name"] for i in load_all(KUSTOMIZATION)[0].get("images", [])}
    assert container()["image"].split(":")[0] in images
    assert container()["args"] == ["serve"]
