"""A webhook bookkeeper that de-duplicates by idempotency key, as Stripe does, in a process of
its own: ``python ledger_bookkeeper.py PORT``. It keeps every request (account, key, content,
start and end) and one charge per key; ``POST /mode`` sets ``{"delay_s": float, "hang": bool,
"kill_pid": int}``: with ``kill_pid`` the first charge is recorded, then that process is
killed with SIGKILL before the answer goes out (the crash between the bookkeeper's answer and
svc's record). ``GET /state`` returns requests, charges and the most requests ever in flight
at once for one account."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sys
import time
from collections import Counter

from aiohttp import web

PORT = int(sys.argv[1])
mode: dict = {"delay_s": 0.0, "hang": False, "kill_pid": None}
requests: list[dict] = []
charges: dict[str, dict] = {}
in_flight: Counter[str] = Counter()
most_in_flight: Counter[str] = Counter()


async def invoice(request: web.Request) -> web.Response:
    raw = await request.read()
    body = json.loads(raw)
    account, key = body["account_id"], body["idempotency_key"]
    content = hashlib.sha256(json.dumps(
        {k: body[k] for k in ("items", "activation_charges", "summary")},
        sort_keys=True).encode()).hexdigest()
    entry = {"account_id": account, "key": key, "content": content, "sync_id": body["sync_id"],
             "start": time.time(), "end": None}
    requests.append(entry)
    in_flight[account] += 1
    most_in_flight[account] = max(most_in_flight[account], in_flight[account])
    try:
        if mode["hang"]:
            await asyncio.sleep(3600)
        await asyncio.sleep(mode["delay_s"])
        charges.setdefault(key, body)  # one charge per key, whatever the retries
        if mode["kill_pid"]:
            pid, mode["kill_pid"] = mode["kill_pid"], None
            os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.2)  # svc is gone before the answer is written
        return web.json_response({"ok": True})
    finally:
        in_flight[account] -= 1
        entry["end"] = time.time()


async def set_mode(request: web.Request) -> web.Response:
    mode.update(await request.json())
    return web.json_response(mode)


async def state(request: web.Request) -> web.Response:
    return web.json_response({"requests": requests, "charges": charges,
                              "most_in_flight": most_in_flight})


app = web.Application()
app.add_routes([web.post("/invoice", invoice), web.post("/mode", set_mode),
                web.get("/state", state)])
print("ready", flush=True)
web.run_app(app, host="127.0.0.1", port=PORT, print=None)
