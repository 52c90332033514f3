"""The domain operations on the store, written once for every adapter.

Each public operation is one unit of work: read, edit with ``records``, write with
compare-and-set, inside one transaction; a lost compare-and-set re-runs the whole unit.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, TypeVar

from ..models.events import Event, PlansChange
from ..quantities import Counts, add_counts
from ..rating import Violation, lint_plan
from ..rating.coerce import MAX_QUANTITY
from .abc import DocumentStore, StoreError, VersionConflict, Versioned
from .audit import Change, note, note_quantities
from .leases import schedule_sync
from .outbox import emit, emit_quantity_changes
from .records import (
    AppliedChange,
    Doc,
    DocChange,
    QuantityChange,
    add_cascade_counts,
    add_own_counts,
    deep_update,
    ledger_key,
    mark_dirty,
    negate,
    new_account,
    new_services,
    plan_key,
    replace_quantities,
    with_object_plans,
)
from .units import Conflict, run_unit

log = logging.getLogger("svc.store")

T = TypeVar("T")
TOMBSTONE_REV = 2**62  # a delete without a revision outranks every later edit

TOUCH_CHUNK = 200  # accounts marked dirty per unit
LEDGER_CHUNK = 500  # an import's documents per unit
REPOINTING = "repointing"  # meta: the accounts whose descendants are being re-pointed


class NotFound(StoreError):
    reason = "account_not_found"


class PlanNotFound(StoreError):
    reason = "plan_not_found"


class Forbidden(StoreError):
    reason = "forbidden"


class PlanNotOffered(Forbidden):
    """A plan that is not one of the account's reseller's (another's, or none at all)."""

    def __init__(self, plan_id: str, reseller_id: str) -> None:
        super().__init__(f"plan {plan_id} is not one of reseller {reseller_id}'s plans")
        self.plan_id = plan_id


class NotAssigned(StoreError):
    reason = "not_assigned"


class MasterAccount(StoreError):
    reason = "master_account"


class InvalidInput(StoreError, ValueError):
    """Bad values from a caller; ``path`` names the field."""

    reason = "invalid"

    def __init__(self, path: str, rule: str) -> None:
        super().__init__(f"{path}: {rule}")
        self.path, self.rule = path, rule


def validate_counts(counts: Any, path: str) -> Counts:
    """Quantities are objects of objects of integers from 0 to 10^9."""
    if not isinstance(counts, dict):
        raise InvalidInput(path, "must be an object of categories")
    for category, items in counts.items():
        if not isinstance(items, dict):
            raise InvalidInput(f"{path}.{category}", "must be an object of items")
        for item, value in items.items():
            if isinstance(value, bool) or not isinstance(value, int) or not (
                    0 <= value <= MAX_QUANTITY):
                raise InvalidInput(f"{path}.{category}.{item}",
                                   f"must be an integer from 0 to {MAX_QUANTITY}")
    return counts


@dataclass
class _Unsettled:
    """What a batch still owes each account's services document: the sum of its documents'
    count deltas, and its documents' changed ``service.plans`` (doc id → entry or None)."""

    counts: dict[str, Counts] = field(default_factory=dict)
    named: dict[str, dict[str, Doc | None]] = field(default_factory=dict)

    def add(self, account_id: str, delta: Counts) -> None:
        if delta:
            self.counts[account_id] = add_counts(self.counts.get(account_id, {}), delta)

    def name(self, account_id: str, doc_id: str, entry: Doc | None) -> None:
        self.named.setdefault(account_id, {})[doc_id] = entry

    def accounts(self) -> list[str]:
        moved = [a for a, delta in self.counts.items() if any(delta.values())]
        return list(dict.fromkeys([*moved, *self.named]))

    def clear(self) -> None:
        self.counts.clear()
        self.named.clear()


class Repository:
    def __init__(self, store: DocumentStore, *, master_account_id: str | None = None,
                 sync_buffer_s: float = 0, clock: Callable[[], float] = time.time,
                 attempts: int = 100) -> None:
        self.store = store
        self.configured_master = master_account_id
        self.sync_buffer_s = sync_buffer_s
        self.clock = clock
        self.attempts = attempts

    async def _unit(self, work: Callable[[], Awaitable[T]]) -> T:
        return await run_unit(self.store, work, self.attempts, self.clock)

    # --- reads -------------------------------------------------------------------------

    async def account(self, account_id: str) -> Doc | None:
        found = await self.store.get("accounts", account_id)
        return found.doc if found else None

    async def services(self, account_id: str) -> Doc | None:
        found = await self.store.get("services", account_id)
        return found.doc if found else None

    async def master_id(self) -> str | None:
        if self.configured_master:
            return self.configured_master
        found = await self.store.get("meta", "master")
        return found.doc["account_id"] if found else None

    async def existing_account(self, account_id: str) -> Doc:
        account = await self.account(account_id)
        if account is None or account["deleted"]:
            raise NotFound(f"account {account_id} is not known")
        return account

    # --- document changes ----------------------------------------------------------------

    async def apply_doc_change(self, change: DocChange) -> AppliedChange:
        """Idempotent and ordered by revision: a change not newer than the stored one is
        ignored, and a delete leaves a tombstone."""
        return (await self.apply_doc_changes([change]))[0]

    async def apply_doc_changes(self, changes: list[DocChange]) -> list[AppliedChange]:
        """Several changes in one unit of work (the consumer's micro-batches): all or none."""
        for change in changes:
            validate_counts(change.counts, "$.counts")

        async def work() -> list[AppliedChange]:
            results = await self._apply_all(changes)
            moved = [c for result in results for c in result.changes]
            emit_quantity_changes(moved)
            note_quantities(moved)
            return results

        results = await self._unit(work)
        if any(change.account is not None for change in changes):  # a flag may have changed
            await self.repoint_pending()
        return results

    async def _apply(self, change: DocChange) -> AppliedChange:
        return (await self._apply_all([change]))[0]

    async def _apply_all(self, changes: list[DocChange]) -> list[AppliedChange]:
        """The ledger entries of the whole batch are read at once, and each account's counts
        move once per batch by the sum of its documents' deltas, not once per document (the
        work of a batch grows with its accounts, not its documents). An account document's
        change first settles the sums so far: it moves the account's own counts between
        ancestors, and those must be complete."""
        keys = [ledger_key(change.account_id, change.doc_id) for change in changes]
        entries = await self.store.get_many("ledger", keys)
        unsettled = _Unsettled()
        outcomes: list[tuple[str, list[QuantityChange]]] = []
        for key, change in zip(keys, changes, strict=True):
            entry = entries.get(key)
            rev = change.rev if change.rev is not None else TOMBSTONE_REV
            if entry is not None and entry.doc["rev"] >= rev:
                outcomes.append(("ignored", []))
                continue
            live = entry is not None and not entry.doc["deleted"]
            before = entry.doc["counts"] if live else {}
            named_before = entry.doc.get("object_plans") if live else None
            after = {} if change.deleted else change.counts
            named = None if change.deleted else change.object_plans
            # a delete by id takes the type the ledger knows; one of a document never counted
            # still leaves its tombstone, so that a late create cannot count it
            doc_type = change.doc_type or (entry.doc["type"] if entry else None)
            recorded = {"account_id": change.account_id, "doc_id": change.doc_id,
                        "type": doc_type, "rev": rev, "deleted": change.deleted,
                        "counts": after, "object_plans": named}
            version = await self.store.put("ledger", key, recorded,
                                           entry.version if entry else 0)
            entries[key] = Versioned(key, version, recorded)  # a repeat later in the batch
            if entry is None and change.doc_type is None:
                outcomes.append(("ignored", []))
                continue
            moved: list[QuantityChange] = []
            if change.account is not None or (change.deleted and change.doc_type == "account"):
                moved += await self._settle(unsettled)
                moved += await self._apply_account(change)
            unsettled.add(change.account_id, add_counts(after, negate(before)))
            if named != named_before:
                unsettled.name(change.account_id, change.doc_id,
                               None if named is None else {"type": doc_type, "plans": named})
            outcomes.append(("applied", moved))
        if outcomes:  # the batch's remaining sums go with its last change
            outcomes[-1][1].extend(await self._settle(unsettled))
        return [AppliedChange(outcome, tuple(moved)) for outcome, moved in outcomes]

    async def _settle(self, unsettled: _Unsettled) -> list[QuantityChange]:
        """Each account's own counts move once, then each ancestor's cascade once by the sum
        of its descendants' moves: a batch writes the reseller and the master once, not once
        per account."""
        accounts = unsettled.accounts()
        found = await self.store.get_many("accounts", accounts)
        services = await self.store.get_many("services", accounts)
        moved: list[QuantityChange] = []
        cascades: dict[str, Counts] = {}
        for account_id in accounts:
            account = found.get(account_id) or await self._ensure("accounts", account_id,
                                                                   new_account)
            own = services.get(account_id) or Versioned(account_id, 0,
                                                        new_services(account_id))
            changes, resolved_delta = await self._add_own(
                own, unsettled.counts.get(account_id, {}), unsettled.named.get(account_id, {}))
            moved += changes
            if resolved_delta and not account.doc["pending"] and not account.doc["deleted"]:
                for ancestor in account.doc["tree"]:
                    cascades[ancestor] = add_counts(cascades.get(ancestor, {}), resolved_delta)
        unsettled.clear()
        return moved + await self._add_to_cascades(cascades)

    async def _load(self, collection: str, key: str, new: Callable[[str], Doc]) -> Versioned:
        return await self.store.get(collection, key) or Versioned(key, 0, new(key))

    async def _ensure(self, collection: str, key: str, new: Callable[[str], Doc]) -> Versioned:
        found = await self._load(collection, key, new)
        if found.version:
            return found
        return Versioned(key, await self.store.put(collection, key, found.doc, 0), found.doc)

    async def _put(self, found: Versioned, collection: str, doc: Doc) -> None:
        await self.store.put(collection, found.key, doc, found.version)

    async def _put_services(self, found: Versioned, doc: Doc) -> None:
        """A services document that turns dirty is scheduled for a sync: only then is its
        lease document written, so that changes to a dirty account never touch what claims
        compete for."""
        await self._put(found, "services", doc)
        if doc.get("dirty") and not found.doc.get("dirty"):
            await schedule_sync(self.store, found.key,
                                float(doc["changed_at"]) + self.sync_buffer_s, self.clock())

    async def _add_own(self, services: Versioned, delta: Counts, named: dict[str, Doc | None]
                       ) -> tuple[list[QuantityChange], Counts]:
        """The changes, and the move of the resolved quantities (what the cascades take)."""
        doc, resolved_delta, changes = add_own_counts(services.doc, delta)
        if named:  # the plans its documents name changed: billed anew
            doc = with_object_plans(doc, named)
        if changes or named:
            doc = mark_dirty(doc, self.clock())
        await self._put_services(services, doc)
        return changes, resolved_delta

    async def _add_to_ancestors(self, tree: Iterable[str], delta: Counts) -> list[QuantityChange]:
        """Work proportional to the tree's depth, never to the number of documents."""
        return await self._add_to_cascades(dict.fromkeys(tree, delta) if delta else {})

    async def _add_to_cascades(self, deltas: dict[str, Counts]) -> list[QuantityChange]:
        """Each account's cascade moved by its delta."""
        found = await self.store.get_many("services", list(deltas))
        changes: list[QuantityChange] = []
        for ancestor, delta in deltas.items():
            services = found.get(ancestor) or Versioned(ancestor, 0, new_services(ancestor))
            doc, cascade_changes = add_cascade_counts(services.doc, delta)
            if cascade_changes:
                doc = mark_dirty(doc, self.clock())
            await self._put_services(services, doc)
            changes += cascade_changes
        return changes

    async def _apply_account(self, change: DocChange) -> list[QuantityChange]:
        found = await self._load("accounts", change.account_id, new_account)
        account = dict(found.doc)
        services = await self._ensure("services", change.account_id, new_services)
        own = services.doc["quantities"]["account"]
        attached = not account["pending"] and not account["deleted"]
        changes: list[QuantityChange] = []
        repoint = False
        if change.deleted:
            # its totals leave its ancestors; a final (empty) invoice is synced
            if attached:
                changes += await self._add_to_ancestors(account["tree"], negate(own))
            account["deleted"] = True
            await self._put_services(services, mark_dirty(services.doc, self.clock()))
        else:
            fields = change.account
            assert fields is not None
            tree = list(fields.tree)
            # only a flag that differs from the document's previous revision counts, so an
            # ordinary edit never undoes a promote made through svc
            if fields.is_reseller != account["reseller_flag_seen"]:
                account["reseller_flag_seen"] = fields.is_reseller
                repoint = account["is_reseller"] != fields.is_reseller and attached
                account["is_reseller"] = fields.is_reseller
            account.update(enabled=fields.enabled, name=fields.name,
                           superduper_admin=fields.superduper_admin)
            if not tree and not self.configured_master and await self.master_id() is None:
                await self.store.put("meta", "master", {"account_id": change.account_id}, 0)
            if not attached:
                changes += await self._add_to_ancestors(tree, own)
            elif tree != account["tree"]:
                changes += await self._add_to_ancestors(account["tree"], negate(own))
                changes += await self._add_to_ancestors(tree, own)
            first_seen, restored = account["pending"], account["deleted"]
            account.update(tree=tree, pending=False, deleted=False)
            account["reseller_id"] = await self._nearest_reseller(tree)
            if first_seen:
                await self._assign_default_plan(account, services)
            elif restored:  # edited back in KAZOO: counted and billed again
                await self._put_services(services, mark_dirty(services.doc, self.clock()))
        await self._put(found, "accounts", account)
        if repoint:
            await self._mark_repointing(change.account_id)
        return changes

    async def _nearest_reseller(self, tree: list[str]) -> str | None:
        """The nearest ancestor flagged reseller, else the master."""
        ancestors = await self.store.get_many("accounts", tree)
        for ancestor in reversed(tree):
            found = ancestors.get(ancestor)
            if found and found.doc["is_reseller"] and not found.doc["deleted"]:
                return ancestor
        return await self.master_id() or (tree[0] if tree else None)

    async def _assign_default_plan(self, account: Doc, services: Versioned) -> None:
        """A new account gets its reseller's default plan, if any."""
        reseller = account["reseller_id"]
        if reseller is None or services.doc["plans"]:
            return
        reseller_services = await self.store.get("services", reseller)
        default = reseller_services.doc.get("default_plan") if reseller_services else None
        if default is None or await self.store.get("plans", plan_key(reseller, default)) is None:
            return
        # re-read: the services document may have been written earlier in this unit
        current = await self._load("services", services.key, new_services)
        doc = _with_plan(current.doc, default, reseller, {})
        await self._put_services(current, mark_dirty(doc, self.clock()))

    async def _mark_repointing(self, account_id: str) -> None:
        """Inside the unit that changes a reseller flag: its descendants are re-pointed
        after it, in units of their own (``repoint_pending``); the mark makes that resumable
        when the process stops half-way."""
        found = await self.store.get("meta", REPOINTING)
        pending = found.doc["accounts"] if found else []
        if account_id not in pending:
            await self.store.put("meta", REPOINTING, {"accounts": [*pending, account_id]},
                                 found.version if found else 0)

    async def repoint_pending(self) -> None:
        """Re-point the descendants of every account whose reseller flag changed (after the
        unit that changed it, and at start for what a stopped process left): only those whose
        nearest reseller changes, ``TOUCH_CHUNK`` per unit, so that no unit grows with the
        reseller; the mark goes once all are done."""
        found = await self.store.get("meta", REPOINTING)
        for account_id in found.doc["accounts"] if found else []:
            keys = await self.store.find_keys("accounts", "tree", account_id)
            for start in range(0, len(keys), TOUCH_CHUNK):
                async def chunk(keys: list[str] = keys[start:start + TOUCH_CHUNK]) -> None:
                    for account in (await self.store.get_many("accounts", keys)).values():
                        reseller = await self._nearest_reseller(account.doc["tree"])
                        if reseller != account.doc["reseller_id"]:
                            await self._put(account, "accounts",
                                            {**account.doc, "reseller_id": reseller})
                            await self._touch(account.key)

                await self._unit(chunk)
            await self._unit(lambda account_id=account_id: self._unmark_repointing(account_id))

    async def _unmark_repointing(self, account_id: str) -> None:
        found = await self.store.get("meta", REPOINTING)
        if found is not None:
            await self.store.put("meta", REPOINTING, {
                "accounts": [a for a in found.doc["accounts"] if a != account_id]},
                found.version)

    async def _touch(self, account_id: str) -> None:
        services = await self._load("services", account_id, new_services)
        await self._put_services(services, mark_dirty(services.doc, self.clock()))

    # --- resellers -----------------------------------------------------------------------

    async def set_reseller(self, account_id: str, is_reseller: bool) -> Doc:
        async def work() -> Doc:
            if account_id == await self.master_id():
                raise MasterAccount("the master account is always a reseller")
            account = await self.existing_account(account_id)
            found = await self.store.get("accounts", account_id)
            assert found is not None
            updated = {**account, "is_reseller": is_reseller}
            await self._put(found, "accounts", updated)
            note(Change(account_id, "reseller_promoted" if is_reseller else "reseller_demoted",
                        {"is_reseller": account["is_reseller"]}, {"is_reseller": is_reseller}))
            if account["is_reseller"] != is_reseller:
                await self._touch(account_id)
                await self._mark_repointing(account_id)
            return updated

        updated = await self._unit(work)
        await self.repoint_pending()
        return updated

    # --- reconcile -----------------------------------------------------------------------

    async def reconcile(self, account_id: str) -> list[QuantityChange]:
        """Recount one account from its ledger, then its cascade from its descendants and its
        ancestors' cascades, which sum what its own counts were before."""
        account = await self.existing_account(account_id)
        changes = await self._unit(lambda: self._recount_own(account_id))
        return changes + await self.recount_cascades([account_id, *reversed(account["tree"])])

    async def reconcile_all(self) -> list[QuantityChange]:
        keys = [found.key async for found in self.store.scan("accounts")]
        changes: list[QuantityChange] = []
        for key in keys:  # every account's own counts first: cascades sum them
            changes += await self._unit(lambda key=key: self._recount_own(key))
        for key in keys:
            changes += await self._unit(lambda key=key: self._recount_cascade(key))
        return changes

    async def counted_documents(self, account_id: str) -> dict[str, Doc]:
        """The ledger entries of an account's live documents, by document id."""
        keys = await self.store.find_keys("ledger", "account_id", account_id)
        return {entry.doc["doc_id"]: entry.doc
                for entry in (await self.store.get_many("ledger", keys)).values()
                if not entry.doc["deleted"]}

    async def rebuild_ledger(self, account_id: str, changes: list[DocChange]
                             ) -> list[QuantityChange]:
        """An import of one account's database: its documents go in as notices do (the
        revision rule; the account's counts and its ancestors' cascades move in the same
        unit as the ledger), in units of ``LEDGER_CHUNK`` documents so that no unit grows
        with the account (a MongoDB transaction has a lifetime), then the account is
        recounted from its ledger. Every unit leaves the counts consistent with the ledger:
        a notice or a sync between two of them sees no half-applied import."""
        for change in changes:
            validate_counts(change.counts, "$.counts")
        moved: list[QuantityChange] = []
        for start in range(0, len(changes), LEDGER_CHUNK):
            applied = await self.apply_doc_changes(changes[start:start + LEDGER_CHUNK])
            moved += [change for result in applied for change in result.changes]

        async def recount() -> list[QuantityChange]:
            await self._ensure("accounts", account_id, new_account)
            return await self._recount_own(account_id)

        return moved + await self._unit(recount)

    async def recount_cascades(self, account_ids: Iterable[str]) -> list[QuantityChange]:
        changes: list[QuantityChange] = []
        for account_id in account_ids:
            changes += await self._unit(lambda key=account_id: self._recount_cascade(key))
        return changes

    async def _recount_own(self, account_id: str) -> list[QuantityChange]:
        keys = await self.store.find_keys("ledger", "account_id", account_id)
        raw: Counts = {}
        named: dict[str, Doc | None] = {}
        for entry in (await self.store.get_many("ledger", keys)).values():
            if not entry.doc["deleted"]:
                raw = add_counts(raw, entry.doc["counts"])
                if entry.doc.get("object_plans"):
                    named[entry.doc["doc_id"]] = {"type": entry.doc["type"],
                                                  "plans": entry.doc["object_plans"]}
        services = await self._load("services", account_id, new_services)
        doc, changes = replace_quantities(services.doc, raw=raw)
        renamed = named != (services.doc.get("object_plans") or {})
        if renamed:
            gone = {doc_id: None for doc_id in services.doc.get("object_plans") or {}}
            doc = with_object_plans(doc, {**gone, **named})
        if changes or renamed or services.version == 0:
            await self._put_services(services, mark_dirty(doc, self.clock())
                                     if changes or renamed else doc)
        emit_quantity_changes(changes)
        return changes

    async def _recount_cascade(self, account_id: str) -> list[QuantityChange]:
        keys = await self.store.find_keys("accounts", "tree", account_id)
        accounts = await self.store.get_many("accounts", keys)
        live = [k for k, found in accounts.items()
                if not found.doc["deleted"] and not found.doc["pending"]]
        cascade: Counts = {}
        for found in (await self.store.get_many("services", live)).values():
            cascade = add_counts(cascade, found.doc["quantities"]["account"])
        services = await self._load("services", account_id, new_services)
        doc, changes = replace_quantities(services.doc, cascade=cascade)
        if changes:
            await self._put_services(services, mark_dirty(doc, self.clock()))
        emit_quantity_changes(changes)
        return changes

    # --- plans ---------------------------------------------------------------------------

    async def put_plan(self, vendor_id: str, plan_id: str, doc: Doc,
                       expected_version: int | None = None) -> Versioned:
        """Upsert a plan under its vendor; a stale ``expected_version`` is a conflict; every
        account it is assigned to becomes dirty."""
        warnings = lint_plan(doc)  # refuses an invalid plan before anything is written

        async def work() -> Versioned:
            found = await self.store.get("plans", plan_key(vendor_id, plan_id))
            version = found.version if found else 0
            if expected_version is not None and expected_version != version:
                raise Conflict(f"plan {plan_id} is at version {version}, not {expected_version}")
            return await self._store_plan(found, vendor_id, plan_id, doc)

        stored = await self._unit(work)
        _log_plan_warnings(vendor_id, plan_id, warnings)
        return stored

    async def get_plan(self, vendor_id: str, plan_id: str) -> Versioned:
        found = await self.store.get("plans", plan_key(vendor_id, plan_id))
        if found is None or found.doc.get("deleted"):
            raise PlanNotFound(f"plan {plan_id} of {vendor_id} is not known")
        return found

    async def delete_plan(self, vendor_id: str, plan_id: str) -> None:
        async def work() -> None:
            await self._store_plan_deletion(await self.get_plan(vendor_id, plan_id))

        await self._unit(work)

    async def apply_plan_change(self, vendor_id: str, plan_id: str, rev: int | None,
                                doc: Doc | None) -> AppliedChange:
        """A ``service_plan`` document's change (a notice, an import; ``doc`` ``None``:
        deleted), ordered by the revision ledger as every other document is: an
        older or repeated revision is ignored and dirties nothing, a delete leaves a
        tombstone, and the plan is written in the same unit as its ledger entry. An invalid
        plan raises ``PlanInvalid`` before the ledger moves, so a later valid revision of any
        number still applies."""
        warnings = [] if doc is None else lint_plan(doc)

        async def work() -> AppliedChange:
            # the ledger's own rule, for a document that counts nothing
            ledger = await self._apply(DocChange(vendor_id, plan_id, "service_plan", rev,
                                                 deleted=doc is None))
            if ledger.outcome == "ignored":
                return ledger
            found = await self.store.get("plans", plan_key(vendor_id, plan_id))
            if doc is not None:
                await self._store_plan(found, vendor_id, plan_id, doc)
            elif found is not None and not found.doc.get("deleted"):
                await self._store_plan_deletion(found)
            return ledger

        applied = await self._unit(work)
        if applied.outcome != "ignored":
            _log_plan_warnings(vendor_id, plan_id, warnings)
        return applied

    async def _store_plan(self, found: Versioned | None, vendor_id: str, plan_id: str,
                          doc: Doc) -> Versioned:
        key = plan_key(vendor_id, plan_id)
        record = {"id": plan_id, "vendor_id": vendor_id, "name": doc.get("name"),
                  "description": doc.get("description"), "category": doc.get("category"),
                  "doc": doc}
        version = await self.store.put("plans", key, record, found.version if found else 0)
        note(Change(vendor_id, "plan_edited", _plan_audited(found), {
            "plan_id": plan_id, "version": version, "doc": doc}))
        await self._touch_accounts_of_plan(key, plan_id)
        return Versioned(key, version, record)

    async def _store_plan_deletion(self, found: Versioned) -> None:
        await self.store.put("plans", found.key, {**found.doc, "deleted": True}, found.version)
        note(Change(found.doc["vendor_id"], "plan_edited", _plan_audited(found), None))
        await self._touch_accounts_of_plan(found.key, found.doc["id"])

    async def _touch_accounts_of_plan(self, key: str, plan_id: str) -> None:
        """Every account the plan is assigned to, or that a document of names a plan of
        that id (of whichever vendor: the vendor a reference means can change with the
        account's reseller), is billed anew."""
        assigned = await self.store.find_keys("services", "plan_keys", key)
        named = await self.store.find_keys("services", "object_plan_ids", plan_id)
        for account_id in dict.fromkeys([*assigned, *named]):
            await self._touch(account_id)

    async def list_plans(self, vendor_id: str) -> list[Versioned]:
        keys = await self.store.find_keys("plans", "vendor_id", vendor_id)
        found = await self.store.get_many("plans", keys)
        return [found[k] for k in keys if k in found and not found[k].doc.get("deleted")]

    async def available_plans(self, account_id: str) -> list[Versioned]:
        account = await self.existing_account(account_id)
        return await self.list_plans(account["reseller_id"] or account_id)

    # --- services documents ----------------------------------------------------------------

    async def edit_services(self, account_id: str, edit: Callable[[Doc], Doc],
                            event: Callable[[Doc], Event] | None = None,
                            audited: tuple[str, Callable[[Doc], Any]] | None = None) -> Doc:
        """Read-modify-write of a services document with its version in the filter; any
        write marks it dirty; ``event`` of the new document goes out with it, and
        an ``audited`` (action, the part of the document it changes) goes to the audit
        trail with that part before and after."""
        async def work() -> Doc:
            await self.existing_account(account_id)
            services = await self._load("services", account_id, new_services)
            doc = mark_dirty(edit(copy.deepcopy(services.doc)), self.clock())
            await self._put_services(services, doc)
            if event is not None:
                emit(event(doc))
            if audited is not None:
                action, part = audited
                note(Change(account_id, action, part(services.doc), part(doc)))
            return doc

        return await self._unit(work)

    async def assign_plan(self, account_id: str, plan_id: str, overrides: Doc | None = None,
                          merge: bool = False) -> Doc:
        account = await self.existing_account(account_id)
        reseller = await self.assignable_vendor(account, plan_id)
        return await self.edit_services(
            account_id, lambda doc: _assigning(doc, plan_id, reseller, overrides, merge),
            _plans_change(account_id, [plan_id], []), ("plan_assigned", itemgetter("plans")))

    async def assignable_vendor(self, account: Doc, plan_id: str) -> str:
        """The reseller that owns ``plan_id``; only its plans can be assigned."""
        reseller = account["reseller_id"] or account["id"]
        try:
            await self.get_plan(reseller, plan_id)
        except PlanNotFound:
            raise PlanNotOffered(plan_id, reseller) from None
        return reseller

    async def remove_plan(self, account_id: str, plan_id: str) -> Doc:
        return await self.edit_services(
            account_id, lambda doc: _removing(doc, plan_id, account_id),
            _plans_change(account_id, [], [plan_id]), ("plan_removed", itemgetter("plans")))

    async def change_plans(self, account_id: str, additions: list[tuple[str, Doc | None]],
                           removals: list[str], overrides: Doc | None = None,
                           merge: bool = False) -> Doc:
        """Plans assigned (each with its overrides, or ``None`` to keep those in place), then
        plans removed, then the global overrides set (``merge``: deep-merged, for the plans'
        overrides too), in one change: all or nothing."""
        account = await self.existing_account(account_id)
        vendors = {plan_id: await self.assignable_vendor(account, plan_id)
                   for plan_id, _ in additions}

        def edit(doc: Doc) -> Doc:
            for plan_id, chosen in additions:
                doc = _assigning(doc, plan_id, vendors[plan_id], chosen, merge)
            for plan_id in removals:
                doc = _removing(doc, plan_id, account_id)
            if overrides is not None:
                doc = {**doc, "overrides": deep_update(doc["overrides"], overrides) if merge
                       else overrides}
            return doc

        return await self.edit_services(
            account_id, edit, _plans_change(account_id, list(vendors), removals),
            ("plans_changed", lambda doc: {"plans": doc["plans"], "overrides": doc["overrides"]}))

    async def set_overrides(self, account_id: str, overrides: Doc, merge: bool = False) -> Doc:
        return await self.edit_services(account_id, lambda doc: {
            **doc, "overrides": deep_update(doc["overrides"], overrides) if merge else overrides},
            audited=("overrides_set", itemgetter("overrides")))

    async def set_manual(self, account_id: str, manual: Any, merge: bool = False) -> Doc:
        validate_counts(manual, "$.Quantities")

        def edit(doc: Doc) -> Doc:
            current = doc["quantities"]["manual"]
            merged = deep_update(current, manual) if merge else manual
            doc["quantities"]["manual"] = merged
            return doc

        return await self.edit_services(account_id, edit, audited=(
            "manual_set", lambda doc: doc["quantities"]["manual"]))

    async def set_default_plan(self, reseller_id: str, plan_id: str | None) -> Doc:
        account = await self.existing_account(reseller_id)
        if not account["is_reseller"] and reseller_id != await self.master_id():
            raise Forbidden(f"{reseller_id} is neither a reseller nor the master")
        if plan_id is not None:
            await self.get_plan(reseller_id, plan_id)
        return await self.edit_services(reseller_id, lambda doc: {**doc, "default_plan": plan_id})

    # --- dirty accounts: claimed with a lease, released clean only if unchanged -----------

    async def touch_billed_by(self, reseller_id: str) -> None:
        """Every account whose default bookkeeper is the reseller's: its clients, and itself
        when it has no reseller of its own (the master). A bookkeeper switch bills them anew
        (the old bookkeeper gets the removal of what it billed), in chunks: no unit grows with
        the reseller's size."""
        keys = [reseller_id, *await self.store.find_keys("accounts", "tree", reseller_id)]
        for start in range(0, len(keys), TOUCH_CHUNK):
            async def chunk(keys: list[str] = keys[start:start + TOUCH_CHUNK]) -> None:
                for found in (await self.store.get_many("accounts", keys)).values():
                    if (found.doc["reseller_id"] or found.key) == reseller_id:
                        await self._touch(found.key)

            await self._unit(chunk)

    async def touch(self, account_id: str) -> None:
        """Mark dirty (a reseller after its customers synced)."""
        await self._unit(lambda: self._touch(account_id))

    # --- sync results and the local bookkeeper's ledger ------------------------------------

    async def record_sync_result(self, account_id: str, sync_id: str, result: Doc) -> None:
        await self.store.put("sync_results", f"{account_id}/{sync_id}",
                             {"account_id": account_id, **result}, 0)

    async def append_book_ledger(self, account_id: str, idempotency_key: str,
                                 invoice: Doc) -> bool:
        """Idempotent by key: False when that invoice was already written."""
        try:
            await self.store.put("book_ledger", idempotency_key,
                                 {"account_id": account_id, "invoice": invoice,
                                  "at": self.clock()}, 0)
        except VersionConflict:
            return False
        return True


def _log_plan_warnings(vendor_id: str, plan_id: str, warnings: list[Violation]) -> None:
    """A plan stored with what ``svc plans lint`` warns about: the operator sees it in the
    logs, whichever door stored it."""
    for warning in warnings:
        log.warning("plan %s stored with a warning: %s: %s", plan_id, warning.path,
                    warning.rule, extra={"account_id": vendor_id, "event": "plan_warning"})


def _plans_change(account_id: str, added: list[str], removed: list[str]
                  ) -> Callable[[Doc], Event]:
    return lambda doc: PlansChange(account_id=account_id, added=added, removed=removed,
                                   plans=doc["plans"])


def _assigning(doc: Doc, plan_id: str, vendor_id: str, overrides: Doc | None, merge: bool
               ) -> Doc:
    """``doc`` with ``plan_id`` assigned; without ``overrides`` it keeps those in place."""
    current = doc["plans"].get(plan_id, {}).get("overrides", {})
    if overrides is None:
        chosen = current
    else:
        chosen = deep_update(current, overrides) if merge else overrides
    return _with_plan(doc, plan_id, vendor_id, chosen)


def _removing(doc: Doc, plan_id: str, account_id: str) -> Doc:
    if plan_id not in doc["plans"]:
        raise NotAssigned(f"plan {plan_id} is not assigned to {account_id}")
    plans = {k: v for k, v in doc["plans"].items() if k != plan_id}
    return {**doc, "plans": plans, "plan_keys": _plan_keys(plans)}


def _plan_audited(found: Versioned | None) -> Doc | None:
    if found is None or found.doc.get("deleted"):
        return None
    return {"plan_id": found.doc["id"], "version": found.version, "doc": found.doc["doc"]}


def _plan_keys(plans: Doc) -> list[str]:
    return sorted(plan_key(entry["vendor_id"], plan_id) for plan_id, entry in plans.items())


def _with_plan(doc: Doc, plan_id: str, vendor_id: str, overrides: Doc) -> Doc:
    plans = {**doc["plans"], plan_id: {"vendor_id": vendor_id, "overrides": overrides}}
    return {**doc, "plans": plans, "plan_keys": _plan_keys(plans)}

