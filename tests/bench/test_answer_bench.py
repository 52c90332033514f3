"""What the answer memo saves (``svc/memo.py``): ``summary_req`` and ``quote_req`` answered
in-process from the store, memoized against computed afresh, side by side in one run. The
RPC benchmark repeats requests against an unchanged account, so it measures the memoized
path; this one shows the cost of a request after a change."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from store.changes import account_with_plan

from svc.amqp.envelope import envelope, new_msg_id
from svc.amqp.rpc import answer
from svc.handlers import HANDLERS
from svc.jsonio import dumps, loads
from svc.store import Repository
from svc.store.sqlite import SQLiteStore

PLAN = loads((Path(__file__).parent / "fixtures" / "ten-item-plan.json").read_text())
ROUNDS = 3


def request(name: str, **fields) -> bytes:
    return dumps(envelope("services", name, "bench@answer", new_msg_id(),
                          **{"Account-ID": "a", "Server-ID": "q", **fields}))


async def per_second(handlers, repo, body: bytes, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        result = await answer(handlers, repo, body, "bench", 1 << 20)
        assert result.outcome == "success", result.message
        dumps(result.message)
    return count / (time.perf_counter() - started)


async def test_memoized_against_fresh_answers(full_size, tmp_path):
    store = SQLiteStore(tmp_path / "answer.db")
    await store.open()
    repo = Repository(store)
    await account_with_plan(repo, PLAN, devices=5)
    fresh = {key: handler.__wrapped__ for key, handler in HANDLERS.items()
             if hasattr(handler, "__wrapped__")}
    bodies = {"summary": request("summary_req"),
              "quote": request("quote_req", Changes={"devices": {"sip_device": 1}})}
    count = 2000 if full_size else 100
    rates: dict[tuple[str, str], list[float]] = {}
    for _ in range(ROUNDS):
        for name, body in bodies.items():
            for path, handlers in (("memoized", HANDLERS), ("fresh", fresh)):
                rates.setdefault((name, path), []).append(
                    await per_second(handlers, repo, body, count))
    await store.close()
    medians = {key: statistics.median(values) for key, values in rates.items()}
    figures = []
    for name in bodies:
        memoized, computed = medians[(name, "memoized")], medians[(name, "fresh")]
        figures.append(f"{name} memoized {memoized:,.0f}/s vs fresh {computed:,.0f}/s "
                       f"({memoized / computed:.1f}x)")
    print("\nanswers in-process, median of 3: " + "; ".join(figures))
    for name in bodies:
        assert medians[(name, "memoized")] > medians[(name, "fresh")]
