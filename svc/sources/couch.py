"""The CouchDB (BigCouch) adapter of the document source, over CouchDB's HTTP API.

Database names are used as KAZOO gives them, already percent-encoded, so the URL is built
with ``encoded=True`` (``account%2F4e%2F5a%2F…`` must reach CouchDB with its ``%2F``).
Reads go through ``_all_docs?include_docs=true``: with ``keys`` for a micro-batch (one request
per database), paged by ``startkey`` for an import. ``seq`` values are never read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import aiohttp
import orjson
from yarl import URL

from .abc import Doc, DocumentSource, Fetched, SourceUnavailable, revision_number

UNAVAILABLE = (aiohttp.ClientError, TimeoutError, ValueError)


class CouchSource(DocumentSource):
    def __init__(self, url: str, timeout_s: float = 10.0,
                 session: aiohttp.ClientSession | None = None) -> None:
        base = URL(url)
        self._auth = (aiohttp.BasicAuth(base.user or "", base.password or "")
                      if base.user else None)
        self._base = str(base.with_user(None).with_password(None)).rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session = session
        self._own_session = session is None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def _url(self, path: str, **query: str) -> URL:
        url = URL(f"{self._base}/{path}", encoded=True)
        return url.update_query(query) if query else url

    async def _request(self, method: str, url: URL, body: Any = None) -> tuple[int, Any]:
        try:
            async with self._http().request(
                    method, url, auth=self._auth, timeout=self._timeout,
                    data=None if body is None else orjson.dumps(body),
                    headers={"Content-Type": "application/json",
                             "Accept": "application/json"}) as response:
                payload = await response.read()
                status = response.status
        except UNAVAILABLE as error:
            raise SourceUnavailable(f"CouchDB {method} {url.path}: {error!r}") from error
        if status >= 500 or status in (401, 403, 429):
            raise SourceUnavailable(f"CouchDB {method} {url.path}: HTTP {status}")
        try:
            return status, orjson.loads(payload) if payload else None
        except orjson.JSONDecodeError as error:
            raise SourceUnavailable(f"CouchDB {method} {url.path}: not JSON") from error

    async def fetch(self, database: str, ids: Iterable[str]) -> dict[str, Fetched]:
        wanted = list(dict.fromkeys(ids))
        found = {doc_id: Fetched(None, None) for doc_id in wanted}
        if not wanted:
            return found
        status, answer = await self._request(
            "POST", self._url(f"{database}/_all_docs", include_docs="true"), {"keys": wanted})
        if status == 404:  # no such database: nothing in it exists
            return found
        if status != 200 or not isinstance(answer, dict):
            raise SourceUnavailable(f"CouchDB _all_docs of {database}: HTTP {status}")
        for row in answer.get("rows", []):
            key = row.get("key")
            if key not in found:
                continue
            value = row.get("value") or {}
            doc = row.get("doc")
            rev = revision_number(value.get("rev"))
            live = isinstance(doc, dict) and not value.get("deleted") and not doc.get("_deleted")
            found[key] = Fetched(rev, doc if live else None)
        return found

    async def pages(self, database: str, page_size: int) -> AsyncIterator[list[Doc]]:
        start: str | None = None
        while True:
            query = {"include_docs": "true", "limit": str(page_size + 1)}
            if start is not None:
                query["startkey"] = orjson.dumps(start).decode()
            status, answer = await self._request(
                "GET", self._url(f"{database}/_all_docs", **query))
            if status == 404:
                return
            if status != 200 or not isinstance(answer, dict):
                raise SourceUnavailable(f"CouchDB _all_docs of {database}: HTTP {status}")
            rows = answer.get("rows", [])
            page = [row["doc"] for row in rows[:page_size]
                    if isinstance(row.get("doc"), dict)
                    and not str(row.get("id", "")).startswith("_design/")]
            if page:
                yield page
            if len(rows) <= page_size:
                return
            start = rows[page_size]["id"]

    async def ping(self) -> None:
        status, _ = await self._request("GET", self._url(""))
        if status != 200:
            raise SourceUnavailable(f"CouchDB answered HTTP {status}")

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
