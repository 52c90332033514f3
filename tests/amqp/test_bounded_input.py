"""Bounded input (SPEC §14): numbers beyond sensible bounds are refused with their path before
any arithmetic, and a body too large is refused before it is parsed; the caller still gets
its reply, and the service keeps answering."""

from __future__ import annotations

from decimal import Decimal

import aio_pika
import pytest
from hypothesis import given
from hypothesis import strategies as st

from svc.jsonio import MAX_DIGITS, NumberOutOfBounds, dumps, in_bounds, loads

PLAN = {"plan": {"devices": {"_all": {"rate": 1}}}}


def quote_of(item: dict) -> dict:
    return {"Quote-Request": {"plans": [{"id": "p1", "vendor_id": "r1", "doc": {
        "plan": {"devices": {"_all": item}}}}],
        "quantities": {"account": {"devices": {"sip_device": 3}}}}}


@pytest.mark.parametrize(("body", "path"), [
    (b'{"minimum": 1e200000}', "$.minimum"),
    (b'{"a": [1, {"rate": 1.0000000000000000000000000000001}]}', "$.a[1].rate"),
    (b'{"a": -1e31}', "$.a"),
])
def test_parsing_refuses_numbers_out_of_bounds_with_their_path(body, path):
    with pytest.raises(NumberOutOfBounds) as refused:
        loads(body)
    assert refused.value.path == path


def test_numbers_in_bounds_are_exact():
    assert loads(b'{"rate": 24.95, "big": 1e30, "small": 1.5e-30}')["rate"] == \
        loads(b'{"rate": 24.950}')["rate"]


@given(st.from_regex(r"-?(0|[1-9][0-9]{0,28})\.[0-9]{1,29}", fullmatch=True).filter(
    lambda text: len(text) <= MAX_DIGITS))
def test_a_short_number_without_exponent_is_always_in_bounds(text):
    """What lets the parser take such a number as it is, without checking it."""
    assert in_bounds(Decimal(text))
    assert loads(f'{{"n": {text}}}')["n"] == Decimal(text)


async def kazoo_rpc(channel, body: bytes) -> dict:
    """Published raw, answered Kazoo's way: on ``targeted`` to the ``Server-ID`` in it."""
    queue = await channel.declare_queue(exclusive=True)
    targeted = await channel.declare_exchange("targeted", aio_pika.ExchangeType.DIRECT,
                                              durable=False, auto_delete=False)
    await queue.bind(targeted, routing_key=queue.name)
    services = await channel.declare_exchange("services", aio_pika.ExchangeType.TOPIC,
                                              durable=False, auto_delete=False)
    await services.publish(aio_pika.Message(body.replace(b"QUEUE", queue.name.encode())),
                           routing_key="services.quote.request")
    async with queue.iterator(timeout=5) as replies:
        async for message in replies:
            return loads(message.body)
    raise AssertionError("no reply")


QUOTE = (b'{"Event-Category": "services", "Event-Name": "quote_req", "App-Name": "t", '
         b'"App-Version": "1", "Msg-ID": "big-1", "Server-ID": "QUEUE", "Quote-Request": '
         b'{"plans": [{"id": "p1", "vendor_id": "r1", "doc": {"plan": {"devices": '
         b'{"_all": {"rate": 1, "minimum": MINIMUM}}}}}]}}')


async def test_a_huge_exponent_in_a_quote_is_refused_with_its_path(service, channel):
    assert (await kazoo_rpc(channel, QUOTE.replace(b"MINIMUM", b"1")))["Status"] == "success"
    reply = await kazoo_rpc(channel, QUOTE.replace(b"MINIMUM", b"1e200000"))
    assert reply["Msg-ID"] == "big-1" and reply["Event-Category"] == "error"
    assert "$.Quote-Request.plans[0].doc.plan.devices._all.minimum" in reply["Error-Message"]


async def test_a_body_too_large_is_answered_without_being_parsed(service, channel):
    huge = QUOTE.replace(b"MINIMUM", b"1").replace(b'"rate": 1', b'"rate": 1, "pad": "'
                                                   + b"x" * 70_000 + b'"')
    reply = await kazoo_rpc(channel, huge)
    assert reply["Msg-ID"] == "big-1" and "exceeds SVC_MAX_MESSAGE_BYTES" in \
        reply["Error-Message"]


async def test_an_integer_out_of_bounds_is_refused_where_it_is_used(service, channel):
    reply = await kazoo_rpc(channel, QUOTE.replace(b"MINIMUM", b"1" + b"0" * 40))
    assert reply["Status"] == "error" and reply["Reason"] == "plan_invalid", reply
    assert [detail["path"] for detail in reply["Details"]] == [
        "$.plans[0].doc.plan.devices._all.minimum"], reply["Details"]


async def test_a_numeric_string_out_of_bounds_is_plan_invalid(client):
    reply = await client.call("quote", quote_of({"rate": "1" + "0" * 40}), timeout=5)
    assert reply["Status"] == "error" and reply["Reason"] == "plan_invalid", reply
    assert any("rate" in detail["path"] for detail in reply["Details"]), reply["Details"]


async def test_quantities_above_a_billion_are_refused(client):
    reply = await client.call("quote", {"Quote-Request": {
        "plans": [{"id": "p1", "vendor_id": "r1", "doc": PLAN}],
        "quantities": {"account": {"devices": {"sip_device": 10**9 + 1}}}}}, timeout=5)
    assert reply["Event-Category"] == "error", reply
    assert "sip_device" in reply["Error-Message"] and "1000000000" in reply["Error-Message"]


def test_integers_beyond_64_bits_are_written_as_they_were_read():
    body = b'{"overrides": {"devices": {"_all": {"minimum": 100000000000000000000}}}}'
    assert dumps(loads(body)) == body.replace(b" ", b"")
