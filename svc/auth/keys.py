"""The public keys of KAZOO's signing keys, by key id: configured (``SVC_KAZOO_AUTH_KEYS``)
or fetched from crossbar's ``GET /v2/auth/keys/{kid}`` and kept."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import aiohttp
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from .principal import Unauthenticated

# a key crossbar could not give is not asked for again for this long, so that tokens naming
# unknown keys cannot turn svc into a stream of requests to crossbar
MISS_TTL_S = 30.0


def rsa_public_key(pem: str) -> RSAPublicKey:
    """``ValueError`` unless ``pem`` is an RSA public key in PEM."""
    key = load_pem_public_key(pem.encode())
    if not isinstance(key, RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


class _NoSuchKey(Unauthenticated):
    """crossbar says the key does not exist (404): remembered for ``MISS_TTL_S``."""


class KazooKeys:
    def __init__(self, configured: Mapping[str, str], crossbar_url: str | None = None,
                 timeout_s: float = 10.0) -> None:
        self._keys = {kid: rsa_public_key(pem) for kid, pem in configured.items()}
        self._crossbar = crossbar_url.rstrip("/") if crossbar_url else None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._missed: dict[str, float] = {}
        self._fetching: dict[str, asyncio.Lock] = {}

    async def key(self, kid: str, token: str) -> RSAPublicKey:
        if kid in self._keys:
            return self._keys[kid]
        if self._crossbar is None:
            raise Unauthenticated("the token's key (kid) is not known")
        async with self._fetching.setdefault(kid, asyncio.Lock()):
            if kid not in self._keys:
                if time.monotonic() - self._missed.get(kid, -MISS_TTL_S) < MISS_TTL_S:
                    raise Unauthenticated("the token's key (kid) is not known")
                try:
                    self._keys[kid] = await self._fetch(kid, token)
                except _NoSuchKey:
                    self._missed[kid] = time.monotonic()
                    raise
        return self._keys[kid]

    async def _fetch(self, kid: str, token: str) -> RSAPublicKey:
        # crossbar serves keys to authenticated callers only: the token being verified asks,
        # and crossbar checks it before it answers (cb_auth authorize_nouns for keys/{id})
        url = f"{self._crossbar}/v2/auth/keys/{kid}"
        try:
            async with aiohttp.ClientSession(timeout=self._timeout) as session, session.get(
                    url, headers={"X-Auth-Token": token, "Accept": "application/json"}
            ) as response:
                if response.status == 404:
                    raise _NoSuchKey("the token's key (kid) is not known to crossbar")
                body = await response.json(content_type=None) if response.ok else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise Unauthenticated("the token's key (kid) could not be fetched from "
                                  "crossbar") from None
        pem = ((body or {}).get("data") or {}).get("public_key_pem") if isinstance(
            body, dict) else None
        if not isinstance(pem, str):
            raise Unauthenticated("crossbar did not give the token's key (kid)")
        try:
            return rsa_public_key(pem)
        except ValueError:
            raise Unauthenticated("crossbar's key for the token (kid) is not an RSA "
                                  "public key") from None
