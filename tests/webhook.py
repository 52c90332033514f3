"""Driving the webhook bookkeeper process (``sync/http_bookkeeper.py``, the
``http_bookkeeper`` fixture): how it answers next, and what it was sent."""

from __future__ import annotations

import aiohttp

from svc.jsonio import loads


async def set_mode(url: str, mode: str) -> None:
    async with aiohttp.ClientSession() as session:
        await (await session.post(f"{url}/mode", json={"mode": mode})).read()


async def received(url: str) -> list[dict]:
    async with aiohttp.ClientSession() as session:
        return loads(await (await session.get(f"{url}/received")).read())
