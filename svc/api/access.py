"""The facts KAZOO's permission rules need, read from the store (``svc.auth.permissions``
decides), and the refusal each rule gives."""

from __future__ import annotations

from ..auth.permissions import Access, Caller, Refusal, Target, is_superduper, refusal
from ..auth.principal import Principal
from ..handlers import Rejected
from ..store import NotFound, Repository


async def caller_of(repo: Repository, principal: Principal) -> Caller:
    account = await repo.account(principal.account_id)
    flagged = bool(account and account.get("superduper_admin"))
    master = await repo.master_id()
    return Caller(principal, is_superduper(principal, flagged, principal.account_id == master))


async def has_reseller_descendants(repo: Repository, account_id: str) -> bool:
    keys = await repo.store.find_keys("accounts", "tree", account_id)
    found = await repo.store.get_many("accounts", keys)
    return any(entry.doc["is_reseller"] and not entry.doc["deleted"]
               for entry in found.values())


async def target_of(repo: Repository, account_id: str, access: Access) -> Target:
    account = await repo.existing_account(account_id)  # NotFound if it does not exist
    return Target(account_id, tuple(account["tree"]), account["reseller_id"],
                  account_id == await repo.master_id(),
                  access is Access.RESELLER and await has_reseller_descendants(repo, account_id))


async def authorize(repo: Repository, principal: Principal, account_id: str, access: Access,
                    method: str) -> None:
    """Raise unless the principal may do this; an account it may not see is answered exactly
    as one that does not exist."""
    target = await target_of(repo, account_id, access)
    why = refusal(await caller_of(repo, principal), target, access, method)
    if why is Refusal.HIDDEN:
        raise NotFound(f"account {account_id} is not known")  # existing_account's own words
    if why is Refusal.HAS_DESCENDANTS:
        raise Rejected("account_has_descendants",
                       f"account {account_id} has reseller descendants")
    if why is Refusal.FORBIDDEN:
        raise Rejected("forbidden", "the token may not do this to this account's services")
