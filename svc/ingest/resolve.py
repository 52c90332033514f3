"""Completing notices that carry no ``Doc`` from the document source.

One read per database per micro-batch; the revision rule decides what each read means.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass

from ..sources import DocumentSource, Fetched
from .databases import ACCOUNTS_DB, account_database
from .notices import Notice, completed


@dataclass(frozen=True)
class Lagging:
    """The source has an older revision than the notice announced: a replica behind."""

    notice: Notice
    fetched_rev: int


def revision_rule(notice: Notice, fetched: Fetched) -> Notice | Lagging:
    """A fetched revision older than the notice's is a lagging replica; a missing,
    ``_deleted`` or ``pvt_deleted`` document is a deletion at the notice's revision; else the
    document is applied at the fetched revision (later notices of older revisions are then
    ignored by the ledger)."""
    if fetched.rev is not None and notice.rev is not None and fetched.rev < notice.rev:
        return Lagging(notice, fetched.rev)
    doc = fetched.doc
    if doc is None or doc.get("pvt_deleted") in (True, "true"):
        return completed(notice, notice.rev, None)
    return completed(notice, fetched.rev, doc)


def database_of(notice: Notice) -> str:
    if notice.database is not None:
        return notice.database
    return ACCOUNTS_DB if notice.doc_type == "account" else account_database(notice.account_id)


async def complete_notices(source: DocumentSource, notices: list[Notice]
                           ) -> list[Notice | Lagging]:
    """Each notice completed, in the order given; ``SourceUnavailable`` if any read fails."""
    wanted: dict[str, list[str]] = defaultdict(list)
    for notice in notices:
        wanted[database_of(notice)].append(notice.doc_id)
    databases = list(wanted)
    answers = await asyncio.gather(*(source.fetch(db, wanted[db]) for db in databases))
    fetched = dict(zip(databases, answers, strict=True))
    return [revision_rule(notice, fetched[database_of(notice)][notice.doc_id])
            for notice in notices]
