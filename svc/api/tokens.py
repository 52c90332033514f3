"""Who is calling, and which accounts they may see (SPEC §15).

A token (``SVC_API_TOKENS``) acts on its account and that account's descendants. An account
outside that tree is answered exactly as one that does not exist, so a token cannot learn
which accounts exist elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from ..handlers import Rejected
from ..settings import ApiToken
from ..store import NotFound, Repository


@dataclass(frozen=True)
class Caller:
    name: str  # the token's name in SVC_API_TOKENS, never its secret
    account_id: str


def _digest(secret: str) -> bytes:
    # equal lengths for compare_digest, so not even a secret's length shows in the timing;
    # surrogatepass: whatever the header decoded to encodes, and distinct inputs stay distinct
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def presented(headers: Mapping[str, str]) -> str | None:
    """KAZOO's ``X-Auth-Token``, else ``Authorization: Bearer``."""
    if token := headers.get("X-Auth-Token", "").strip():
        return token
    scheme, _, credentials = headers.get("Authorization", "").strip().partition(" ")
    return (credentials.strip() or None) if scheme.lower() == "bearer" else None


class Tokens:
    def __init__(self, tokens: Mapping[str, ApiToken]) -> None:
        self._known = [(_digest(entry.token.get_secret_value()), Caller(name, entry.account_id))
                       for name, entry in tokens.items()]

    def caller(self, headers: Mapping[str, str]) -> Caller:
        token = presented(headers)
        if token is None:
            raise Rejected("unauthorized", "an X-Auth-Token or Authorization: Bearer header "
                                           "is required")
        given = _digest(token)
        found = None
        for digest, caller in self._known:  # every one compared: the time tells nothing
            if hmac.compare_digest(given, digest) and found is None:
                found = caller
        if found is None:
            raise Rejected("unauthorized", "the token is not known")
        return found


async def admit(repo: Repository, caller: Caller, account_id: str) -> None:
    """``NotFound`` (``account_not_found``) unless the account exists within the caller's
    tree: its own account, or one whose ancestors (the account doc's ``tree``) include it."""
    account = await repo.existing_account(account_id)  # NotFound if it does not exist
    if account_id != caller.account_id and caller.account_id not in account["tree"]:
        raise NotFound(f"account {account_id} is not known")  # existing_account's own words
