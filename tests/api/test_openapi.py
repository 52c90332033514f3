"""The OpenAPI document: generated from the route table and the pydantic models,
committed without drift, served as committed, and every reference and schema valid."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from svc.amqp.schemas import render
from svc.api.openapi import OPENAPI_FILE, drifted, openapi
from svc.api.routes import PREFIX, ROUTES
from svc.cli.schemas import register

COMMITTED = Path(__file__).resolve().parents[2] / "http_schemas" / OPENAPI_FILE


def test_committed_openapi_matches_the_models():
    assert not drifted(COMMITTED), (
        "http_schemas/openapi.json is out of date: run `svc schemas` and commit the result")


def test_cli_writes_then_checks_beside_out(tmp_path):
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    runner = CliRunner()
    out = tmp_path / "amqp"
    assert runner.invoke(app, ["schemas", "--out", str(out)]).exit_code == 0
    written = tmp_path / "http_schemas" / OPENAPI_FILE
    assert written.read_bytes() == COMMITTED.read_bytes()
    assert runner.invoke(app, ["schemas", "--out", str(out), "--check"]).exit_code == 0
    written.write_text("{}\n")
    checked = runner.invoke(app, ["schemas", "--out", str(out), "--check"])
    assert checked.exit_code == 1 and "openapi.json" in checked.output
    chosen = tmp_path / "elsewhere.json"
    assert runner.invoke(app, ["schemas", "--out", str(out), "--openapi",
                               str(chosen)]).exit_code == 0
    assert chosen.read_bytes() == COMMITTED.read_bytes()


def test_every_route_is_documented_with_its_schemas():
    document = json.loads(COMMITTED.read_text())
    assert document["openapi"] == "3.1.0"
    for route in ROUTES:
        operation = document["paths"][PREFIX + route.path][route.method.lower()]
        assert operation["operationId"] == route.operation_id
        assert set(operation["responses"]) >= {"200", "401", "404", "503"}
        assert ("requestBody" in operation) == (route.body is not None)
    manual = document["paths"][PREFIX + "/services/manual"]["post"]["requestBody"]
    assert manual["required"] is True
    body = document["components"]["schemas"]["ManualSetBody"]
    assert body["additionalProperties"] is False and body["required"] == ["quantities"]
    item = body["properties"]["quantities"]["additionalProperties"]["additionalProperties"]
    assert item == {"maximum": 1_000_000_000, "minimum": 0, "type": "integer"}  # the RPC's
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for path in ("/metrics", "/healthz", "/readyz", "/openapi.json"):
        assert document["paths"][path]["get"]["security"] == []


def test_every_reference_resolves():
    document = openapi()

    def refs(node):
        if isinstance(node, dict):
            yield from ([node["$ref"]] if isinstance(node.get("$ref"), str) else [])
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    found = list(refs(document))
    assert len(found) > 50
    for ref in found:
        node = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]


async def test_served_as_committed(api):
    async with api.session.get(api.base + "/openapi.json") as response:
        assert response.status == 200
        assert await response.read() == COMMITTED.read_bytes() == render(openapi())


def test_every_link_names_an_operation_and_its_parameters():
    document = openapi()
    operations = {op["operationId"]: op for path in document["paths"].values()
                  for op in path.values() if "operationId" in op}
    parameters = document["components"]["parameters"]
    links = [link for op in operations.values()
             for link in op["responses"]["200"].get("links", {}).values()]
    assert len(links) >= 8
    for link in links:
        target = operations[link["operationId"]]
        accepted = {f"{p['in']}.{p['name']}" for p in (
            parameters[ref["$ref"].rsplit("/", 1)[1]] if "$ref" in ref else ref
            for ref in target["parameters"])}
        assert set(link["parameters"]) <= accepted, (link, accepted)
