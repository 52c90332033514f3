"""Rebuild ``servicemonitor-monitoring-v1.json`` (run by hand; the tests only read its output).

Source: the npm package ``@kubernetes-models/prometheus-operator@1.6.3``, file
``monitoring.coreos.com/v1/ServiceMonitor.js``, whose ``const schema = {...}`` is the JSON Schema
that kubernetes-models' ``crd-generate`` made from the upstream CRD
``example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml`` (openAPIV3Schema).
Later versions of that package ship only compiled validators, no schema; no PyPI, npm or
Debian package we can reach carries a newer ServiceMonitor schema as data.

    npm pack @kubernetes-models/prometheus-operator@1.6.3 && tar xzf kubernetes-models-*.tgz
    .venv/bin/python tests/deploy/schemas/vendor_servicemonitor.py \\
        package/monitoring.coreos.com/v1/ServiceMonitor.js

Transformations, nothing else:
1. ``metadata`` points at ``io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`` of the Kubernetes
   1.30 schema that kubernetes-validate ships (copied under ``$defs`` with what it references),
   instead of kubernetes-models' own copy of it.
2. Strict, like kubernetes-validate's ``-strict`` schemas and ``kubectl --validate=strict``: every
   object schema that lists ``properties`` and says nothing about ``additionalProperties`` gets
   ``additionalProperties: false``, so a misspelt field fails instead of being pruned silently.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate

HERE = Path(__file__).resolve().parent
OUT = HERE / "servicemonitor-monitoring-v1.json"
K8S_DEFS = (Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
            / "v1.30.0-local-strict" / "_definitions.json")
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
K8S_REF = re.compile(r"^(?:/api/_definitions\.json)?#/\$defs/(.+)$")


def extract(js_source: str) -> dict[str, Any]:
    start = js_source.index("const schema = ") + len("const schema = ")
    end = js_source.index("\n};\n", start) + 2
    return json.loads(js_source[start:end])


def strict(node: Any) -> Any:
    if isinstance(node, dict):
        node = {key: strict(value) for key, value in node.items()}
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [strict(value) for value in node]
    return node


def k8s_defs(root: str) -> dict[str, Any]:
    """``root`` and everything it references, with references made local."""
    source = json.loads(K8S_DEFS.read_text())["$defs"]
    out: dict[str, Any] = {}
    pending = [root]

    def relink(node: Any) -> Any:
        if isinstance(node, dict):
            node = {key: relink(value) for key, value in node.items()}
            if "$ref" in node:
                match = K8S_REF.match(node["$ref"])
                assert match, node["$ref"]
                pending.append(match.group(1))
                node["$ref"] = f"#/$defs/{match.group(1)}"
            return node
        if isinstance(node, list):
            return [relink(value) for value in node]
        return node

    while pending:
        name = pending.pop()
        if name not in out:
            out[name] = relink(source[name])
    return dict(sorted(out.items()))


def main(js_path: str) -> None:
    schema = strict(extract(Path(js_path).read_text()))
    schema["properties"]["metadata"] = {"$ref": f"#/$defs/{OBJECT_META}"}
    vendored = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://svc.invalid/schemas/servicemonitor-monitoring-v1.json",
        "$comment": (
            "ServiceMonitor (monitoring.coreos.com/v1). Vendored from the npm package "
            "@kubernetes-models/prometheus-operator@1.6.3 (monitoring.coreos.com/v1/"
            "ServiceMonitor.js, generated from prometheus-operator's CRD), made strict "
            "(additionalProperties: false where unspecified) and with metadata from the "
            "Kubernetes 1.30 schema of kubernetes-validate. Rebuilt by vendor_servicemonitor.py; "
            "see README.md beside this file."
        ),
        **schema,
        "$defs": k8s_defs(OBJECT_META),
    }
    OUT.write_text(json.dumps(vendored, indent=2, sort_keys=False) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
