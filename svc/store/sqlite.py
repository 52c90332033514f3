"""SQLite adapter of the store port: the embedded default (one file, WAL, versioned schema).

One writing connection, serialised by a lock: SQLite has one writer at a time anyway, and a
file belongs to one svc process (more replicas need MongoDB). Its statements run on the
loop's thread: one takes microseconds, while a hop to a connection's thread and back takes a
loop turn, which under load is milliseconds, and the write lock was held across every hop
(units waited on each other, not on the disk). So a unit never yields once begun. Reads
outside a unit take a read-only connection of their own, on the loop's thread as well: in
WAL they see the last commit without waiting for the writer. What may wait on the disk or on
another process stays off the loop: checkpoints run in a thread, a busy file is waited for
with the loop free.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sqlite3
import time
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


BUSY_TIMEOUT_MS = 5000
CHECKPOINT_EVERY_S = 1.0
CHECKPOINT_BUSY_MS = 100


def versions_query(keys: int) -> str:
    """A primary-key search (a row-value ``(coll, key) IN (VALUES …)`` would scan)."""
    return f"SELECT key, version FROM docs WHERE coll = ? AND key IN ({','.join('?' * keys)})"


class SQLiteStore(DocumentStore):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._writer: sqlite3.Connection | None = None  # on the loop's thread
        self._checkpointer: aiosqlite.Connection | None = None
        self._checkpoint_task: asyncio.Task[None] | None = None
        self._checkpointed_at = 0.0
        self._read_db: aiosqlite.Connection | None = None  # the same, while the file is busy
        self._reader: sqlite3.Connection | None = None  # reads outside a unit, on the loop
        self._lock = asyncio.Lock()
        self._in_transaction = contextvars.ContextVar(f"sqlite-tx-{id(self)}", default=False)

    @property
    def writer(self) -> sqlite3.Connection:
        if self._writer is None:
            raise RuntimeError("store is not open")
        return self._writer

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = sqlite3.connect(self.path, isolation_level=None, timeout=0)
        # WAL with synchronous=NORMAL survives a killed process (not a power cut) and lets
        # readers of other tools look at the file while svc writes; a commit then writes the
        # log without waiting for the disk. Checkpoints, which do wait for it, run in a thread
        # of their own (``_checkpoint``), never in a commit on the loop.
        self._writer.execute("PRAGMA journal_mode=WAL")
        self._writer.execute("PRAGMA synchronous=NORMAL")
        self._writer.execute("PRAGMA wal_autocheckpoint=0")
        await self._migrate()
        self._checkpointer = await aiosqlite.connect(self.path, isolation_level=None)
        # a reader still on an old snapshot holds a checkpoint up, and units wait for it
        await self._checkpointer.execute(f"PRAGMA busy_timeout={CHECKPOINT_BUSY_MS}")
        read_only = f"{self.path.resolve().as_uri()}?mode=ro"
        self._read_db = await aiosqlite.connect(read_only, uri=True, isolation_level=None)
        await self._read_db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self._reader = sqlite3.connect(read_only, uri=True, isolation_level=None,
                                       check_same_thread=False, timeout=0)

    async def _migrate(self) -> None:
        db = self.writer
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
        rows = db.execute("SELECT version FROM schema_version").fetchall()
        applied = rows[0][0] if rows else 0
        # at start only, before anything else runs on the loop: waiting for another process's
        # write lock may block it
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        for number, script in enumerate(MIGRATIONS[applied:], start=applied + 1):
            with _translated():
                db.executescript(f"BEGIN IMMEDIATE; {script}; DELETE FROM schema_version;"
                                 f" INSERT INTO schema_version VALUES ({number}); COMMIT;")
        db.execute("PRAGMA busy_timeout=0")
        async with self.transaction():  # the indexed fields as this version declares them
            before = set(db.execute("SELECT coll, field FROM index_fields").fetchall())
            wanted = {(coll, field) for coll, fields in INDEXED_FIELDS.items() for field in fields}
            db.execute("DELETE FROM index_fields")
            db.executemany("INSERT INTO index_fields (coll, field) VALUES (?, ?)", sorted(wanted))
            # a field indexed from this version on: the documents already stored get its rows
            for coll in sorted({coll for coll, _ in wanted - before}):
                db.execute("UPDATE docs SET doc = doc WHERE coll = ?", (coll,))

    async def close(self) -> None:
        if self._checkpoint_task is not None:
            await asyncio.gather(self._checkpoint_task, return_exceptions=True)
            self._checkpoint_task = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        for name in ("_read_db", "_checkpointer"):
            if (connection := getattr(self, name)) is not None:
                await connection.close()
                setattr(self, name, None)
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    @property
    def _reads(self) -> aiosqlite.Connection:
        if self._read_db is None:
            raise RuntimeError("store is not open")
        return self._read_db

    @property
    def _loop_reader(self) -> sqlite3.Connection:
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
                await self._begun()
                try:
                    yield
                    with _translated():
                        self.writer.execute("COMMIT")
                except BaseException:
                    if self.writer.in_transaction:
                        self.writer.execute("ROLLBACK")
                    raise
                self._checkpoint_soon()
            finally:
                self._in_transaction.reset(token)

    async def _begun(self) -> None:
        """BEGIN IMMEDIATE without blocking the loop: while another process (``svc import``)
        holds the write lock, wait for it here, up to the busy timeout."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        pause = 0.001
        while True:
            try:
                with _translated():
                    self.writer.execute("BEGIN IMMEDIATE")
                return
            except StoreBusy:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.05)

    def _checkpoint_soon(self) -> None:
        """At most one checkpoint waiting or running, and one a second."""
        now = time.monotonic()
        if (self._checkpoint_task is None or self._checkpoint_task.done()) and (
                now - self._checkpointed_at >= CHECKPOINT_EVERY_S):
            self._checkpointed_at = now
            self._checkpoint_task = asyncio.create_task(self._checkpoint())

    async def _checkpoint(self) -> None:
        """The log copied into the database and emptied, in a thread, under the write lock:
        with no unit writing meanwhile, the checkpoint completes and the log starts again
        from its beginning (a checkpoint beside a steady writer never catches up with it, and
        the log grew by gigabytes an hour). Units wait for it with the loop free."""
        if self._checkpointer is None:
            return
        async with self._lock:
            with contextlib.suppress(sqlite3.Error):  # a reader held on: the next one will do
                await self._checkpointer.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """A unit reads on the writer, to see its own writes; any other read on the read-only
        connection of the loop's thread: a few indexed rows cost less than the round trip to
        a connection's thread and the loop turn back, which under load is what bounds an
        answer; a WAL reader does not wait for the writer, and never blocks the loop
        (timeout 0): if the file is busy anyway, the read takes the thread's way."""
        with _translated():
            if self._in_transaction.get():
                return self.writer.execute(sql, params).fetchall()
            with contextlib.suppress(sqlite3.OperationalError):
                return self._loop_reader.execute(sql, params).fetchall()
            return list(await self._reads.execute_fetchall(sql, params))

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
                rows = await self._rows(versions_query(len(chunk)), (collection, *chunk))
                found.update(((collection, key), version) for key, version in rows)
        return found

    async def commit_marker(self) -> int | None:
        """SQLite's ``data_version`` of the version reader, which never writes: it moves
        with every commit, this process's writer's as well as any other's."""
        if self._in_transaction.get():
            return None  # a unit's own writes are not committed yet
        with contextlib.suppress(sqlite3.OperationalError):
            return self._loop_reader.execute("PRAGMA data_version").fetchone()[0]
        return None

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
        """One statement, its triggers included, is atomic: outside a unit it is one."""
        if not self._in_transaction.get():
            async with self.transaction():
                return await self._write(sql, params)
        with _translated():
            return self.writer.execute(sql, params).rowcount

    async def put_many(self, collection: str, docs: Sequence[tuple[str, Doc]]) -> None:
        async with self.transaction():
            with _translated():
                self.writer.executemany(
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
