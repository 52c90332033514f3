"""A real CouchDB-API server for the tests, and the few requests they make to it.

``CouchServer`` runs pouchdb-server 4.2.0 (the version KAZOO's fixture generator used; pinned
in ``couch/package.json``, installed by ``make couch``) on 127.0.0.1 and a free port, with its
databases in a directory of the test's own. ``couch/README.md`` lists where it differs from
CouchDB.

The helpers write KAZOO revisions exactly as ``tests/fixtures/kazoo_wire/revisions.json``
holds them (see "To replay" in that directory's README.md)::

    for entry, history in with_histories(revisions):
        await write_revision(url, entry["database"], entry["body"], history)
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import errno
import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

ROOT = Path(__file__).resolve().parent.parent
COUCH_DIR = ROOT / "couch"
SERVER_BIN = COUCH_DIR / "node_modules" / "pouchdb-server" / "bin" / "pouchdb-server"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "kazoo_wire"

HOST = "127.0.0.1"
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=15)
# Like CouchDB, pouchdb-server answers text/plain unless the client accepts JSON.
JSON_HEADERS = {"Accept": "application/json"}


class CouchNotInstalled(RuntimeError):
    """node or the pinned pouchdb-server is missing: ``make couch`` installs it."""


class CouchStartError(RuntimeError):
    """The server did not answer in time (the message ends with the tail of its log)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # node listens with SO_REUSEADDR too, so connections of the previous run left in
        # TIME_WAIT do not count as "taken".
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return False
            raise
    return True


_RUNNING: set[CouchServer] = set()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_RUNNING):
        server.stop()


