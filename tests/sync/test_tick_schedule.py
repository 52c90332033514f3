"""The sync loop ticks every interval, counted from the start of a tick: a tick that takes
most of an interval does not push the next one back (an account changing all the time is
billed every interval). Real sync loop on a real store, its ticks slowed."""

from __future__ import annotations

import asyncio

from svc.store import Repository
from svc.sync.loop import SyncLoop

INTERVAL_S = 0.5
TICK_S = 0.4  # a pause after each tick would start them 0.9 s apart


async def test_ticks_start_an_interval_apart_however_long_they_take(repo: Repository,
                                                                   monkeypatch):
    loop = SyncLoop(repo, lambda _: None, owner="test", batch=10,  # type: ignore[arg-type]
                    lease_s=30, retry_base_s=1, retry_max_s=1, delinquent_recheck_s=3600)
    clock = asyncio.get_running_loop().time
    starts: list[float] = []
    slow_tick = loop.tick

    async def tick(stop: asyncio.Event | None = None) -> int:
        starts.append(clock())
        await asyncio.sleep(TICK_S)
        return await slow_tick(stop)

    monkeypatch.setattr(loop, "tick", tick)
    stop = asyncio.Event()
    running = asyncio.create_task(loop.run(INTERVAL_S, stop))
    async with asyncio.timeout(10):
        while len(starts) < 5 and not running.done():
            await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(running, 5)

    gaps = [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
    assert all(gap >= INTERVAL_S - 0.01 for gap in gaps), gaps
    assert sorted(gaps)[len(gaps) // 2] < INTERVAL_S + TICK_S / 2, gaps
