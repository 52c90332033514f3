"""Building document changes from KAZOO-shaped documents, as the doc-change consumer will."""

from __future__ import annotations

from svc.quantities import document_contributions
from svc.store import AccountFields, DocChange


def account_doc(account_id: str, tree: list[str], reseller: bool = False) -> dict:
    return {"_id": account_id, "pvt_type": "account", "pvt_tree": tree,
            "pvt_reseller": reseller, "name": account_id}


def change(account_id: str, doc: dict, rev: int | None, deleted: bool = False) -> DocChange:
    fields = None
    if doc.get("pvt_type") == "account":
        fields = AccountFields(tuple(doc.get("pvt_tree", ())), bool(doc.get("pvt_reseller")),
                               doc.get("pvt_enabled", True) is not False, doc.get("name"))
    counts = {} if deleted else document_contributions(doc).counts
    return DocChange(account_id, doc["_id"], doc.get("pvt_type", doc["_id"]), rev, deleted,
                     counts, fields)


def device(doc_id: str, device_type: str = "sip_device") -> dict:
    return {"_id": doc_id, "pvt_type": "device", "device_type": device_type}


def user(doc_id: str, priv_level: str = "user") -> dict:
    return {"_id": doc_id, "pvt_type": "user", "priv_level": priv_level}


async def account_with_plan(repo, plan: dict, devices: int = 0) -> None:
    """Account ``a`` under the master ``m``, with ``m``'s plan ``p`` assigned and ``devices``
    SIP devices counted."""
    await repo.apply_doc_change(change("m", account_doc("m", []), 1))
    await repo.apply_doc_change(change("a", account_doc("a", ["m"]), 1))
    await repo.put_plan("m", "p", plan)
    await repo.assign_plan("a", "p")
    if devices:
        await repo.apply_doc_changes([change("a", device(f"d{n}"), 1) for n in range(devices)])


async def tree(repo, *accounts):
    """accounts: (id, tree, reseller) created in order through their account documents."""
    for account_id, ancestors, reseller in accounts:
        await repo.apply_doc_change(change(account_id, account_doc(account_id, ancestors,
                                                                   reseller), 1))