class CouchServer:
    """One pouchdb-server process on 127.0.0.1.

    ``data_dir`` holds everything it writes: ``db/`` (one leveldb directory per database),
    ``config.json`` (its ``/_config``), ``log.txt`` (its CouchDB-style log) and
    ``pouchdb-server.log`` (its stdout and stderr, one header line per start). The port is
    chosen on the first ``start()`` and kept, so ``stop()`` then ``start()`` brings the same
    URL back, and with the leveldb adapter (the default) the same data. ``in_memory=True``
    uses the memory adapter: every start is empty.

    ``start()`` and ``stop()`` block (at most ``start_timeout`` / ``stop_timeout`` seconds);
    in an async test that must keep its event loop running meanwhile, use ``astart()`` and
    ``astop()``.
    """

    def __init__(self, data_dir: Path | str, *, in_memory: bool = False,
                 port: int | None = None, start_timeout: float = 20.0,
                 stop_timeout: float = 10.0) -> None:
        self.data_dir = Path(data_dir)
        self.in_memory = in_memory
        self.port = port
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.log_path = self.data_dir / "pouchdb-server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the server has no port before its first start()")
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> CouchServer:
        if self.running:
            return self
        node = shutil.which("node")
        if node is None:
            raise CouchNotInstalled(
                "node is not installed: the CouchDB tests run pouchdb-server on Node.js; "
                "install node and npm, then run `make couch`")
        if not SERVER_BIN.is_file():
            raise CouchNotInstalled(
                f"pouchdb-server is not installed ({SERVER_BIN.relative_to(ROOT)} is "
                "missing): run `make couch`")
        if self.port is None:
            self.port = free_port()
        elif not self._wait_port_free(min(self.start_timeout, 5.0)):
            raise CouchStartError(f"port {self.port} of {self.url} is taken by another "
                                  "process: cannot start pouchdb-server there again")
        db_dir = self.data_dir / "db"
        db_dir.mkdir(parents=True, exist_ok=True)
        command = [node, str(SERVER_BIN), "--host", HOST, "--port", str(self.port),
                   "--dir", str(db_dir), "--config", str(self.data_dir / "config.json"),
                   "--no-color"]
        if self.in_memory:
            command.append("--in-memory")
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            log.write(f"=== {time.strftime('%Y-%m-%dT%H:%M:%S')} start: "
                      f"{' '.join(command)}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                command, cwd=self.data_dir, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
        _RUNNING.add(self)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``stop_timeout`` seconds. Idempotent."""
        process, self._process = self._process, None
        _RUNNING.discard(self)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def kill(self) -> None:
        """SIGKILL at once (a crash rather than a stop)."""
        process, self._process = self._process, None
        _RUNNING.discard(self)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(5)

    async def astart(self) -> CouchServer:
        return await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    def __enter__(self) -> CouchServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        """The last lines this server wrote since its latest start."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                text = log.read().decode(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _wait_port_free(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not _port_is_free(self.port):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last_error = "no answer yet"
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise CouchStartError(
                    f"pouchdb-server exited with status {self._process.returncode} before "
                    f"answering at {self.url}; its log:\n{self.log_tail()}")
            if "already in use" in self.log_tail(400):
                raise CouchStartError(f"port {self.port} is already in use; pouchdb-server "
                                      f"log:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=1) as answer:
                    welcome = json.load(answer)
                if "express-pouchdb" in welcome or "couchdb" in welcome:
                    return
                last_error = f"unexpected answer {welcome!r}"
            except (OSError, ValueError) as error:
                last_error = repr(error)
            if time.monotonic() > deadline:
                raise CouchStartError(
                    f"pouchdb-server did not answer GET {self.url}/ within "
                    f"{self.start_timeout:g} s ({last_error}); its log:\n{self.log_tail()}")
            time.sleep(0.1)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"CouchServer({self.data_dir}, port={self.port}, {state})"


# --- requests -------------------------------------------------------------------------------

def db_url(url: str, database: str) -> URL:
    """``database`` is already percent-encoded (``account%2F44%2F70%2F…``) and sent as is."""
    return URL(f"{url.rstrip('/')}/{database}", encoded=True)


def doc_url(url: str, database: str, doc_id: str) -> URL:
    """A document's URL: the id percent-encoded (``+13125987124`` → ``%2B13125987124``)."""
    return URL(f"{url.rstrip('/')}/{database}/{quote(doc_id, safe='')}", encoded=True)


def client_session() -> aiohttp.ClientSession:
    """A session for the test server: bounded requests, JSON answers."""
    return aiohttp.ClientSession(timeout=REQUEST_TIMEOUT, headers=JSON_HEADERS)


@contextlib.asynccontextmanager
async def _session(session: aiohttp.ClientSession | None):
    if session is not None:
        yield session
        return
    async with client_session() as own:
        yield own


async def create_db(url: str, database: str, *,
                    session: aiohttp.ClientSession | None = None) -> bool:
    """PUT the database; True if created, False if it existed already (412)."""
    async with _session(session) as http, http.put(db_url(url, database)) as answer:
        if answer.status == 412:
            return False
        if answer.status not in (201, 202):
            raise AssertionError(f"PUT /{database}: {answer.status} {await answer.text()}")
        return True


def revisions_field(history: Sequence[str]) -> dict[str, Any]:
    """``_revisions`` for a document whose revisions were ``history`` (oldest first)."""
    if not history:
        raise ValueError("a revision history needs at least the current revision")
    generations, hexes = [], []
    for rev in history:
        number, _, hexa = rev.partition("-")
        if not number.isdigit() or not hexa:
            raise ValueError(f"not a revision: {rev!r}")
        generations.append(int(number))
        hexes.append(hexa)
    start = generations[-1]
    if generations != list(range(start - len(history) + 1, start + 1)):
        raise ValueError(f"revisions are not consecutive generations: {list(history)}")
    return {"start": start, "ids": hexes[::-1]}


async def write_revision(url: str, database: str, body: dict[str, Any],
                         history: Sequence[str], *,
                         session: aiohttp.ClientSession | None = None) -> None:
    """Store ``body`` (with its ``_id`` and ``_rev``) exactly as given, as the child of the
    earlier revisions in ``history``: the document's revs in this database, oldest first,
    ending with ``body["_rev"]`` (appended when missing). Without that ancestry CouchDB keeps
    each revision as a competing branch, and a deletion may lose to an older live leaf."""
    rev = body["_rev"]
    if not history or history[-1] != rev:
        history = [*history, rev]
    doc = {**body, "_revisions": revisions_field(history)}
    payload = {"docs": [doc], "new_edits": False}
    target = URL(f"{db_url(url, database)}/_bulk_docs", encoded=True)
    async with _session(session) as http, http.post(target, json=payload) as answer:
        text = await answer.text()
        if answer.status not in (201, 202):
            raise AssertionError(f"_bulk_docs {database} {body.get('_id')} {rev}: "
                                 f"{answer.status} {text}")
        errors = [row for row in json.loads(text) if "error" in row]
        if errors:
            raise AssertionError(f"_bulk_docs {database} {body.get('_id')} {rev}: {errors}")


async def get_doc(url: str, database: str, doc_id: str, *,
                  session: aiohttp.ClientSession | None = None) -> tuple[int, dict[str, Any]]:
    """``GET /<database>/<id>``: (status, body)."""
    async with _session(session) as http, http.get(doc_url(url, database, doc_id)) as answer:
        return answer.status, await answer.json(content_type=None)


async def all_docs(url: str, database: str, keys: Iterable[str], *,
                   include_docs: bool = True,
                   session: aiohttp.ClientSession | None = None) -> dict[str, Any]:
    """``POST /<database>/_all_docs`` with ``{"keys": [...]}``."""
    target = URL(f"{db_url(url, database)}/_all_docs", encoded=True)
    if include_docs:
        target = target.with_query(include_docs="true")
    async with _session(session) as http, http.post(
            target, json={"keys": list(keys)}) as answer:
        if answer.status != 200:
            raise AssertionError(f"_all_docs {database}: {answer.status} {await answer.text()}")
        return await answer.json(content_type=None)


# --- the KAZOO fixtures ---------------------------------------------------------------------

def load_revisions() -> list[dict[str, Any]]:
    """``tests/fixtures/kazoo_wire/revisions.json``: KAZOO's revisions in save order."""
    return json.loads((FIXTURES / "revisions.json").read_text())


def with_histories(revisions: Iterable[dict[str, Any]]
                   ) -> Iterator[tuple[dict[str, Any], list[str]]]:
    """Each revision with its history for ``write_revision``: the revs of the same
    (database, id) seen so far, oldest first, this one last."""
    seen: dict[tuple[str, str], list[str]] = {}
    for entry in revisions:
        history = seen.setdefault((entry["database"], entry["id"]), [])
        history.append(entry["rev"])
        yield entry, list(history)

