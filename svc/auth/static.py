"""``SVC_API_TOKENS``: named secrets, each acting for one account with a role."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from ..settings import ApiToken
from .principal import Principal


def _digest(secret: str) -> bytes:
    # equal lengths for compare_digest, so not even a secret's length shows in the timing;
    # surrogatepass: whatever the header decoded to encodes, and distinct inputs stay distinct
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


class StaticTokens:
    def __init__(self, tokens: Mapping[str, ApiToken]) -> None:
        self._known = [(_digest(entry.token.get_secret_value()),
                        Principal(entry.account_id, entry.role, name))
                       for name, entry in tokens.items()]

    def find(self, token: str) -> Principal | None:
        given = _digest(token)
        found = None
        for digest, principal in self._known:  # every one compared: the time tells nothing
            if hmac.compare_digest(given, digest) and found is None:
                found = principal
        return found
