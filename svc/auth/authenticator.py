"""From a request's token to its ``Principal``: a static token (``SVC_API_TOKENS``) or a
KAZOO login token, presented as ``X-Auth-Token``, ``Authorization: Bearer`` or the query's
``auth_token`` (Monster UI's CSV links)."""

from __future__ import annotations

from collections.abc import Mapping

from ..settings import ApiToken
from .identity import IdentityCheck
from .kazoo_jwt import PublicKeys, looks_like_jwt, verified_claims
from .principal import Principal, Unauthenticated
from .static import StaticTokens


def presented(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """KAZOO's ``X-Auth-Token``, else ``Authorization: Bearer``, else ``?auth_token=``."""
    if token := headers.get("X-Auth-Token", "").strip():
        return token
    scheme, _, credentials = headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip() or None
    return query.get("auth_token", "").strip() or None


class Authenticator:
    def __init__(self, tokens: Mapping[str, ApiToken], keys: PublicKeys | None,
                 identity: IdentityCheck | None = None) -> None:
        self.static = StaticTokens(tokens)
        self.keys = keys  # None: KAZOO tokens are not accepted (no key configured)
        self.identity = identity  # None: no CouchDB, the identity signature is not checked

    async def principal(self, headers: Mapping[str, str],
                        query: Mapping[str, str]) -> Principal:
        token = presented(headers, query)
        if token is None:
            raise Unauthenticated("an X-Auth-Token or Authorization: Bearer header is required")
        if (found := self.static.find(token)) is not None:
            return found
        if self.keys is None or not looks_like_jwt(token):
            raise Unauthenticated("the token is not known")
        claims = await verified_claims(token, self.keys)
        if self.identity is not None:
            await self.identity.check(claims)
        owner = claims.get("owner_id") if isinstance(claims.get("owner_id"), str) else None
        account_id = claims["account_id"]
        name = f"kazoo account {account_id}" + (f" user {owner}" if owner else "")
        return Principal(account_id, "kazoo", name, owner, token)
