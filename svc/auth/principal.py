"""The caller of a request, once its token is verified."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# read: GET only; reseller: acts as the account it names, as that account's KAZOO login
# would; superduper: acts as KAZOO's super-duper admin; kazoo: a KAZOO login token, whose
# rights are its account's (super-duper when that account is flagged so, or the master)
Role = Literal["read", "reseller", "superduper", "kazoo"]


class Unauthenticated(Exception):
    """No token, or one that is not valid: 401, with why (never the token itself)."""


@dataclass(frozen=True)
class Principal:
    account_id: str
    role: Role
    name: str  # for the audit trail: a static token's name, or a KAZOO login's account/user
    user_id: str | None = None  # a KAZOO token's owner_id
    token: str | None = None  # a KAZOO token, echoed as crossbar does (auth_token)

    @property
    def writes(self) -> bool:
        return self.role != "read"
