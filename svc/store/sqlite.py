"""SQLite adapter of the store port: the embedded default (one file, WAL, versioned schema).

One writing connection, serialised by a lock: SQLite has one writer at a time anyway, and a
file belongs to one svc process (more replicas need MongoDB, SPEC §12). Reads outside a unit
take a read-only connection of their own: in WAL they see the last commit without waiting for
a unit in progress, so a long sync batch does not hold up answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from ..jsonio import dumps, loads
from .abc import (
    DIRTY_COLLECTION,
    DIRTY_FLAG,
    DIRTY_SINCE,
    INDEXED_FIELDS,
    Doc,
    DocumentStore,
    Ref,
    StoreBusy,
    VersionConflict,
    Versioned,
    due_of,
)

# Each entry is one migration script, applied once in order; the schema's version is their
# count. The index rows are kept by triggers, so a write is one statement (one round trip
# to the connection's thread) and atomic on its own.
_INDEX_ROWS = """
    INSERT OR IGNORE INTO doc_index (coll, field, value, key)
    SELECT new.coll, f.field, j.value, new.key
    FROM index_fields f, json_each(new.doc, '$.' || f.field) j
    WHERE f.coll = new.coll AND j.type = 'text';
"""
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE docs (
        coll TEXT NOT NULL, key TEXT NOT NULL, version INTEGER NOT NULL,
        doc TEXT NOT NULL, due_at REAL,
        PRIMARY KEY (coll, key)
    ) WITHOUT ROWID;
    CREATE INDEX docs_due ON docs (coll, due_at) WHERE due_at IS NOT NULL;
    CREATE TABLE doc_index (
        coll TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL, key TEXT NOT NULL,
        PRIMARY KEY (coll, field, value, key)
    ) WITHOUT ROWID;
    CREATE INDEX doc_index_by_key ON doc_index (coll, key);
    CREATE TABLE index_fields (
        coll TEXT NOT NULL, field TEXT NOT NULL, PRIMARY KEY (coll, field)
    ) WITHOUT ROWID;
    CREATE TRIGGER docs_index_insert AFTER INSERT ON docs BEGIN
    """ + _INDEX_ROWS + """
    END;
    CREATE TRIGGER docs_index_update AFTER UPDATE OF doc ON docs BEGIN
        DELETE FROM doc_index WHERE coll = new.coll AND key = new.key;
    """ + _INDEX_ROWS + """
    END;
    """,
    # delete (the outbox's relayed events): a deleted document leaves no index rows
    """
    CREATE TRIGGER docs_index_delete AFTER DELETE ON docs BEGIN
        DELETE FROM doc_index WHERE coll = old.coll AND key = old.key;
    END;
    """,
)


