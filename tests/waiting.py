"""Bounded waiting for an asynchronous outcome (never sleep-and-hope)."""

from __future__ import annotations

import asyncio


async def eventually(check, timeout: float = 10.0, interval: float = 0.02):
    """Poll ``check`` (async, returns a truthy value when done) until it is, or fail."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
