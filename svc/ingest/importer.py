"""Import of a running cluster: every account rebuilt from the document source.

``accounts`` first (the trees), then each account's database, a few at a time: its live
documents go into the ledger at their revisions, documents the ledger counts that the source
no longer has become deletions, and the account is recounted; at the end every cascade is
recounted. Each step obeys the revision rule, so an import is idempotent, may run while
notices flow, and a run stopped half-way is resumed from the accounts not yet done.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..quantities import NumberClassifier
from ..sources import DocumentSource
from ..store import DocChange, QuantityChange, Repository
from .databases import ACCOUNTS_DB, account_database
from .notices import APPS_STORE_ID, Notice, PlanWrite, document_change

Doc = dict[str, Any]
RUN = ("meta", "import_run")  # the run in progress; each account it did is in "imports"


@dataclass
class ImportReport:
    accounts: int = 0
    documents: int = 0
    changes: list[QuantityChange] = field(default_factory=list)


def _notice(account_id: str, database: str, doc: Doc) -> Notice | None:
    """A source document as the notice of its current revision; ``None``: not counted."""
    doc_id = doc.get("_id")
    doc_type = APPS_STORE_ID if doc_id == APPS_STORE_ID else doc.get("pvt_type")
    if not isinstance(doc_id, str) or not isinstance(doc_type, str):
        return None
    if (doc_type == "account") != (database == ACCOUNTS_DB):  # as for notices
        return None
    rev = doc.get("_rev", "")
    head = rev.split("-", 1)[0] if isinstance(rev, str) else ""
    deleted = doc.get("pvt_deleted") in (True, "true")
    return Notice(doc_id if doc_type == "account" else account_id, database, doc_id, doc_type,
                  int(head) if head.isdigit() else None, deleted, None if deleted else doc)


class Importer:
    def __init__(self, repo: Repository, source: DocumentSource,
                 classifiers: tuple[NumberClassifier, ...], *, page_size: int = 1000,
                 concurrency: int = 4,
                 on_progress: Callable[[int, int, int], None] | None = None) -> None:
        self.repo = repo
        self.source = source
        self.classifiers = classifiers
        self.page_size = page_size
        self.concurrency = concurrency
        self.on_progress = on_progress  # (accounts done, accounts in all, documents read)

    async def run(self, only: str | None = None, resume: bool = True) -> ImportReport:
        """Every account (or ``only`` that one, without touching the resume record)."""
        report = ImportReport()
        accounts = await self._accounts(report, only)
        run = None if only else await self._run_id(resume)
        done = await self._done(run) if run else set()
        todo = [account for account in accounts if account not in done]
        report.accounts = len(accounts)
        finished = len(accounts) - len(todo)
        self._progress(finished, len(accounts), report.documents)
        gate = asyncio.Semaphore(self.concurrency)

        async def one(account_id: str) -> None:
            nonlocal finished
            async with gate:
                report.changes += await self._account(account_id, report)
                if run is not None:
                    await self._mark_done(run, account_id)
                finished += 1
                self._progress(finished, len(accounts), report.documents)

        tasks = [asyncio.create_task(one(account_id)) for account_id in todo]
        try:
            await asyncio.gather(*tasks)
        except BaseException:  # the source went away, or we are cancelled: stop them all
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        report.changes += await self.repo.recount_cascades(
            await self._ancestors_too(accounts) if only else accounts)
        if run is not None:
            await self._finish()
        return report

    def _progress(self, done: int, total: int, documents: int) -> None:
        if self.on_progress is not None:
            self.on_progress(done, total, documents)

    async def _accounts(self, report: ImportReport, only: str | None) -> list[str]:
        """The account documents applied, parents before children; their ids."""
        changes: list[DocChange] = []
        async for page in self.source.pages(ACCOUNTS_DB, self.page_size):
            for doc in page:
                notice = _notice("", ACCOUNTS_DB, doc)
                if notice is not None and (only is None or notice.doc_id == only):
                    change = document_change(notice, self.classifiers)
                    assert isinstance(change, DocChange)
                    changes.append(change)
            report.documents += len(page)
        changes.sort(key=lambda change: len(change.account.tree) if change.account else 0)
        for start in range(0, len(changes), self.page_size):
            for result in await self.repo.apply_doc_changes(
                    changes[start:start + self.page_size]):
                report.changes += result.changes
        return [change.account_id for change in changes if not change.deleted]

    async def _account(self, account_id: str, report: ImportReport) -> list[QuantityChange]:
        database = account_database(account_id)
        changes: list[DocChange] = []
        listed: set[str] = set()
        async for page in self.source.pages(database, self.page_size):
            report.documents += len(page)
            for doc in page:
                notice = _notice(account_id, database, doc)
                if notice is None:
                    continue
                listed.add(notice.doc_id)
                change = document_change(notice, self.classifiers)
                if isinstance(change, PlanWrite):
                    await self._write_plan(change)
                else:
                    changes.append(change)
        for deletion in await self._deleted_since(account_id, database, listed):
            if deletion.doc_type == "service_plan":  # the plan goes with its ledger entry
                await self._write_plan(PlanWrite(account_id, deletion.doc_id, deletion.rev,
                                                 None))
            else:
                changes.append(deletion)
        return await self.repo.rebuild_ledger(account_id, changes)

    async def _deleted_since(self, account_id: str, database: str,
                             listed: set[str]) -> list[DocChange]:
        """Deletions for what the ledger has live and the source no longer lists: at the
        tombstone's revision, or just above the ledger's one when the source has none."""
        counted = {doc_id: entry
                   for doc_id, entry in (await self.repo.counted_documents(account_id)).items()
                   if doc_id not in listed and entry["type"] != "account"}
        if not counted:
            return []
        fetched = await self.source.fetch(database, counted)
        deletions = []
        for doc_id, entry in counted.items():
            found = fetched[doc_id]
            if found.doc is not None:  # created since the listing: its notice counts it
                continue
            rev = found.rev if found.rev is not None else entry["rev"] + 1
            deletions.append(DocChange(account_id, doc_id, entry["type"], rev, True))
        return deletions

    async def _write_plan(self, write: PlanWrite) -> None:
        """By the revision rule, as a notice's: a plan already at its revision is neither
        written again nor dirties its accounts."""
        await self.repo.apply_plan_change(write.vendor_id, write.plan_id, write.rev,
                                          write.doc)

    async def _ancestors_too(self, accounts: Iterable[str]) -> list[str]:
        ids: list[str] = []
        for account_id in accounts:
            account = await self.repo.account(account_id)
            ids += [*(account["tree"] if account else []), account_id]
        return list(dict.fromkeys(ids))

    async def _run_id(self, resume: bool) -> str:
        """The unfinished run to resume, or a new one."""
        store = self.repo.store
        found = await store.get(*RUN)
        if resume and found is not None and not found.doc["finished"]:
            return found.doc["run"]
        run = uuid.uuid4().hex
        await store.put(*RUN, {"run": run, "finished": False}, found.version if found else 0)
        return run

    async def _done(self, run: str) -> set[str]:
        return set(await self.repo.store.find_keys("imports", "run", run))

    async def _mark_done(self, run: str, account_id: str) -> None:
        store = self.repo.store
        found = await store.get("imports", account_id)
        await store.put("imports", account_id, {"run": run}, found.version if found else 0)

    async def _finish(self) -> None:
        store = self.repo.store
        found = await store.get(*RUN)
        assert found is not None
        await store.put(*RUN, {**found.doc, "finished": True}, found.version)
