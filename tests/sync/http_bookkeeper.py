"""A webhook bookkeeper in its own process, for the sync tests: ``python http_bookkeeper.py
PORT SECRET``. ``POST /mode`` with {"mode": "ok"|"delinquent"|"error"|"hang"} changes how it
answers; ``GET /received`` lists what it was sent (with whether each signature verified,
as a receiver does it: ``t=<unix s>,v1=<hex HMAC-SHA256 of "<t>.<body>">``, within 5 minutes)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import time

from aiohttp import web

PORT, SECRETS = int(sys.argv[1]), sys.argv[2].split(",")  # any of them, while rotating
TOLERANCE_S = 300
state = {"mode": "ok", "received": []}


def verified(header: str, body: bytes) -> bool:
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if not fields.get("t", "").isdigit() or abs(time.time() - int(fields["t"])) > TOLERANCE_S:
        return False
    signed = fields["t"].encode() + b"." + body
    return any(hmac.compare_digest(fields.get("v1", ""), hmac.new(
        secret.encode(), signed, hashlib.sha256).hexdigest()) for secret in SECRETS)


async def invoice(request: web.Request) -> web.Response:
    body = await request.read()
    state["received"].append({"mode": state["mode"], "body": json.loads(body),
                              "signature": request.headers.get("X-Svc-Signature", ""),
                              "signed": verified(request.headers.get("X-Svc-Signature", ""),
                                                 body)})
    mode = state["mode"]
    if mode == "hang":
        await asyncio.sleep(3600)
    if mode == "delinquent":
        return web.json_response({"reason": "card_declined", "message": "card expired"},
                                 status=402)
    if mode == "error":
        return web.Response(status=500, text="bookkeeper exploded")
    return web.json_response({"ok": True})


async def mode(request: web.Request) -> web.Response:
    state["mode"] = (await request.json())["mode"]
    return web.json_response({"mode": state["mode"]})


async def received(request: web.Request) -> web.Response:
    return web.json_response(state["received"])


app = web.Application()
app.add_routes([web.post("/invoice", invoice), web.post("/mode", mode),
                web.get("/received", received)])
print("ready", flush=True)
web.run_app(app, host="127.0.0.1", port=PORT, print=None)
