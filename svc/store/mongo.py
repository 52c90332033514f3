"""MongoDB adapter of the store port (PyMongo's async API), for more than one svc replica.

One MongoDB collection per store collection. A stored document is
``{_id: key, v: version, doc: <JSON text>, due_at?: float, <indexed field>: [str, ...]}``:
the body stays JSON text so Decimal money round-trips exactly (BSON has no exact decimal
that Python's ``Decimal`` maps to), and the indexed fields are copied beside it as lists of
their string values, exactly what the SQLite adapter indexes, so a multikey index answers
both equality and membership.

Multi-document units run in MongoDB transactions, which need a replica set.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient, IndexModel, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    PyMongoError,
    WTimeoutError,
)
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from ..jsonio import dumps, loads
from .abc import (
    DIRTY_COLLECTION,
    DIRTY_FLAG,
    DIRTY_SINCE,
    DUE_FIELD,
    INDEXED_FIELDS,
    Doc,
    DocumentStore,
    Ref,
    StoreBusy,
    StoreUnavailable,
    VersionConflict,
    Versioned,
    due_of,
    index_values,
)

_PROJECTION = {"v": 1, "doc": 1}
_BATCH = 1000  # documents per bulk write, per $in chunk and per scan page
_COMMIT_ATTEMPTS = 3


@dataclass
class _Tx:
    session: AsyncClientSession
    # a session runs one operation at a time; tasks gathered inside a unit share it
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@contextmanager
def _translated() -> Iterator[None]:
    """PyMongo's errors as the port's; what may succeed later is ``StoreUnavailable``, never
    an error of the caller's input. A network error wins over its transient label: with the
    server gone, re-running the unit at once would only fail again after the selection
    timeout."""
    try:
        yield
    except ConnectionFailure as exc:  # AutoReconnect, NotPrimaryError, ServerSelectionTimeout…
        raise StoreUnavailable(f"MongoDB unreachable: {exc}") from exc
    except PyMongoError as exc:
        if exc.has_error_label("TransientTransactionError"):  # e.g. a write conflict
            # the unit runs again at once; one that keeps failing ends as the repository's
            # Conflict, which the doc-change consumer retries later too
            raise VersionConflict(f"MongoDB transaction must be retried: {exc}") from exc
        if exc.has_error_label("UnknownTransactionCommitResult"):
            raise StoreUnavailable(f"MongoDB commit outcome unknown: {exc}") from exc
        # a primary stepping down or shutting down, a time limit or write concern not met
        if exc.has_error_label("RetryableWriteError") or isinstance(
                exc, (ExecutionTimeout, WTimeoutError)):
            raise StoreBusy(f"MongoDB busy: {exc}") from exc
        raise


def _update(collection: str, doc: Doc) -> dict[str, Any]:
    """The update that stores ``doc`` and bumps the version (an upsert starts it at 1)."""
    fields: dict[str, Any] = {"doc": dumps(doc).decode()}
    fields.update({f: index_values(doc.get(f)) for f in INDEXED_FIELDS.get(collection, ())})
    if collection == DIRTY_COLLECTION:  # copied beside the body for dirty_stats
        fields[DIRTY_FLAG] = doc.get(DIRTY_FLAG) is True
        fields[DIRTY_SINCE] = None if doc.get(DIRTY_SINCE) is None else float(doc[DIRTY_SINCE])
    update: dict[str, Any] = {"$set": fields, "$inc": {"v": 1}}
    due = due_of(doc)
    if due is None:  # absent from the partial index, so never due
        update["$unset"] = {DUE_FIELD: ""}
    else:
        fields[DUE_FIELD] = due
    return update


def _versioned(row: dict[str, Any]) -> Versioned:
    return Versioned(row["_id"], row["v"], loads(row["doc"]))


class MongoStore(DocumentStore):
    def __init__(self, url: str, database: str | None = None, *,
                 server_selection_timeout_ms: int = 5000) -> None:
        self.url = url
        self.database = database
        self.server_selection_timeout_ms = server_selection_timeout_ms
        self._client: AsyncMongoClient[dict[str, Any]] | None = None
        self._db: AsyncDatabase[dict[str, Any]] | None = None
        self._tx: contextvars.ContextVar[_Tx | None] = contextvars.ContextVar(
            f"mongo-tx-{id(self)}", default=None)

    @property
    def database_name(self) -> str:
        """The database in use: the constructor's, else the URL's, else "svc"."""
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db.name

    def _coll(self, collection: str) -> AsyncCollection[dict[str, Any]]:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db[collection]

    async def open(self) -> None:
        self._client = AsyncMongoClient(
            self.url, serverSelectionTimeoutMS=self.server_selection_timeout_ms, appname="svc")
        self._db = (self._client[self.database] if self.database
                    else self._client.get_default_database("svc"))
        try:
            with _translated():
                hello = await self._client.admin.command("hello")
                if "setName" not in hello and hello.get("msg") != "isdbgrid":
                    raise StoreUnavailable("MongoDB must be a replica set or sharded cluster:"
                                           " svc's transactions need one")
                for collection, fields in INDEXED_FIELDS.items():
                    # (field, _id) serves find_keys' filter and its order from the index
                    await self._coll(collection).create_indexes(
                        [IndexModel([(f, 1), ("_id", 1)]) for f in fields]
                        + [IndexModel([(DUE_FIELD, 1), ("_id", 1)],
                                      partialFilterExpression={DUE_FIELD: {"$exists": True}})])
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = self._db = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self._tx.get() is not None:  # nested: part of the enclosing unit
            yield
            return
        if self._client is None:
            raise RuntimeError("store is not open")
        # Not session.with_transaction: it re-runs a callback, and a context manager's body
        # cannot be re-run. Its transient-error retry is the caller's: such errors surface as
        # VersionConflict, which callers already answer by re-running the whole unit.
        with _translated():
            async with self._client.start_session() as session:
                await session.start_transaction(read_concern=ReadConcern("snapshot"),
                                                write_concern=WriteConcern("majority"))
                token = self._tx.set(_Tx(session))
                try:
                    yield
                except BaseException:
                    await session.abort_transaction()  # the server's errors are ignored
                    raise
                finally:
                    self._tx.reset(token)
                await self._commit(session)

    @staticmethod
    async def _commit(session: AsyncClientSession) -> None:
        for attempt in range(1, _COMMIT_ATTEMPTS + 1):
            try:
                await session.commit_transaction()
                return
            except PyMongoError as exc:
                # committing again is safe: the server answers a repeated commit of the same
                # transaction with its outcome
                if (attempt == _COMMIT_ATTEMPTS
                        or not exc.has_error_label("UnknownTransactionCommitResult")):
                    raise

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncClientSession | None]:
        """The enclosing transaction's session (None outside one), errors translated."""
        tx = self._tx.get()
        with _translated():
            if tx is None:
                yield None
            else:
                async with tx.lock:
                    yield tx.session

    async def _get(self, collection: str, key: str) -> Versioned | None:
        async with self._session() as s:
            row = await self._coll(collection).find_one({"_id": key}, _PROJECTION, session=s)
        return _versioned(row) if row else None

    async def _get_many(self, collection: str, wanted: list[str]) -> dict[str, Versioned]:
        found: dict[str, Versioned] = {}
        for start in range(0, len(wanted), _BATCH):
            async with self._session() as s:
                rows = await self._coll(collection).find(
                    {"_id": {"$in": wanted[start:start + _BATCH]}}, _PROJECTION,
                    session=s).to_list()
            found.update((row["_id"], _versioned(row)) for row in rows)
        return found

    async def versions(self, refs: Iterable[Ref]) -> dict[Ref, int]:
        by_collection: dict[str, list[str]] = {}
        for collection, key in dict.fromkeys(refs):
            by_collection.setdefault(collection, []).append(key)
        found: dict[Ref, int] = {}
        async with self._session() as s:
            for collection, keys in by_collection.items():
                rows = await self._coll(collection).find(
                    {"_id": {"$in": keys}}, {"v": 1}, session=s).to_list()
                found.update(((collection, row["_id"]), row["v"]) for row in rows)
        return found

    async def put(self, collection: str, key: str, doc: Doc, expected_version: int) -> int:
        update = _update(collection, doc)
        async with self._session() as s:
            if expected_version == 0:
                # an upsert that only inserts, rather than insert_one: a duplicate key error
                # would abort the enclosing transaction, and SQLite's does not
                insert = {**update["$set"], "v": 1}
                try:
                    result = await self._coll(collection).update_one(
                        {"_id": key}, {"$setOnInsert": insert}, upsert=True, session=s)
                    created = result.upserted_id is not None
                except DuplicateKeyError:  # a concurrent insert of the same key won
                    created = False
                if not created:
                    raise VersionConflict(f"{collection}/{key} already exists")
            else:
                result = await self._coll(collection).update_one(
                    {"_id": key, "v": expected_version}, update, session=s)
                if result.matched_count != 1:
                    raise VersionConflict(f"{collection}/{key} is not at version "
                                          f"{expected_version}")
        return expected_version + 1

    async def delete(self, collection: str, key: str, expected_version: int) -> None:
        async with self._session() as s:
            result = await self._coll(collection).delete_one(
                {"_id": key, "v": expected_version}, session=s)
        if result.deleted_count != 1:
            raise VersionConflict(f"{collection}/{key} is not at version {expected_version}")

    async def put_many(self, collection: str, docs: Sequence[tuple[str, Doc]]) -> None:
        # one write per key, the last one winning as in SQLite: unordered writes may reorder
        requests = [UpdateOne({"_id": key}, _update(collection, doc), upsert=True)
                    for key, doc in dict(docs).items()]
        async with self.transaction():
            for start in range(0, len(requests), _BATCH):
                async with self._session() as s:
                    await self._coll(collection).bulk_write(
                        requests[start:start + _BATCH], ordered=False, session=s)

    async def _find_keys(self, collection: str, field: str, value: Any) -> list[str]:
        if field not in INDEXED_FIELDS.get(collection, ()):  # SQLite indexes nothing else
            return []
        async with self._session() as s:
            rows = await self._coll(collection).find(
                {field: value}, {"_id": 1}, sort=[("_id", 1)], session=s).to_list()
        return [row["_id"] for row in rows]

    async def find_due(self, collection: str, upto: float, limit: int) -> list[Versioned]:
        if limit == 0:  # MongoDB reads a limit of 0 as "no limit", SQLite as none
            return []
        async with self._session() as s:
            rows = await self._coll(collection).find(
                {DUE_FIELD: {"$exists": True, "$lte": float(upto)}}, _PROJECTION,
                sort=[(DUE_FIELD, 1), ("_id", 1)], limit=max(limit, 0), session=s).to_list()
        return [_versioned(row) for row in rows]

    async def dirty_stats(self) -> tuple[int, float | None]:
        async with self._session() as s:
            rows = await (await self._coll(DIRTY_COLLECTION).aggregate([
                {"$match": {DUE_FIELD: {"$exists": True}, DIRTY_FLAG: True}},
                {"$group": {"_id": None, "count": {"$sum": 1},
                            "since": {"$min": f"${DIRTY_SINCE}"}}}], session=s)).to_list()
        if not rows:
            return 0, None
        return rows[0]["count"], rows[0]["since"]

    async def scan(self, collection: str) -> AsyncIterator[Versioned]:
        # pages by key, as SQLite: no cursor stays open while the caller works on a page
        after = ""
        while True:
            async with self._session() as s:
                rows = await self._coll(collection).find(
                    {"_id": {"$gt": after}}, _PROJECTION, sort=[("_id", 1)], limit=_BATCH,
                    session=s).to_list()
            for row in rows:
                yield _versioned(row)
            if len(rows) < _BATCH:
                return
            after = rows[-1]["_id"]
