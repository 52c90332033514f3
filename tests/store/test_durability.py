"""Data written before a process is killed with SIGKILL is there after restart (SQLite:
the embedded store is the one whose durability this machine can prove)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from svc.store import Repository
from svc.store.sqlite import SQLiteStore, versions_query

WRITER = textwrap.dedent("""
    import asyncio, sys
    sys.path.insert(0, sys.argv[2])
    from changes import account_doc, change, device
    from svc.store import Repository
    from svc.store.sqlite import SQLiteStore

    async def main():
        store = SQLiteStore(sys.argv[1])
        await store.open()
        repo = Repository(store)
        await repo.apply_doc_change(change("m", account_doc("m", []), 1))
        await repo.apply_doc_change(change("a", account_doc("a", ["m"]), 1))
        n = 0
        while True:  # until killed: report each change once it is committed
            await repo.apply_doc_change(change("a", device(f"d{n}"), 1))
            n += 1
            print(n, flush=True)

    asyncio.run(main())
""")


async def test_committed_changes_survive_kill_9(tmp_path):
    path = tmp_path / "svc.db"
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), os.path.dirname(__file__)],
        stdout=subprocess.PIPE, text=True)
    committed = 0
    deadline = time.monotonic() + 60
    try:
        while committed < 300 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            committed = int(line)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    # lines printed before the kill but not read yet still count as reported
    committed = max([committed, *(int(line) for line in child.stdout.read().split())])
    assert committed >= 300, "the writer did not get going"

    store = SQLiteStore(path)
    await store.open()
    try:
        repo = Repository(store)
        survived = (await repo.services("a"))["quantities"]["account"]["devices"]["sip_device"]
        # every reported change is there (one more may have committed before the kill)
        assert committed <= survived <= committed + 1
        assert (await repo.services("m"))["quantities"]["cascade"] == {
            "devices": {"sip_device": survived}}
        assert await repo.reconcile_all() == []  # no torn write: ledger and totals agree
    finally:
        await store.close()


async def test_version_checks_search_the_primary_key(tmp_path):
    """They run on the event loop's thread: a scan there would stall the whole service."""
    store = SQLiteStore(tmp_path / "plan.db")
    await store.open()
    try:
        plan = store._loop_reader.execute(
            f"EXPLAIN QUERY PLAN {versions_query(3)}", ("plans", "a", "b", "c")).fetchall()
    finally:
        await store.close()
    assert [row[3] for row in plan] == ["SEARCH docs USING PRIMARY KEY (coll=? AND key=?)"]
