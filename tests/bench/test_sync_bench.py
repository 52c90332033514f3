"""10,000 dirty accounts synced through the local bookkeeper (under 30 s).

The accounts are loaded through the repository (one plan, one device each), then one
``SyncLoop.tick`` claims and syncs them all, in-process, against the embedded SQLite store.
"""

from __future__ import annotations

import time

from svc.bookkeepers.local import LocalBookkeeper
from svc.store import AccountFields, DocChange, Repository
from svc.store.sqlite import SQLiteStore
from svc.sync.loop import SyncLoop


async def test_sync_throughput(tmp_path, full_size):
    accounts = 10_000 if full_size else 300
    store = SQLiteStore(tmp_path / "sync.db")
    await store.open()
    repo = Repository(store)
    try:
        await repo.apply_doc_change(DocChange("m", "m", "account", 1,
                                              account=AccountFields((), False)))
        await repo.put_plan("m", "p", {"plan": {"devices": {"_all": {"rate": 1,
                                                                     "activation_charge": 2}}}})
        await repo.set_default_plan("m", "p")
        for start in range(0, accounts, 200):
            await repo.apply_doc_changes([
                change for n in range(start, min(accounts, start + 200)) for change in (
                    DocChange(f"a{n}", f"a{n}", "account", 1,
                              account=AccountFields(("m",), False)),
                    DocChange(f"a{n}", "d1", "device", 1,
                              counts={"devices": {"sip_device": 1}}))])
        local = LocalBookkeeper(repo)
        loop = SyncLoop(repo, lambda bookkeeper: local, owner="bench", batch=100,
                        lease_s=60, retry_base_s=5, retry_max_s=3600,
                        delinquent_recheck_s=3600)
        started = time.perf_counter()
        synced = await loop.tick()
        elapsed = time.perf_counter() - started
        ledger = [entry async for entry in store.scan("book_ledger")]
        events = [entry.doc["name"] async for entry in store.scan("outbox")]
    finally:
        await store.close()
    assert len(ledger) == accounts and events.count("bookkeeper_sync") == accounts
    print(f"\nsync: {accounts:,} dirty accounts through the local bookkeeper in {elapsed:.1f} s "
          f"({synced / elapsed:,.0f} accounts/s, {synced:,} syncs incl. the master)")
    if full_size:
        assert elapsed < 30
