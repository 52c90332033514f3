"""KAZOO 4.3's rules for who may read and change an account's services, as pure functions
over the caller and the account (no I/O: the caller of these gathers the facts).

- Read: the account's own callers and its ancestors' (crossbar's account rule); a
  super-duper admin reads every account. Anything else is answered as if the account did
  not exist.
- Billing (plans, overrides, manual quantities, sync, reconcile): only the account's
  reseller or a super-duper admin (``cb_services:is_allowed/1``), never the account itself
  unless it is its own reseller and super-duper too.
- Reseller status (promote, demote): super-duper admins only (``cb_accounts``
  ``validate_account_path`` for ``reseller``), never the master, and not while the account
  has reseller descendants (``kz_services_reseller:promote/1``, ``demote/1``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .principal import Principal


class Access(Enum):
    READ = "read"
    BILLING = "billing"
    RESELLER = "reseller"


@dataclass(frozen=True)
class Caller:
    """A principal with what its own account is."""

    principal: Principal
    superduper: bool  # the role says so, or (KAZOO token, reseller role) its account is one

    @property
    def account_id(self) -> str:
        return self.principal.account_id


@dataclass(frozen=True)
class Target:
    account_id: str
    tree: tuple[str, ...]  # ancestors, root first
    reseller_id: str | None
    is_master: bool
    has_reseller_descendants: bool = False  # gathered for Access.RESELLER only


class Refusal(Enum):
    HIDDEN = "account_not_found"  # 404, as an account that does not exist
    FORBIDDEN = "forbidden"  # 403, KAZOO's error for every other refusal
    HAS_DESCENDANTS = "account_has_descendants"


def is_superduper(principal: Principal, account_flagged: bool, is_master: bool) -> bool:
    """The caller acts as a super-duper admin: its role says so, or it acts as its account
    and that account is the master or flagged ``pvt_superduper_admin``."""
    if principal.role == "superduper":
        return True
    return principal.role in ("reseller", "kazoo") and (account_flagged or is_master)


def sees(caller: Caller, target: Target) -> bool:
    return (caller.superduper or caller.account_id == target.account_id
            or caller.account_id in target.tree)


def refusal(caller: Caller, target: Target, access: Access, method: str) -> Refusal | None:
    """Why the caller may not do this to the target's services, or None when it may."""
    if not sees(caller, target):
        return Refusal.HIDDEN
    if not caller.principal.writes and method != "GET":
        return Refusal.FORBIDDEN  # a read token writing
    if access is Access.BILLING:
        if caller.superduper or caller.account_id == target.reseller_id != target.account_id:
            return None
        return Refusal.FORBIDDEN
    if access is Access.RESELLER:
        if not caller.superduper or target.is_master:
            return Refusal.FORBIDDEN
        if target.has_reseller_descendants:
            return Refusal.HAS_DESCENDANTS
    return None
