"""The HTTP bookkeeper: a signed webhook.

200 → good standing; 402 → delinquent (the body's ``reason``/``message`` if JSON); anything
else, a timeout or no answer → failed (the account stays dirty and is retried with back-off).
Each attempt is signed afresh, Stripe style: ``X-Svc-Signature: t=<unix s>,v1=<hex>``, the
HMAC-SHA256 of ``"<t>.<raw body>"``, so a receiver that checks ``t`` against a tolerance window
cannot be fooled by a replayed request.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import aiohttp
from pydantic import SecretStr

from ..jsonio import dumps, loads
from .abc import Answer, BookkeeperAdapter, InvoiceDelivery


def signature(secret: SecretStr, body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.get_secret_value().encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class HttpBookkeeper(BookkeeperAdapter):
    def __init__(self, url: str, secret: SecretStr, timeout_s: float,
                 session: aiohttp.ClientSession,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.secret = secret  # the first of the entry's secrets: it signs
        self.clock = clock
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.session = session

    async def deliver(self, delivery: InvoiceDelivery) -> Answer:
        body = dumps(delivery.body())
        headers = {"Content-Type": "application/json",
                   "X-Svc-Signature": signature(self.secret, body, int(self.clock())),
                   "Idempotency-Key": delivery.idempotency_key}
        try:
            async with self.session.post(self.url, data=body, headers=headers,
                                         timeout=self.timeout) as response:
                text = await response.read()
        except TimeoutError:
            return Answer("failed", "timeout", f"no answer within {self.timeout.total} s")
        except aiohttp.ClientError as error:
            return Answer("failed", "unreachable", str(error))
        if response.status == 200:
            return Answer("good_standing")
        if response.status == 402:
            reply = _json_object(text)
            return Answer("delinquent", str(reply.get("reason") or "payment_required"),
                          reply.get("message"))
        return Answer("failed", f"http_{response.status}", text[:200].decode(errors="replace"))


def _json_object(text: bytes) -> dict:
    try:
        value = loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
