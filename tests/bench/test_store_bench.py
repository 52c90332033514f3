"""Store benchmarks, against the embedded SQLite store, figures side by side.

- doc-change application for an account that already has many documents vs an empty one
  (target ratio >= 0.9: the cost follows the tree depth, not the document count);
- reconcile of an account with that many documents;
- the summary read of a reseller whose descendants hold many documents vs one with none
  (it reads one precomputed document and never scans them).
Large fixtures are bulk-loaded through the port (``put_many``).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "store"))

from changes import account_doc, change, device  # noqa: E402

from svc.store import Repository  # noqa: E402
from svc.store.records import new_services  # noqa: E402
from svc.store.sqlite import SQLiteStore  # noqa: E402


async def bulk_account(store, repo, account_id: str, tree: list[str], documents: int) -> None:
    """An attached account with ``documents`` counted devices, written in bulk."""
    await repo.apply_doc_change(change(account_id, account_doc(account_id, tree), 1))
    counts = {"devices": {"sip_device": 1}}
    for start in range(0, documents, 50_000):
        await store.put_many("ledger", [
            (f"{account_id}/dev{n}", {"account_id": account_id, "doc_id": f"dev{n}",
                                      "type": "device", "rev": 1, "deleted": False,
                                      "counts": counts})
            for n in range(start, min(documents, start + 50_000))])
    totals = {"devices": {"sip_device": documents}} if documents else {}
    services = await store.get("services", account_id)
    doc = services.doc if services else new_services(account_id)
    doc["quantities"] = {**doc["quantities"], "raw": totals, "account": totals}
    await store.put("services", account_id, doc, services.version if services else 0)
    for ancestor in tree:
        found = await store.get("services", ancestor)
        cascade = found.doc["quantities"]["cascade"].get("devices", {}).get("sip_device", 0)
        found.doc["quantities"]["cascade"] = {"devices": {"sip_device": cascade + documents}}
        await store.put("services", ancestor, found.doc, found.version)


async def apply_rate(repo, account_id: str, start: int, count: int) -> float:
    began = time.perf_counter()
    for n in range(start, start + count):
        await repo.apply_doc_change(change(account_id, device(f"new{n}"), 1))
    return count / (time.perf_counter() - began)


async def read_rate(repo, account_id: str, count: int) -> float:
    began = time.perf_counter()
    for _ in range(count):
        await repo.services(account_id)
    return count / (time.perf_counter() - began)


async def test_store_benchmarks(tmp_path, full_size):
    existing = 100_000 if full_size else 2_000
    descendants_docs = 1_000_000 if full_size else 10_000
    per_round = 1_000 if full_size else 100
    store = SQLiteStore(tmp_path / "bench.db")
    await store.open()
    repo = Repository(store)
    try:
        await repo.apply_doc_change(change("m", account_doc("m", []), 1))
        await bulk_account(store, repo, "big", ["m"], existing)
        await bulk_account(store, repo, "empty", ["m"], 0)

        big, empty = [], []
        for round_ in range(3):  # interleaved rounds, medians compared
            big.append(await apply_rate(repo, "big", round_ * per_round, per_round))
            empty.append(await apply_rate(repo, "empty", round_ * per_round, per_round))
        ratio = statistics.median(big) / statistics.median(empty)

        began = time.perf_counter()
        assert await repo.reconcile("big") == []
        reconcile_s = time.perf_counter() - began

        await repo.apply_doc_change(change("r", account_doc("r", ["m"], True), 1))
        await repo.apply_doc_change(change("lonely", account_doc("lonely", ["m"], True), 1))
        for n in range(10):
            await bulk_account(store, repo, f"sub{n}", ["m", "r"], descendants_docs // 10)
        cascade = (await repo.services("r"))["quantities"]["cascade"]
        assert cascade == {"devices": {"sip_device": descendants_docs}}
        reseller_reads = await read_rate(repo, "r", 2_000)
        lonely_reads = await read_rate(repo, "lonely", 2_000)
    finally:
        await store.close()

    print(f"\nstore (SQLite): doc-change apply with {existing:,} existing documents "
          f"{statistics.median(big):,.0f}/s vs empty account {statistics.median(empty):,.0f}/s "
          f"(ratio {ratio:.2f}); reconcile of {existing:,} documents {reconcile_s:.2f} s; "
          f"summary read of a reseller over {descendants_docs:,} descendant documents "
          f"{reseller_reads:,.0f}/s vs {lonely_reads:,.0f}/s with none "
          f"(ratio {reseller_reads / lonely_reads:.2f})")
    if full_size:
        assert ratio >= 0.9
        assert reseller_reads / lonely_reads >= 0.8