@contextmanager
def _translated() -> Iterator[None]:
    """SQLite's busy and locked errors as the port's ``StoreBusy``: another connection (another
    process on the same file) held the write lock longer than ``busy_timeout``, which says
    nothing about the unit, so it may succeed later. Every other error propagates as it is."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        # extended codes (SQLITE_BUSY_SNAPSHOT, …) keep the primary code in their low byte
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise StoreBusy(f"SQLite {exc}") from exc
        raise


def versions_query(keys: int) -> str:
    """A primary-key search (a row-value ``(coll, key) IN (VALUES …)`` would scan)."""
    return f"SELECT key, version FROM docs WHERE coll = ? AND key IN ({','.join('?' * keys)})"


class SQLiteStore(DocumentStore):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None
        self._read_db: aiosqlite.Connection | None = None  # reads outside a unit
        self._reader: sqlite3.Connection | None = None  # versions only, on the loop's thread
        self._lock = asyncio.Lock()
        self._in_transaction = contextvars.ContextVar(f"sqlite-tx-{id(self)}", default=False)

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        # WAL with synchronous=NORMAL survives a killed process (not a power cut) and lets
        # readers of other tools look at the file while svc writes
        await self.db.execute("PRAGMA journal_mode=WAL")
        await self.db.execute("PRAGMA synchronous=NORMAL")
        await self.db.execute("PRAGMA busy_timeout=5000")
        await self._migrate()
        read_only = f"{self.path.resolve().as_uri()}?mode=ro"
        self._read_db = await aiosqlite.connect(read_only, uri=True, isolation_level=None)
        await self._read_db.execute("PRAGMA busy_timeout=5000")
        self._reader = sqlite3.connect(read_only, uri=True, isolation_level=None,
                                       check_same_thread=False, timeout=0)

    async def _migrate(self) -> None:
        await self.db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
        rows = await self.db.execute_fetchall("SELECT version FROM schema_version")
        applied = rows[0][0] if rows else 0
        for number, script in enumerate(MIGRATIONS[applied:], start=applied + 1):
            await self.db.executescript(
                f"BEGIN; {script}; DELETE FROM schema_version;"
                f" INSERT INTO schema_version VALUES ({number}); COMMIT;")
        async with self.transaction():  # the indexed fields as this version declares them
            before = set(await self.db.execute_fetchall("SELECT coll, field FROM index_fields"))
            wanted = {(coll, field) for coll, fields in INDEXED_FIELDS.items() for field in fields}
            await self.db.execute("DELETE FROM index_fields")
            await self.db.executemany("INSERT INTO index_fields (coll, field) VALUES (?, ?)",
                                      sorted(wanted))
            # a field indexed from this version on: the documents already stored get its rows
            for coll in sorted({coll for coll, _ in wanted - before}):
                await self.db.execute("UPDATE docs SET doc = doc WHERE coll = ?", (coll,))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._read_db is not None:
            await self._read_db.close()
            self._read_db = None
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def _reads(self) -> aiosqlite.Connection:
        if self._read_db is None:
            raise RuntimeError("store is not open")
        return self._read_db

    @property
    def _version_reader(self) -> sqlite3.Connection:
        if self._reader is None:
            raise RuntimeError("store is not open")
        return self._reader

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self._in_transaction.get():  # nested: part of the enclosing unit
            yield
            return
        async with self._lock:
            token = self._in_transaction.set(True)
            try:
                with _translated():
                    await self.db.execute("BEGIN IMMEDIATE")
                try:
                    yield
                    with _translated():
                        await self.db.commit()
                except BaseException:
                    # a commit that failed busy leaves the transaction open: the next unit
                    # could not begin on this connection
                    await self.db.rollback()
                    raise
            finally:
                self._in_transaction.reset(token)

    async def _rows(self, sql: str, params: Sequence[Any]) -> list[sqlite3.Row]:
        # one statement is atomic on its own: a read needs no BEGIN/COMMIT round trips
        # a unit must see its own writes; any other read takes the read-only connection
        db = self.db if self._in_transaction.get() else self._reads
        with _translated():
            return list(await db.execute_fetchall(sql, params))

    async def _get(self, collection: str, key: str) -> Versioned | None:
        rows = await self._rows("SELECT version, doc FROM docs WHERE coll = ? AND key = ?",
                                (collection, key))
        return Versioned(key, rows[0][0], loads(rows[0][1])) if rows else None

    async def _get_many(self, collection: str, wanted: list[str]) -> dict[str, Versioned]:
        found: dict[str, Versioned] = {}
        for start in range(0, len(wanted), 500):  # stay under SQLite's variable limit
            chunk = wanted[start:start + 500]
            marks = ",".join("?" * len(chunk))
            rows = await self._rows(
                f"SELECT key, version, doc FROM docs WHERE coll = ? AND key IN ({marks})",
                (collection, *chunk))
            found.update({k: Versioned(k, v, loads(d)) for k, v, d in rows})
        return found

    async def versions(self, refs: Iterable[Ref]) -> dict[Ref, int]:
        by_collection: dict[str, list[str]] = {}
        for collection, key in dict.fromkeys(refs):
            by_collection.setdefault(collection, []).append(key)
        found: dict[Ref, int] = {}
        for collection, keys in by_collection.items():
            for start in range(0, len(keys), 500):  # stay under SQLite's variable limit
                chunk = keys[start:start + 500]
                rows = await self._version_rows(versions_query(len(chunk)),
                                                 (collection, *chunk))
                found.update(((collection, key), version) for key, version in rows)
        return found

    async def commit_marker(self) -> int | None:
        """SQLite's ``data_version`` of the version reader, which never writes: it moves
        with every commit, this process's writer's as well as any other's."""
        if self._in_transaction.get():
            return None  # a unit's own writes are not committed yet
        with contextlib.suppress(sqlite3.OperationalError):
            return self._version_reader.execute("PRAGMA data_version").fetchone()[0]
        return None

    async def _version_rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        if not self._in_transaction.get():
            # a few primary-key lookups cost less than the round trip to the connection's
            # thread and the GIL hand-off back, which under load is what bounds a memoized
            # answer; a WAL reader does not wait for the writer, and never blocks the loop
            # (timeout 0): if the file is busy anyway, the lookup takes the thread's way
            with contextlib.suppress(sqlite3.OperationalError):
                return self._version_reader.execute(sql, params).fetchall()
        return await self._rows(sql, params)  # in a unit: must see its own writes

    async def put(self, collection: str, key: str, doc: Doc, expected_version: int) -> int:
        body, due = dumps(doc).decode(), due_of(doc)
        if expected_version == 0:
            try:
                await self._write("INSERT INTO docs (coll, key, version, doc, due_at)"
                                  " VALUES (?, ?, 1, ?, ?)", (collection, key, body, due))
            except sqlite3.IntegrityError:
                raise VersionConflict(f"{collection}/{key} already exists") from None
        else:
            changed = await self._write(
                "UPDATE docs SET version = version + 1, doc = ?, due_at = ?"
                " WHERE coll = ? AND key = ? AND version = ?",
                (body, due, collection, key, expected_version))
            if changed != 1:
                raise VersionConflict(f"{collection}/{key} is not at version {expected_version}")
        return expected_version + 1

    async def delete(self, collection: str, key: str, expected_version: int) -> None:
        deleted = await self._write("DELETE FROM docs WHERE coll = ? AND key = ? AND version = ?",
                                    (collection, key, expected_version))
        if deleted != 1:
            raise VersionConflict(f"{collection}/{key} is not at version {expected_version}")

    async def _write(self, sql: str, params: Sequence[Any]) -> int:
        """One statement, its triggers included, is atomic: no BEGIN/COMMIT of its own."""
        with _translated():
            if self._in_transaction.get():
                return (await self.db.execute(sql, params)).rowcount
            async with self._lock:
                return (await self.db.execute(sql, params)).rowcount

    async def put_many(self, collection: str, docs: Sequence[tuple[str, Doc]]) -> None:
        async with self.transaction():
            with _translated():
                await self.db.executemany(
                    "INSERT INTO docs (coll, key, version, doc, due_at) VALUES (?, ?, 1, ?, ?)"
                    " ON CONFLICT (coll, key) DO UPDATE SET version = version + 1,"
                    " doc = excluded.doc, due_at = excluded.due_at",
                    [(collection, key, dumps(doc).decode(), due_of(doc)) for key, doc in docs])

    async def _find_keys(self, collection: str, field: str, value: Any) -> list[str]:
        rows = await self._rows(
            "SELECT key FROM doc_index WHERE coll = ? AND field = ? AND value = ? ORDER BY key",
            (collection, field, value))
        return [row[0] for row in rows]

    async def find_due(self, collection: str, upto: float, limit: int) -> list[Versioned]:
        rows = await self._rows(
            "SELECT key, version, doc FROM docs WHERE coll = ? AND due_at IS NOT NULL"
            " AND due_at <= ? ORDER BY due_at, key LIMIT ?", (collection, upto, limit))
        return [Versioned(k, v, loads(d)) for k, v, d in rows]

    async def dirty_stats(self) -> tuple[int, float | None]:
        # a dirty document always has a due time, so the partial due index narrows the scan
        rows = await self._rows(
            "SELECT count(*), min(json_extract(doc, ?)) FROM docs WHERE coll = ?"
            " AND due_at IS NOT NULL AND json_extract(doc, ?) = 1",
            (f"$.{DIRTY_SINCE}", DIRTY_COLLECTION, f"$.{DIRTY_FLAG}"))
        count, since = rows[0]
        return count, None if since is None else float(since)

    async def scan(self, collection: str) -> AsyncIterator[Versioned]:
        after = ""
        while True:
            rows = await self._rows(
                "SELECT key, version, doc FROM docs WHERE coll = ? AND key > ?"
                " ORDER BY key LIMIT 1000", (collection, after))
            for key, version, doc in rows:
                yield Versioned(key, version, loads(doc))
            if len(rows) < 1000:
                return
            after = rows[-1][0]
