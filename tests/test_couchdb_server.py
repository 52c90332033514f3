"""The CouchDB test server (tests/couchdb.py) against real KAZOO revisions: pouchdb-server
stores them exactly as written, a tombstone wins, a re-created document continues its
tombstone's branch, data survives stop()/start() on the same URL, and the differences from
CouchDB listed in couch/README.md are still what this server does."""

from __future__ import annotations

import aiohttp
import pytest
from couchdb import (
    CouchServer,
    all_docs,
    client_session,
    create_db,
    db_url,
    doc_url,
    get_doc,
    load_revisions,
    revisions_field,
    with_histories,
    write_revision,
)
from yarl import URL

pytestmark = pytest.mark.timeout(90)

DB = "account%2Fab%2Fcd%2Fef01"
REVISIONS = load_revisions()


def _documents() -> dict[tuple[str, str], list[dict]]:
    by_doc: dict[tuple[str, str], list[dict]] = {}
    for entry in REVISIONS:
        by_doc.setdefault((entry["database"], entry["id"]), []).append(entry)
    return by_doc


def _pick(ends_deleted: bool) -> list[dict]:
    """The first 30 revisions of one number document (an id with a '+') that has a
    tombstone: the one with most revisions whose last revision is (or is not) the tombstone."""
    candidates = [revs for (_, doc_id), revs in _documents().items()
                  if doc_id.startswith("+") and any(r["deleted"] for r in revs)
                  and revs[-1]["deleted"] == ends_deleted]
    return max(candidates, key=len)[:30]


DELETED = _pick(ends_deleted=True)        # ends as a tombstone: GET is a 404
RECREATED = _pick(ends_deleted=False)     # deleted, then saved again: GET is the last rev


def test_the_picked_documents_are_what_the_test_needs():
    assert len(DELETED) >= 3 and DELETED[-1]["deleted"]
    assert not any(r["deleted"] for r in DELETED[:-1])
    assert RECREATED[-1]["deleted"] is False
    assert any(r["deleted"] for r in RECREATED[:-1])
    assert DELETED[0]["id"] != RECREATED[0]["id"]


async def _replay(url: str, session: aiohttp.ClientSession) -> None:
    for revisions in (DELETED, RECREATED):
        for entry, history in with_histories(revisions):
            await write_revision(url, DB, entry["body"], history, session=session)


async def _check_final_state(url: str, session: aiohttp.ClientSession) -> None:
    deleted_id, recreated = DELETED[-1]["id"], RECREATED[-1]

    status, body = await get_doc(url, DB, deleted_id, session=session)
    assert status == 404 and body["error"] == "not_found", body

    status, body = await get_doc(url, DB, recreated["id"], session=session)
    assert status == 200, body
    assert body == recreated["body"]

    # One branch each: every revision is the child of the one before (the _revisions field).
    for revisions in (DELETED, RECREATED):
        final = revisions[-1]
        async with session.get(doc_url(url, DB, final["id"]).with_query(
                rev=final["rev"], revs="true")) as answer:
            stored = await answer.json()
        assert stored["_revisions"] == revisions_field([r["rev"] for r in revisions])
        async with session.get(
                doc_url(url, DB, final["id"]).with_query(open_revs="all")) as answer:
            leaves = await answer.json()
        assert [leaf["ok"]["_rev"] for leaf in leaves] == [final["rev"]]

    listing = await all_docs(url, DB, [deleted_id, recreated["id"], "+10000000000"],
                             session=session)
    rows = {row["key"]: row for row in listing["rows"]}
    assert rows[deleted_id]["value"] == {"rev": DELETED[-1]["rev"], "deleted": True}
    assert rows[deleted_id]["doc"] is None
    assert rows[recreated["id"]]["value"] == {"rev": recreated["rev"]}
    assert rows[recreated["id"]]["doc"] == recreated["body"]
    assert rows["+10000000000"]["error"] == "not_found"


async def test_replays_kazoo_revisions_into_an_encoded_database(couch_url):
    assert await create_db(couch_url, DB) is True
    assert await create_db(couch_url, DB) is False        # 412: exists, which is fine
    async with client_session() as session:
        await _replay(couch_url, session)
        await _check_final_state(couch_url, session)


async def test_data_and_url_survive_stop_and_start(tmp_path):
    with CouchServer(tmp_path / "couch") as server:
        url = server.url
        await create_db(url, DB)
        # One client, configured once with the URL, across the restart.
        async with client_session() as session:
            await _replay(url, session)
            await _check_final_state(url, session)

            await server.astop()
            assert not server.running
            with pytest.raises(aiohttp.ClientConnectionError):
                await get_doc(url, DB, RECREATED[-1]["id"], session=session)

            await server.astart()
            assert server.url == url
            await _check_final_state(url, session)
            # A revision written after the restart extends the same history.
            entry = RECREATED[-1]
            number, _ = entry["rev"].split("-")
            body = {**entry["body"], "_rev": f"{int(number) + 1}-{'0' * 31}1"}
            await write_revision(url, DB, body, [r["rev"] for r in RECREATED] + [body["_rev"]],
                                 session=session)
            status, stored = await get_doc(url, DB, entry["id"], session=session)
            assert status == 200 and stored["_rev"] == body["_rev"]
    assert not server.running


async def test_the_documented_pouchdb_differences_from_couchdb(couch_url):
    """couch/README.md, checked: if one of these fails, the server is no longer the one
    KAZOO's fixtures were made with, and that README (and code relying on it) needs a look."""
    db = "account%2F4e%2F5a%2Fquirks"
    assert await create_db(couch_url, db)
    async with client_session() as session:
        # The slashes of an encoded name are dropped: stored and listed as "account4e5aquirks",
        # and that name is the same database.
        async with session.get(f"{couch_url}/_all_dbs") as answer:
            names = await answer.json()
        assert "account4e5aquirks" in names and "account/4e/5a/quirks" not in names
        async with session.get(db_url(couch_url, db)) as answer:
            info = await answer.json()
        assert info["db_name"] == "account4e5aquirks"
        assert await create_db(couch_url, "account4e5aquirks") is False

        # A deleted document's 404 says "missing" (CouchDB: "deleted").
        await write_revision(couch_url, db, {"_id": "+15550001", "_rev": "1-" + "a" * 32}, [])
        await write_revision(couch_url, db, {"_id": "+15550001", "_rev": "2-" + "b" * 32,
                                             "_deleted": True}, ["1-" + "a" * 32])
        status, body = await get_doc(couch_url, db, "+15550001", session=session)
        assert (status, body) == (404, {"error": "not_found", "reason": "missing"})

        # update_seq and _changes seqs are integers (CouchDB 2+: opaque strings).
        async with session.get(db_url(couch_url, db)) as answer:
            info = await answer.json()
        assert isinstance(info["update_seq"], int)
        async with session.get(URL(f"{db_url(couch_url, db)}/_changes", encoded=True)) as answer:
            changes = await answer.json()
        assert all(isinstance(row["seq"], int) for row in changes["results"])
        assert isinstance(changes["last_seq"], int)

        # No authentication: anonymous requests are admin ("admin party").
        async with session.get(f"{couch_url}/_session") as answer:
            session_info = await answer.json()
        assert session_info["userCtx"]["roles"] == ["_admin"]
