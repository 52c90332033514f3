"""A deleted account restored in KAZOO (edited back without ``pvt_deleted``) is counted and
billed again, and its ancestors' cascades follow. Real SQLite store, real sync loop."""

from __future__ import annotations

from test_standing import ACCOUNT, MASTER, Books, account_with, sync_loop

from svc.store import AccountFields, DocChange


async def test_a_restored_account_is_billed_again(repo):
    books = Books()
    await account_with(repo, {"plan": {"plan": {"devices": {"_all": {"rate": 1}}}}})
    loop = sync_loop(repo, lambda _: books)
    await loop.tick()
    await repo.apply_doc_change(DocChange(ACCOUNT, ACCOUNT, "account", 2, deleted=True))
    await loop.tick()
    assert books.calls[-1].invoice["summary"]["recurring"] == 0  # the final invoice

    await repo.apply_doc_change(DocChange(ACCOUNT, ACCOUNT, "account", 3,
                                          account=AccountFields((MASTER,), False)))
    await loop.tick()

    assert not (await repo.account(ACCOUNT))["deleted"]
    assert books.calls[-1].account_id == ACCOUNT
    assert books.calls[-1].invoice["summary"]["recurring"] == 2  # its two devices again
    cascade = (await repo.services(MASTER))["quantities"]["cascade"]
    assert cascade == {"devices": {"sip_device": 2}}
