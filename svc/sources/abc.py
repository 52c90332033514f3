"""The document-source port: read documents of KAZOO's databases by id, page through a
database, and say whether the source answers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

Doc = dict[str, Any]


class SourceUnavailable(Exception):
    """The source is down, timing out or refusing us: retry later, never drop the notice."""


@dataclass(frozen=True)
class Fetched:
    """One document as the source has it now. ``doc`` is ``None`` for a deleted document
    (CouchDB tombstone, or never there): ``rev`` is then the tombstone's, when known."""

    rev: int | None
    doc: Doc | None


def revision_number(rev: Any) -> int | None:
    """The number before "-" in a CouchDB ``_rev``."""
    if isinstance(rev, str):
        head = rev.split("-", 1)[0]
        if head.isdigit():
            return int(head)
    return None


class DocumentSource(ABC):
    @abstractmethod
    async def fetch(self, database: str, ids: Iterable[str]) -> dict[str, Fetched]:
        """The current state of each of ``ids`` in ``database`` (encoded as KAZOO names
        it, ``account%2F4e%2F5a%2F…``); every id asked for is in the answer."""

    @abstractmethod
    def pages(self, database: str, page_size: int) -> AsyncIterator[list[Doc]]:
        """Every live document of ``database`` (design documents left out), a page at a
        time, in id order; a missing database has none."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise ``SourceUnavailable`` unless the source answers now."""

    async def close(self) -> None:  # noqa: B027 - a source without resources has nothing to do
        """Release connections."""
