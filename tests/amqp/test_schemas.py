"""The committed ``amqp_schemas/``: no drift from the models, a valid AsyncAPI
document, and schemas that agree with what svc really reads and sends. No broker needed."""

from __future__ import annotations

import datetime
import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from svc.amqp.kazoo_notices import doc_change
from svc.amqp.publisher import Publisher
from svc.amqp.rpc import answer
from svc.amqp.schemas import drift, generate, write
from svc.bookkeepers.abc import Answer, BookkeeperAdapter
from svc.cli.schemas import register
from svc.delivery_actions import delivery_actions
from svc.handlers import HANDLERS, Handler, editable_handler, sync_handler
from svc.ingest.notices import Poison, document_change, read_notice
from svc.jsonio import dumps
from svc.models.replies import REPLIES, ReplyFields
from svc.models.requests import REQUESTS
from svc.outbox import OutboxRelay
from svc.store import Repository
from svc.sync.loop import SyncLoop

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "amqp_schemas"
MASTER, ACCOUNT = "1" * 32, "2" * 32
PLAN = {"name": "Gold", "plan": {"devices": {"_all": {"rate": 2.5, "activation_charge": 5}},
                                 "users": {"user": {"rate": 3}}}}


@cache
def generated() -> dict[str, dict[str, Any]]:
    return generate()


@cache
def validator(message: str) -> Draft202012Validator:
    schema = generated()[f"{message}.schema.json"]
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def assert_valid(message: str, body: dict[str, Any]) -> None:
    wire = json.loads(dumps(body))  # as it travels: Decimal money becomes a JSON number
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator(message).iter_errors(wire)]
    assert not errors, f"{message} does not match its schema: {errors}"


def request(name: str, **fields: Any) -> dict[str, Any]:
    return {"Event-Category": "services", "Event-Name": name, "App-Name": "test",
            "App-Version": "1", "Msg-ID": uuid.uuid4().hex, "Server-ID": "test-replies",
            **fields}


# one real example of every request, in an order that makes each of them succeed
SCENARIO = [
    request("plan_put_req", **{"Account-ID": MASTER, "Plan": {"id": "gold", "doc": PLAN}}),
    request("plan_get_req", **{"Account-ID": MASTER, "Plan-ID": "gold"}),
    request("available_plans_req", **{"Account-ID": ACCOUNT}),
    request("default_plan_set_req", **{"Account-ID": MASTER, "Plan-ID": "gold"}),
    request("default_plan_get_req", **{"Account-ID": MASTER}),
    request("bookkeeper_set_req", **{"Account-ID": MASTER,
                                     "Bookkeeper": {"id": "books", "type": "local"}}),
    request("assign_plan_req", **{"Account-ID": ACCOUNT, "Plan-ID": "gold", "Dry-Run": True}),
    request("assign_plan_req", **{"Account-ID": ACCOUNT, "Plan-ID": "gold",
                                  "Overrides": {"users": {"user": {"rate": 4}}}}),
    request("quote_req", **{"Account-ID": ACCOUNT,
                            "Changes": {"devices": {"sip_device": 3}}}),
    request("quote_req", **{"Quote-Request": json.loads(
        (ROOT / "examples" / "quote.json").read_text())}),
    request("manual_set_req", **{"Account-ID": ACCOUNT, "Quantities": {"users": {"user": 2}}}),
    request("overrides_set_req", **{"Account-ID": ACCOUNT, "Overrides": {}}),
    request("reconcile_req", **{"Account-ID": ACCOUNT}),
    request("sync_req", **{"Account-ID": ACCOUNT}),  # fails: the bookkeeper is down
    request("deliveries_req", **{"Account-ID": ACCOUNT, "Page-Size": 10}),
    request("delivery_retry_req", **{"Account-ID": ACCOUNT,
                                     "Delivery-ID": f"{ACCOUNT}|books|local|{MASTER}|1"}),
    request("delivery_abandon_req", **{"Account-ID": ACCOUNT, "Reason": "billed by hand",
                                       "Delivery-ID": f"{ACCOUNT}|books|local|{MASTER}|1"}),
    request("manual_set_req", **{"Account-ID": ACCOUNT, "Quantities": {"users": {"user": 3}}}),
    request("sync_req", **{"Account-ID": ACCOUNT}),  # fails a third time
    request("bookkeeper_set_req", **{"Account-ID": MASTER,  # the failing one retires
                                     "Bookkeeper": {"id": "books2", "type": "local"}}),
    request("delivery_reroute_req", **{"Account-ID": ACCOUNT,
                                       "Delivery-ID": f"{ACCOUNT}|books|local|{MASTER}|4"}),
    request("standing_req", **{"Account-ID": ACCOUNT}),
    request("ledger_req", **{"Account-ID": ACCOUNT, "From": 63_902_908_800,
                             "To": "2030-01-01T00:00:00Z"}),
    request("audit_req", **{"Account-ID": ACCOUNT, "Since": "2026-01-01T00:00:00Z",
                            "Page-Size": 100}),
    request("audit_entry_req", **{"Account-ID": ACCOUNT, "Entry-ID": f"{ACCOUNT}|"
                                  f"quantities_daily|{datetime.datetime.now(datetime.UTC).date()}"}),
    request("audit_summary_req", **{"Account-ID": ACCOUNT, "Since": "2026-01-01T00:00:00Z"}),
    request("audit_summary_req", **{"Account-ID": ACCOUNT, "Item": "sip_device"}),
    request("editable_req", **{"Account-ID": ACCOUNT}),
    request("editable_req"),
    request("summary_req", **{"Account-ID": ACCOUNT}),
    request("reseller_promote_req", **{"Account-ID": ACCOUNT}),
    request("reseller_get_req", **{"Account-ID": ACCOUNT}),
    request("reseller_demote_req", **{"Account-ID": ACCOUNT}),
    request("plans_change_req", **{"Account-ID": ACCOUNT, "Add": [{"id": "gold"}],
                                   "Overrides": {"users": {"user": {"rate": 2}}},
                                   "Merge": True}),
    request("remove_plan_req", **{"Account-ID": ACCOUNT, "Plan-ID": "gold"}),
    request("plan_delete_req", **{"Account-ID": MASTER, "Plan-ID": "gold"}),
]


