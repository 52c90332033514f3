"""Doc-change ingest end to end with SQLite.

In a virtual host of its own, svc's topology is declared and ``services_doc_changes`` is
pre-filled with Kazoo doc_edited notices (a master, four accounts under it, then N devices
spread over the four), before any consumer runs. The service (``svc.app.Service`` with a fresh
SQLite file) then starts and the clock runs until the store counts every device; the counts
must be exact (each account's own and the master's cascade), the queue empty and nothing
dead-lettered. N = 20,000 at full size, 1,000 at smoke size. Target: >= 1,000 notices/s.
"""

from __future__ import annotations

import uuid
from typing import Any

from queue_drain import drain

from svc.amqp import topology
from svc.amqp.kazoo_notices import doc_change
from svc.jsonio import dumps
from svc.settings import Settings

ACCOUNTS = 4
TARGET = 1_000




def notice(doc: dict[str, Any], account_id: str) -> tuple[str, bytes]:
    """A Kazoo doc_edited notice that includes its ``Doc``, as bytes ready to publish."""
    routing_key, body = doc_change(doc, account_id)
    return routing_key, dumps(body)


async def test_ingest_rate(full_size, amqp_url, tmp_path):
    count = 20_000 if full_size else 1_000
    settings = Settings(amqp_url=amqp_url, store_url=f"sqlite:///{tmp_path}/svc.db",
                        node="services@bench", http_host="127.0.0.1", http_port=0)
    master = uuid.uuid4().hex
    accounts = [uuid.uuid4().hex for _ in range(ACCOUNTS)]
    prefill = [notice({"_id": account_id, "pvt_type": "account", "name": account_id[:6],
                       "pvt_tree": [] if account_id == master else [master]}, account_id)
               for account_id in (master, *accounts)]
    prefill += [notice({"_id": f"dev{n}", "pvt_type": "device", "device_type": "sip_device"},
                       accounts[n % ACCOUNTS]) for n in range(count)]
    expected = {account_id: len(range(n, count, ACCOUNTS))
                for n, account_id in enumerate(accounts)}

    elapsed, published = await drain(amqp_url, settings, prefill, master, expected)
    rate = count / elapsed
    print(f"\ningest: {count:,} device notices (+{len(prefill) - count} accounts) pre-filled "
          f"into {topology.DOC_CHANGES_QUEUE}, drained and applied to SQLite in "
          f"{elapsed:.2f} s: {rate:,.0f} notices/s ({rate / TARGET:.2f}x the 1,000/s target; "
          f"publishing ran at {published:,.0f}/s)")
    if full_size:
        assert rate >= TARGET, f"target: >= {TARGET:,} notices/s end to end: {rate:,.0f}"
