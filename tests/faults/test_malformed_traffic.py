"""1,000 malformed messages mixed into valid traffic, on both input paths of a running
``svc serve``: RPC requests on ``services`` and doc-change notices
on ``configuration``.

Every request is answered exactly once (the generic error reply for the malformed ones), or
dead-lettered when it has no reply address; every bad notice is dead-lettered exactly once
with its reason in ``x-svc-dead-letter-reason``; the valid notices give exact quantities,
the valid requests their exact answers; and the service still answers afterwards.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import pytest
from faultkit import (
    check_store,
    drain_dead_letters,
    normal,
    queue_state,
    wait_for,
    wait_until_consuming,
    workload,
)

from svc.amqp import topology
from svc.amqp.kazoo_notices import doc_change
from svc.amqp.publisher import DEAD_LETTER_REASON
from svc.jsonio import dumps, loads

VALID_NOTICES = 2_000
VALID_QUOTES = 300
UNKNOWN_ACCOUNT_SUMMARIES = 50
BAD_REQUESTS = 500
BAD_NOTICES = 500
MAX_BYTES = 16 * 1024  # SVC_MAX_MESSAGE_BYTES of the service under test
DEEP = 2_000  # nesting deeper than any JSON parser's recursion limit
DEEPISH = 300  # parses, but deeper than the JSON encoder writes back


def envelope(name: str, token: str, **fields: Any) -> dict[str, Any]:
    return {"Event-Category": "services", "Event-Name": name, "App-Name": "fault-test",
            "App-Version": "1", "Msg-ID": token, "Node": "fault@test", **fields}


# --- the malformed requests: (body, the reply it deserves) --------------------------------

def bad_requests(token: str, n: int) -> tuple[bytes, tuple[str, str]]:
    """The n-th malformed request and its expected reply: ("invalid", what the generic error
    reply's Error-Message says) or ("domain_error", its Reason)."""
    summary = envelope("summary_req", token, **{"Account-ID": "a"})

    def quote(rate: Any, tiers: Any, quantity: Any) -> dict[str, Any]:
        item = {"rate": rate} if tiers is None else {"rates": tiers}
        return envelope("quote_req", token, **{"Quote-Request": {
            "plans": [{"id": "p", "doc": {"plan": {"d": {"x": item}}}}],
            "quantities": {"account": {"d": {"x": quantity}}}}})

    kinds: list[tuple[Any, tuple[str, str]]] = [
        (f'{{"Event-Name": "summary_req", {token}'.encode(), ("invalid", "not valid JSON")),
        ([token], ("invalid", "must be a JSON object")),
        (b"[" * DEEP + dumps(token) + b"]" * DEEP, ("invalid", "not valid JSON")),
        (b'{"Msg-ID": "\x80' + token.encode() + b'"}', ("invalid", "not valid JSON")),
        ({**summary, "Account-ID": 5},
         ("invalid", "Account-ID: Input should be a valid string")),
        (json.dumps({**summary, "Account-ID": _nested(DEEPISH)}).encode(),  # orjson won't
         ("invalid", "Account-ID: Input should be a valid string")),
        (_without(summary, "Account-ID"), ("invalid", "Account-ID: Field required")),
        (_without(summary, "App-Name"), ("invalid", "App-Name: Field required")),
        (_without(summary, "Msg-ID"), ("invalid", "Msg-ID: Field required")),
        ({**summary, "Event-Name": "frobnicate_req"}, ("invalid", "unknown request")),
        (_without(summary, "Event-Name"), ("invalid", "unknown request")),
        ({**summary, "Event-Category": "configuration"}, ("invalid", "Event-Category")),
        ({**summary, "Pad": "x" * MAX_BYTES}, ("invalid", "exceeds SVC_MAX_MESSAGE_BYTES")),
        (quote(1, None, -1), ("invalid", "greater than or equal to 0")),
        (quote(1, None, 2.5), ("invalid", "Quote-Request.quantities.account.d.x")),
        (quote("abc", None, 1), ("domain_error", "plan_invalid")),
        (quote(None, {"abc": 1}, 1), ("domain_error", "plan_invalid")),
    ]
    content, expectation = kinds[n % len(kinds)]
    return content if isinstance(content, bytes) else dumps(content), expectation


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


# --- the bad notices: (routing key, body, what the dead-letter reason must say) ------------

def bad_notices(rnd: random.Random, accounts: list[str], n: int) -> tuple[str, bytes, str]:
    """The n-th bad notice, about a real account (so that applying it would show in the
    counts): (routing key, body, what the dead-letter reason must say)."""
    account = rnd.choice(accounts)
    token = f"bad{n}"
    device = {"_id": token, "pvt_type": "device", "device_type": "fax"}
    key, body = doc_change(device, account, 1, event="doc_created")
    tree_key, tree_body = doc_change({"_id": account, "pvt_type": "account",
                                      "pvt_tree": token}, account, 99)
    kinds: list[tuple[str, Any, str]] = [
        (key, f'{{"Event-Name": "doc_created", {token}'.encode(), ""),
        (key, [token, body], "JSON object"),
        (key, b"[" * DEEP + dumps(token) + b"]" * DEEP, "recursion"),
        (key, b'{"ID": "\x80' + token.encode() + b'"}', ""),
        (key, {**body, "Event-Name": "doc_frobbed"}, "Event-Name"),
        (key, _without(body, "Event-Name"), "Event-Name"),
        (key, _without(body, "ID"), "ID: required"),
        (key, {**body, "ID": 5}, "ID: required"),
        (key, _without(body, "Rev"), "Rev:"),
        (key, {**body, "Rev": 5}, "Rev:"),
        (key, {**body, "Rev": "oops"}, "Rev:"),
        (key, _without(body, "Doc"), "no_document_source"),  # this svc has no SVC_COUCH_URL
        (key, {**body, "Doc": [device]}, "Doc: must be an object"),
        (key, _without(_without(body, "Account-ID"), "Database"), "Account-ID: required"),
        (key, {**_without(body, "Database"), "Account-ID": 5}, "Account-ID: required"),
        (key, {**body, "Type": {"pvt_type": "device"}}, "Type: must be a string"),
        (key, {**body, "Doc": {**device, "Pad": "x" * MAX_BYTES}},
         "exceeds SVC_MAX_MESSAGE_BYTES"),
        (tree_key, tree_body, "pvt_tree: must be a list"),
    ]
    routing_key, content, reason = kinds[n % len(kinds)]
    return routing_key, content if isinstance(content, bytes) else dumps(content), reason


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


# --- the traffic -----------------------------------------------------------------------------

@dataclass
class Traffic:
    """What is published, and what each message must lead to."""

    messages: list[tuple[str, str, aio_pika.Message]] = field(default_factory=list)
    replies: dict[str, tuple[str, Any]] = field(default_factory=dict)  # corr id -> expectation
    dead: dict[bytes, str] = field(default_factory=dict)  # body -> reason fragment


def traffic(work, reply_queue: str, seed: int) -> Traffic:
    rnd = random.Random(seed)
    out = Traffic()
    accounts = list(work.trees)
    requests: list[tuple[str, aio_pika.Message]] = []

    def request(body: bytes, token: str, routing_key: str, kazoo_style: bool,
                reply_address: bool = True) -> None:
        properties: dict[str, Any] = {"content_type": "application/json",
                                      "correlation_id": token}
        if reply_address and not kazoo_style:
            properties["reply_to"] = reply_queue
        requests.append((routing_key, aio_pika.Message(body, **properties)))

    for n in range(VALID_QUOTES):  # half Kazoo-style (Server-ID), half plain (reply_to)
        token = f"quote-{n}-{uuid.uuid4().hex[:8]}"
        body = envelope("quote_req", token, **{"Quote-Request": {
            "plans": [{"id": "p", "doc": {"plan": {"d": {"x": {"rate": 1}}}}}],
            "quantities": {"account": {"d": {"x": n}}}}})
        if n % 2 == 0:
            body["Server-ID"] = reply_queue
        request(dumps(body), token, "services.quote.request", kazoo_style=n % 2 == 0)
        out.replies[token] = ("quote", n)
    for n in range(UNKNOWN_ACCOUNT_SUMMARIES):
        token = f"unknown-{n}-{uuid.uuid4().hex[:8]}"
        body = envelope("summary_req", token, **{"Account-ID": uuid.uuid4().hex})
        request(dumps(body), token, "services.summary.request", kazoo_style=False)
        out.replies[token] = ("domain_error", "account_not_found")
    for n in range(BAD_REQUESTS):
        token = f"badreq-{n}-{uuid.uuid4().hex[:8]}"
        if n % 25 == 24:  # no Server-ID, no reply_to: nowhere to answer
            body = dumps(envelope("summary_req", token, **{"Account-ID": "a"}))
            request(body, token, "services.summary.request", kazoo_style=True,
                    reply_address=False)
            out.dead[body] = "no reply address"
            continue
        body, expectation = bad_requests(token, n)
        request(body, token, "services.summary.request", kazoo_style=False)
        out.replies[token] = expectation

    bad = []
    for n in range(BAD_NOTICES):
        routing_key, body, reason = bad_notices(rnd, accounts, n)
        bad.append((routing_key, body))
        out.dead[body] = reason
    extras = [("services", key, message) for key, message in requests] + [
        ("configuration", key, aio_pika.Message(body, content_type="application/json"))
        for key, body in bad]
    rnd.shuffle(extras)
    valid = [("configuration", n.routing_key,
              aio_pika.Message(n.body, content_type="application/json")) for n in work.notices]
    # the valid notices keep their order; the rest is scattered among them
    slots = ["valid"] * len(valid) + ["extra"] * len(extras)
    rnd.shuffle(slots)
    valid_left, extras_left = iter(valid), iter(extras)
    out.messages = [next(valid_left if slot == "valid" else extras_left) for slot in slots]
    return out


def check_reply(expectation: tuple[str, Any], reply: dict[str, Any]) -> str | None:
    """None when the reply is what the request deserved, else what is wrong."""
    kind, detail = expectation
    if kind == "quote":
        if reply.get("Status") != "success":
            return f"quote failed: {reply}"
        [invoice] = reply["Quote"]["invoices"]
        return None if invoice["summary"]["recurring"] == detail else f"wrong quote {reply}"
    if kind == "domain_error":
        ok = reply.get("Status") == "error" and reply.get("Reason") == detail
        return None if ok else f"expected {detail}: {reply}"
    ok = (reply.get("Event-Category") == "error" and detail in reply.get("Error-Message", ""))
    return None if ok else f"expected an error reply saying {detail!r}: {str(reply)[:300]}"


@pytest.mark.timeout(150)
async def test_malformed_messages_among_valid_traffic(amqp_url, svc_processes, tmp_path):
    work = workload(VALID_NOTICES, seed=3)
    db = tmp_path / "svc.db"
    svc = svc_processes(amqp_url, db, tmp_path / "svc.log", "services@fault-c",
                        max_message_bytes=str(MAX_BYTES))
    svc.start()
    await wait_until_consuming(amqp_url)

    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchanges = await topology.declare_exchanges(channel)
        reply_queue = await channel.declare_queue(exclusive=True)
        await reply_queue.bind(exchanges["targeted"], routing_key=reply_queue.name)
        replies: dict[str, list[dict[str, Any]]] = defaultdict(list)

        async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            replies[message.correlation_id or ""].append(loads(message.body))

        await reply_queue.consume(on_reply, no_ack=True)
        plan = traffic(work, reply_queue.name, seed=3)
        assert len(plan.dead) == BAD_NOTICES + BAD_REQUESTS // 25
        assert len(plan.replies) == VALID_QUOTES + UNKNOWN_ACCOUNT_SUMMARIES + (
            BAD_REQUESTS - BAD_REQUESTS // 25)
        began = time.monotonic()
        async with asyncio.timeout(60):
            for start in range(0, len(plan.messages), 200):
                await asyncio.gather(*(
                    exchanges[exchange].publish(message, routing_key=key, mandatory=True)
                    for exchange, key, message in plan.messages[start:start + 200]))

        async def unanswered() -> list[str]:
            return [token for token in plan.replies if token not in replies]

        async def all_answered() -> bool:
            return not await unanswered()

        try:
            await wait_for(all_answered, 60, "a reply to every request with a reply address",
                           interval=0.1)
        except AssertionError:
            missing = await unanswered()
            raise AssertionError(f"{len(missing)} requests never answered, e.g. "
                                 f"{[(t, plan.replies[t]) for t in missing[:5]]}\n"
                                 f"{svc.tail()}") from None
        dead = await drain_dead_letters(amqp_url, expected=len(plan.dead), timeout=60)

        expected = work.expected()

        async def settled() -> bool:
            return await _quantities(channel, exchanges, reply_queue.name, replies,
                                     work.trees) == expected

        await wait_for(settled, 60, "the valid notices' quantities", interval=0.25)
        elapsed = time.monotonic() - began

        # the service still answers, and nothing was answered twice
        assert await _quantities(channel, exchanges, reply_queue.name, replies,
                                 work.trees) == expected
        wrong = {token: problem for token, expectation in plan.replies.items()
                 if (problem := check_reply(expectation, replies[token][0])) is not None}
        assert not wrong, f"{len(wrong)} wrong replies, e.g. {list(wrong.items())[:3]}"
        twice = {token: len(got) for token, got in replies.items() if len(got) != 1}
        assert not twice, f"answered more than once: {twice}"
        assert (await queue_state(amqp_url, topology.RPC_QUEUE))[0] == 0
    finally:
        await connection.close()

    got = Counter(message.body for message in dead)
    assert got == Counter(list(plan.dead)), (
        f"{len(dead)} dead letters; missing {len(set(plan.dead) - set(got))}, unexpected "
        f"{len(set(got) - set(plan.dead))}, twice {sum(1 for c in got.values() if c > 1)}")
    unexplained = {}
    for message in dead:
        reason = (message.headers or {}).get(DEAD_LETTER_REASON)
        if not isinstance(reason, str) or not reason or plan.dead[message.body] not in reason:
            unexplained[message.body[:80]] = (reason, plan.dead[message.body])
    assert not unexplained, f"dead letters without the right reason: {unexplained}"

    assert svc.terminate() == 0, svc.tail()
    assert (await queue_state(amqp_url, topology.DOC_CHANGES_QUEUE))[0] == 0
    await check_store(db, work)
    print(f"\nmalformed traffic: {BAD_REQUESTS + BAD_NOTICES:,} malformed among "
          f"{VALID_NOTICES:,} notices and {VALID_QUOTES + UNKNOWN_ACCOUNT_SUMMARIES} requests, "
          f"all handled in {elapsed:.1f} s")


async def _quantities(channel, exchanges, reply_queue: str, replies, accounts):
    """Each account's (account, cascade) quantities by ``summary`` requests, Kazoo-style."""
    tokens = {}
    for account_id in accounts:
        token = f"check-{uuid.uuid4().hex}"
        tokens[account_id] = token
        body = envelope("summary_req", token, **{"Account-ID": account_id,
                                                  "Server-ID": reply_queue})
        await exchanges["services"].publish(
            aio_pika.Message(dumps(body), content_type="application/json", correlation_id=token),
            routing_key="services.summary.request")

    async def answered() -> bool:
        return all(token in replies for token in tokens.values())

    await wait_for(answered, 10, "summary replies", interval=0.02)
    found = {}
    for account_id, token in tokens.items():
        [reply] = replies.pop(token)
        assert reply["Status"] == "success", reply
        quantities = reply["Summary"]["quantities"]
        found[account_id] = {"account": normal(quantities["account"]),
                             "cascade": normal(quantities["cascade"])}
    return found