# --- the committed files ------------------------------------------------------------------


def test_committed_schemas_match_the_models():
    drifted = drift(SCHEMAS)
    assert not drifted, (f"amqp_schemas/ is out of date ({', '.join(drifted)}): "
                         "run `svc schemas` and commit the result")


def test_cli_writes_then_checks(tmp_path):
    app = typer.Typer()
    app.callback()(lambda: None)  # a group, as in svc: `schemas` stays a subcommand
    register(app)
    runner = CliRunner()
    out = tmp_path / "schemas"
    assert runner.invoke(app, ["schemas", "--out", str(out)]).exit_code == 0
    assert runner.invoke(app, ["schemas", "--out", str(out), "--check"]).exit_code == 0
    (out / "stale.schema.json").write_text("{}\n")
    (out / "quote_req.schema.json").write_text("{}\n")
    (out / "asyncapi.json").unlink()
    checked = runner.invoke(app, ["schemas", "--out", str(out), "--check"])
    assert checked.exit_code == 1
    assert drift(out) == ["asyncapi.json", "quote_req.schema.json", "stale.schema.json"]
    assert "svc schemas" in checked.output
    write(out)
    assert drift(out) == [] and not (out / "stale.schema.json").exists()


def test_asyncapi_document_and_every_ref_resolves():
    documents = {path.name: json.loads(path.read_text()) for path in SCHEMAS.glob("*.json")}
    assert documents["asyncapi.json"]["asyncapi"] == "3.0.0"
    refs = 0
    for name, document in documents.items():
        for ref in refs_in(document):
            target, _, pointer = ref.partition("#")
            assert resolve(documents[target] if target else document, pointer) is not None, (
                f"{name}: {ref} does not resolve")
            refs += 1
    assert refs > 100
    messages = documents["asyncapi.json"]["components"]["messages"]
    assert {path.removesuffix(".schema.json") for path in documents} - {"asyncapi.json"} <= (
        messages.keys())


def refs_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in refs_in(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs_in(value)]
    return []


def resolve(document: Any, pointer: str) -> Any:
    node = document
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def test_money_is_a_number():
    schema = generated()["quote_resp.schema.json"]

    def follow(node: dict[str, Any]) -> dict[str, Any]:
        return resolve(schema, node["$ref"].removeprefix("#")) if "$ref" in node else node

    kinds = follow(schema["properties"]["Quote"])["properties"]["invoices"]["items"]["anyOf"]
    assert len(kinds) == 2  # with its plan (by account), without (a quote document)
    for invoice in map(follow, kinds):
        item = follow(invoice["properties"]["items"]["items"])
        assert item["properties"]["total"]["type"] == "number"
        assert item["properties"]["rate"]["type"] == "number"
        assert follow(invoice["properties"]["summary"])["properties"]["recurring"]["type"] == (
            "number")


# --- requests ------------------------------------------------------------------------------


def test_every_request_has_an_example():
    assert {r["Event-Name"] for r in SCENARIO} == {name for _, name in REQUESTS}


@pytest.mark.parametrize("example", SCENARIO, ids=lambda r: r["Event-Name"])
def test_request_schema_agrees_with_the_model(example):
    """The example passes both; dropping any field the model needs fails both."""
    name = example["Event-Name"]
    model = next(m for (_, n), m in REQUESTS.items() if n == name)
    model.model_validate(example)
    assert_valid(name, example)
    needed = [field for field in example if not accepts(model, without(example, field))]
    assert "Msg-ID" in needed
    for field in needed:
        assert not validator(name).is_valid(without(example, field)), f"{name} without {field}"


