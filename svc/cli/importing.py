"""``svc import``: rebuild every account's counts from the cluster's CouchDB."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..jsonio import dumps
from ..models.replies import ReconcileReply
from .inputs import fail

if TYPE_CHECKING:
    from ..ingest.importer import ImportReport
    from ..settings import Settings

CHANGES_LISTED = 1000  # as reconcile_req lists them


def register(app: typer.Typer) -> None:
    app.command("import")(import_cluster)


def import_cluster(
    restart: Annotated[bool, typer.Option(
        "--restart", help="start over instead of resuming an unfinished import")] = False,
    concurrency: Annotated[int, typer.Option(min=1, help="account databases read at once")] = 4,
    page_size: Annotated[int, typer.Option(min=1, help="documents per _all_docs page")] = 1000,
) -> None:
    """Import a running cluster: read `accounts` and every account database from
    SVC_COUCH_URL into the store at SVC_STORE_URL; resumable, idempotent, safe while svc
    serve ingests notices. Prints what changed, as reconcile_req does."""
    from ..settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as error:
        fail(str(error))
    if settings.couch_url is None:
        fail("SVC_COUCH_URL: required (the cluster's CouchDB, http://user:pass@host:5984)")
    report = asyncio.run(_run(settings, restart, concurrency, page_size))
    changes = ReconcileReply(changed=bool(report.changes),
                             changes=report.changes[:CHANGES_LISTED],
                             changes_total=len(report.changes))
    typer.echo(dumps({"Accounts": report.accounts, "Documents": report.documents,
                      **changes.wire()}, indent=True).decode())


async def _run(settings: Settings, restart: bool, concurrency: int, page_size: int
               ) -> ImportReport:
    from ..ingest.importer import Importer
    from ..sources import SourceUnavailable
    from ..sources.couch import CouchSource
    from ..store import Repository, store_from_url

    assert settings.couch_url is not None

    store = store_from_url(settings.store_url)
    await store.open()
    source = CouchSource(settings.couch_url.get_secret_value(), settings.couch_timeout_s)
    terminal = Console(stderr=True)  # stdout carries the JSON report
    progress = Progress(TextColumn("importing accounts"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[documents]} documents"), TimeElapsedColumn(),
                        console=terminal, disable=not terminal.is_terminal)
    task = progress.add_task("import", total=None, documents=0)

    def on_progress(done: int, total: int, documents: int) -> None:
        progress.update(task, completed=done, total=total, documents=documents)

    repo = Repository(store, master_account_id=settings.master_account_id,
                      sync_buffer_s=settings.sync_buffer_s)
    importer = Importer(repo, source, settings.number_classifiers, page_size=page_size,
                        concurrency=concurrency, on_progress=on_progress)
    try:
        with progress:
            return await importer.run(resume=not restart)
    except SourceUnavailable as error:
        fail(f"SVC_COUCH_URL: {error} (run svc import again to resume)")
    finally:
        await source.close()
        await store.close()
