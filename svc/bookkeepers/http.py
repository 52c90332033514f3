"""The HTTP bookkeeper: a signed webhook (SPEC §8, §12 "Bookkeeper configuration").

200 → good standing; 402 → delinquent (the body's ``reason``/``message`` if JSON); anything
else, a timeout or no answer → failed (the account stays dirty and is retried with back-off).
"""

from __future__ import annotations

import hashlib
import hmac

import aiohttp

from ..jsonio import dumps, loads
from .abc import Answer, BookkeeperAdapter, InvoiceDelivery


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class HttpBookkeeper(BookkeeperAdapter):
    def __init__(self, url: str, secret: str, timeout_s: float,
                 session: aiohttp.ClientSession) -> None:
        self.url = url
        self.secret = secret
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.session = session

    async def deliver(self, delivery: InvoiceDelivery) -> Answer:
        body = dumps(delivery.body())
        headers = {"Content-Type": "application/json",
                   "X-Svc-Signature": signature(self.secret, body),
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