def test_quote_request_excludes_the_account_form():
    both = request("quote_req", **{"Quote-Request": {}, "Account-ID": ACCOUNT})
    assert not validator("quote_req").is_valid(both)
    assert validator("quote_req").is_valid(request("quote_req", **{"Quote-Request": {}}))


def without(message: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != field}


def accepts(model: Any, message: dict[str, Any]) -> bool:
    try:
        model.model_validate(message)
    except ValueError:
        return False
    return True


# --- replies and events, as svc really sends them ----------------------------------------


class Capture:
    """An exchange that keeps what is published on it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    async def publish(self, message: Any, routing_key: str) -> None:
        self.bodies.append(json.loads(message.body))


class FailsThriceThenDelinquent(BookkeeperAdapter):
    """The first deliveries fail, so that ``delivery_retry_req``, ``delivery_abandon_req``
    and ``delivery_reroute_req`` each have one to settle."""

    def __init__(self) -> None:
        self.failures = 3

    async def deliver(self, delivery: Any) -> Answer:
        if self.failures:
            self.failures -= 1
            return Answer("failed", "unreachable", "the bookkeeper is down")
        return Answer("delinquent", "card_declined", "the card was declined")


async def apply(repo: Repository, notice: dict[str, Any]) -> None:
    assert_valid("doc_change", notice)
    await repo.apply_doc_change(document_change(read_notice(notice), ()))


def answers_with_its_model(name: str, handler: Handler) -> Handler:
    """The handler, checked to build the reply model its request answers with."""
    async def checked(repo: Repository, request: Any) -> ReplyFields:
        reply = await handler(repo, request)
        assert type(reply) is REPLIES[name], f"{name} answered with {type(reply).__name__}"
        return reply

    return checked


async def test_replies_and_events_match_their_schemas(repo):
    exchange = Capture()
    publisher = Publisher({"services": exchange}, "services@test")  # type: ignore[arg-type]
    relay = OutboxRelay(repo.store, publisher.event)  # the events as the service relays them
    bookkeeper = FailsThriceThenDelinquent()
    sync = SyncLoop(repo, lambda _: bookkeeper, owner="test",
                    batch=10, lease_s=60, retry_base_s=1, retry_max_s=10,
                    delinquent_recheck_s=3600)
    handlers = {request: answers_with_its_model(request[1], handler) for request, handler in {
        **HANDLERS, ("sync", "sync_req"): sync_handler(sync.sync_now),
        ("plans", "editable_req"): editable_handler(("us_did", "tollfree")),
        **delivery_actions(sync)}.items()}
    for account_id, tree in ((MASTER, []), (ACCOUNT, [MASTER])):
        doc = {"_id": account_id, "pvt_type": "account", "pvt_tree": tree, "name": "a"}
        await apply(repo, doc_change(doc, account_id)[1])
    await apply(repo, doc_change(
        {"_id": "d1", "pvt_type": "device", "device_type": "sip_device"}, ACCOUNT)[1])

    for example in SCENARIO:
        result = await answer(handlers, repo, dumps(example), "services@test", 1 << 20)
        reply = result.message
        assert reply.get("Status") in ("success", "good_standing") or (
            reply["Event-Name"] == "standing_resp" and reply["Reason"] == "delinquent"), reply
        assert_valid(reply["Event-Name"], reply)

    invalid = await answer(handlers, repo, dumps(without(SCENARIO[1], "Plan-ID")),
                           "services@test", 1 << 20)
    assert invalid.message["Event-Category"] == "error"
    assert_valid("error", invalid.message)
    unknown = await answer(handlers, repo, dumps(request("plan_get_req", **{
        "Account-ID": MASTER, "Plan-ID": "nope"})), "services@test", 1 << 20)
    assert unknown.message["Status"] == "error"
    assert_valid("plan_get_resp", unknown.message)

    while await relay.relay_once():
        pass
    for body in exchange.bodies:
        assert_valid(body["Event-Name"], body)
    assert {body["Event-Name"] for body in exchange.bodies} == {
        "bookkeeper_sync", "status_change", "plans_change", "quantities_change"}


def test_doc_change_schema_agrees_with_the_consumer():
    device = {"_id": "d1", "pvt_type": "device", "device_type": "sip_device"}
    edited = doc_change(device, ACCOUNT)[1]
    deleted = doc_change(device, ACCOUNT, rev=None, event="doc_deleted", with_doc=False)[1]
    without_doc = doc_change(device, ACCOUNT, with_doc=False)[1]  # KAZOO's own form
    for accepted in (edited, deleted, without_doc):
        read_notice(accepted)
        assert_valid("doc_change", accepted)
    assert read_notice(without_doc).needs_document
    without_rev = {key: value for key, value in edited.items() if key != "Rev"}
    with pytest.raises(Poison, match="Rev"):
        read_notice(without_rev)
    assert not validator("doc_change").is_valid(without_rev)
