"""The identity signature of a KAZOO token, checked as ``kz_auth_identity:token/1`` checks
it: ``identity_sig`` is base64url(HMAC(sha256, <identity secret><system secret>, identity)),
where the identity is the token's ``device_id``, else its ``owner_id``, else its
``account_id``; the identity secret is ``pvt_signature_secret`` of that document in the
account's database, and the system secret ``secret_for_user_signature`` of
``system_config/auth`` (``default``). Resetting either secret in KAZOO revokes the token."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from ..ingest.databases import account_database
from ..sources import DocumentSource, SourceUnavailable
from .principal import Unauthenticated

SYSTEM_CONFIG = "system_config"
AUTH_CONFIG = "auth"  # kazoo_auth's ?CONFIG_CAT
SYSTEM_SECRET = "secret_for_user_signature"  # ?KAZOO_SIGNATURE_ID
IDENTITY_SECRET = "pvt_signature_secret"  # ?PVT_SIGNING_SECRET


def identity_of(claims: Mapping[str, Any]) -> str:
    """The document whose secret signed the token (kz_auth_identity:identity_secret/1)."""
    for claim in ("device_id", "owner_id", "account_id"):
        if isinstance(claims.get(claim), str) and claims[claim]:
            return claims[claim]
    raise Unauthenticated("the token names no identity")


def expected_signature(identity_secret: str, system_secret: str, identity: str) -> bytes:
    key = (identity_secret + system_secret).encode()
    return hmac.new(key, identity.encode(), hashlib.sha256).digest()


def signature_matches(claims: Mapping[str, Any], identity_secret: str,
                      system_secret: str) -> bool:
    given = claims.get("identity_sig")
    if not isinstance(given, str) or not given:
        return False
    try:  # base64url without padding, as kz_base64url encodes it
        signature = base64.urlsafe_b64decode(given + "=" * (-len(given) % 4))
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(signature, expected_signature(
        identity_secret, system_secret, identity_of(claims)))


class IdentityUnavailable(Exception):
    """CouchDB is not answering: the token can be neither accepted nor refused now (503)."""


class IdentityCheck:
    """Reads the two secrets from KAZOO's CouchDB for each token (they change when KAZOO
    revokes, so they are not kept)."""

    def __init__(self, source: DocumentSource) -> None:
        self.source = source

    async def check(self, claims: Mapping[str, Any]) -> None:
        identity = identity_of(claims)
        try:
            config = (await self.source.fetch(SYSTEM_CONFIG, [AUTH_CONFIG]))[AUTH_CONFIG].doc
            found = (await self.source.fetch(account_database(claims["account_id"]),
                                             [identity]))[identity].doc
        except SourceUnavailable:
            raise IdentityUnavailable("the token's identity signature cannot be checked now: "
                                      "CouchDB is not answering") from None
        system_secret = ((config or {}).get("default") or {}).get(SYSTEM_SECRET)
        identity_secret = (found or {}).get(IDENTITY_SECRET)
        if not (isinstance(system_secret, str) and isinstance(identity_secret, str)
                and signature_matches(claims, identity_secret, system_secret)):
            raise Unauthenticated("the token's identity signature is not valid (revoked?)")
