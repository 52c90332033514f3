"""Reading KAZOO document-change notices (SPEC §6, §13): pure decisions, no I/O.

``read_notice`` turns one notice into a ``Notice`` (or says why it is ignored, or raises
``Poison``); a notice without ``Doc`` is completed from the document source by the consumer;
``document_change`` turns a complete notice into what the store applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from ..quantities import NumberClassifier, document_contributions
from ..store import AccountFields, DocChange
from .databases import ACCOUNTS_DB, account_of_database

Doc = dict[str, Any]
DOC_EVENTS = {"doc_created", "doc_edited", "doc_deleted"}
APPS_STORE_ID = "apps_store"
_REV = re.compile(r"^(\d+)(?:-|$)")


class Poison(ValueError):
    """A notice that can never be applied; the message is its dead-letter reason."""


@dataclass(frozen=True)
class Ignored:
    reason: str


@dataclass(frozen=True)
class Notice:
    """One document's change as announced: where, which revision, and the body when the
    publisher included it. ``doc_type`` is ``None`` for KAZOO's ``undefined`` (a delete by
    id, as a number unassigned from an account): the store's ledger knows the type."""

    account_id: str
    database: str | None
    doc_id: str
    doc_type: str | None
    rev: int | None
    deleted: bool
    doc: Doc | None

    @property
    def needs_document(self) -> bool:
        return not self.deleted and self.doc is None


@dataclass(frozen=True)
class PlanWrite:
    """A service plan's change: stored under its vendor, ordered by the same revision ledger
    as every other document."""

    vendor_id: str
    plan_id: str
    rev: int | None
    doc: Doc | None  # None: deleted


def _revision(rev: Any) -> int:
    match = _REV.match(rev) if isinstance(rev, str) else None
    if match is None:
        raise Poison("Rev: must be a string like \"3-abc…\"")
    return int(match.group(1))


def _is_true(value: Any) -> bool:
    return value is True or value == "true"


def read_notice(notice: Any) -> Notice | Ignored:
    if not isinstance(notice, dict):
        raise Poison("body must be a JSON object")
    event = notice.get("Event-Name")
    if isinstance(event, str) and event.startswith("db_"):
        return Ignored("database event")
    if event not in DOC_EVENTS:
        raise Poison(f"Event-Name: {event!r} is not a document change")
    doc_id, database = notice.get("ID"), notice.get("Database")
    if not isinstance(doc_id, str) or not doc_id:
        raise Poison("ID: required")
    if database is not None and not isinstance(database, str):
        raise Poison("Database: must be a string")
    deleted = event == "doc_deleted" or _is_true(notice.get("Is-Soft-Deleted"))
    doc = notice.get("Doc")
    if doc is not None and not isinstance(doc, dict):
        raise Poison("Doc: must be an object")
    doc_type = notice.get("Type") or (doc or {}).get("pvt_type")
    if doc_id == APPS_STORE_ID:  # it has no pvt_type
        doc_type = APPS_STORE_ID
    if doc_type is not None and not isinstance(doc_type, str):
        raise Poison("Type: must be a string (the document's pvt_type)")
    if doc_type is None and not deleted:
        return Ignored("document of no type")
    if doc_type == "account":
        if database not in (None, ACCOUNTS_DB):  # its copy in the account's own database
            return Ignored("account document outside the accounts database")
        account_id = doc_id
    elif database is None:
        account_id = notice.get("Account-ID")
        if not isinstance(account_id, str) or not account_id:
            raise Poison("Account-ID: required (or an account Database)")
    else:
        account_id = account_of_database(database)
        if account_id is None:  # numbers%2F…, faxes, dedicated_ips, monthly databases, …
            return Ignored("not an account database")
    rev = None if deleted and notice.get("Rev") is None else _revision(notice.get("Rev"))
    return Notice(account_id, database, doc_id, doc_type, rev, deleted, doc)


def completed(notice: Notice, rev: int | None, doc: Doc | None) -> Notice:
    """The notice with the body read from the source (``None``: deleted there)."""
    doc_type = notice.doc_type
    if doc is not None and notice.doc_id != APPS_STORE_ID:
        doc_type = doc.get("pvt_type") or doc_type
    return replace(notice, rev=rev, doc=doc, deleted=doc is None, doc_type=doc_type)


def document_change(notice: Notice, classifiers: tuple[NumberClassifier, ...]
                    ) -> DocChange | PlanWrite:
    """What the store applies for a complete notice (one that needs no document)."""
    assert not notice.needs_document
    doc = {} if notice.deleted else notice.doc or {}
    if notice.doc_type == "service_plan":
        return PlanWrite(notice.account_id, notice.doc_id, notice.rev,
                         None if notice.deleted else {**doc, "_id": notice.doc_id})
    fields = None
    if notice.doc_type == "account" and not notice.deleted:
        tree = doc.get("pvt_tree") or []
        if not isinstance(tree, list) or not all(isinstance(a, str) for a in tree):
            raise Poison("Doc.pvt_tree: must be a list of account ids")
        fields = AccountFields(tuple(tree), _is_true(doc.get("pvt_reseller")),
                               doc.get("pvt_enabled") not in (False, "false"), doc.get("name"),
                               _is_true(doc.get("pvt_superduper_admin")))
    contribution = document_contributions(doc, classifiers)  # nothing for a deleted one
    return DocChange(notice.account_id, notice.doc_id, notice.doc_type, notice.rev,
                     notice.deleted, contribution.counts, fields, contribution.object_plans)
