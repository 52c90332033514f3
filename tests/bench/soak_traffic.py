"""The soak benchmark's pure parts: the doc-change traffic and what it should leave in the
store (``Traffic``), and the per-interval figures (``Interval``, ``Meter``)."""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from svc.amqp.kazoo_notices import doc_change
from svc.jsonio import dumps

# kind -> (field naming the item, the items it cycles through, quantity category)
KINDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "device": ("device_type", ("sip_device", "softphone", "cellphone"), "devices"),
    "user": ("priv_level", ("user", "admin"), "users"),
}
DISABLED = 0.1  # share of edits that disable the document (it then counts nothing)


@dataclass
class LiveDoc:
    kind: str
    item: str | None  # None: disabled, counts nothing
    rev: int


class Traffic:
    """Creates, edits and deletes devices and users across ``accounts``, keeping each
    account between ``low`` and ``high`` live documents, and remembers what each live
    document should count (the highest revision wins, whatever order svc sees them in)."""

    def __init__(self, accounts: list[str], seed: int = 6, low: int = 10,
                 high: int = 30) -> None:
        self.accounts = accounts
        self.random = random.Random(seed)
        self.low, self.high = low, high
        self.docs: dict[str, dict[str, LiveDoc]] = {account: {} for account in accounts}
        self.serial = 0
        self.ops: Counter[str] = Counter()

    def next_notice(self) -> tuple[str, str, bytes]:
        """(account, routing key, body) of the next notice; the model already reflects it."""
        account = self.random.choice(self.accounts)
        docs = self.docs[account]
        if len(docs) < self.low:
            weights = (6, 3, 1)
        elif len(docs) > self.high:
            weights = (1, 3, 6)
        else:
            weights = (1, 2, 1)
        op = self.random.choices(("create", "edit", "delete"), weights)[0] if docs else "create"
        self.ops[op] += 1
        if op == "create":
            self.serial += 1
            kind = self.random.choice(tuple(KINDS))
            doc_id = f"{kind}{self.serial}"
            live = docs[doc_id] = LiveDoc(kind, self.random.choice(KINDS[kind][1]), 1)
            return account, *self._notice(account, doc_id, live, "doc_created")
        doc_id = self.random.choice(list(docs))
        live = docs[doc_id]
        live.rev += 1
        if op == "delete":
            del docs[doc_id]
            routing_key, body = doc_change({"_id": doc_id, "pvt_type": live.kind}, account,
                                           rev=live.rev, event="doc_deleted", with_doc=False)
            return account, routing_key, dumps(body)
        disabled = self.random.random() < DISABLED
        live.item = None if disabled else self.random.choice(KINDS[live.kind][1])
        return account, *self._notice(account, doc_id, live, "doc_edited")

    def _notice(self, account: str, doc_id: str, live: LiveDoc, event: str) -> tuple[str, bytes]:
        item_field, items, _ = KINDS[live.kind]
        doc: dict[str, Any] = {"_id": doc_id, "pvt_type": live.kind}
        if live.item is None:
            doc.update({item_field: items[0], "enabled": False})
        else:
            doc[item_field] = live.item
        routing_key, body = doc_change(doc, account, rev=live.rev, event=event)
        return routing_key, dumps(body)

    def expected(self, account: str) -> dict[str, dict[str, int]]:
        """The account's own quantities once every notice sent so far is applied."""
        counts: dict[str, dict[str, int]] = {}
        for live in self.docs[account].values():
            if live.item is not None:
                category = counts.setdefault(KINDS[live.kind][2], {})
                category[live.item] = category.get(live.item, 0) + 1
        return counts

    def total(self) -> dict[str, dict[str, int]]:
        """Every account's quantities summed: what their reseller's cascade holds."""
        total: dict[str, dict[str, int]] = {}
        for account in self.accounts:
            for category, items in self.expected(account).items():
                for item, count in items.items():
                    total.setdefault(category, {})[item] = (
                        total.get(category, {}).get(item, 0) + count)
        return total

    def live_documents(self) -> int:
        return sum(len(docs) for docs in self.docs.values())


def nonzero(counts: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Counts without zero items or empty categories (how "nothing" may be stored)."""
    return {category: kept for category, items in counts.items()
            if (kept := {item: int(n) for item, n in items.items() if n})}


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon and RssFile of a live process, in KiB (Linux /proc)."""
    wanted = {"VmRSS", "RssAnon", "RssFile"}
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in wanted:
                found[key] = int(value.split()[0])
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Interval:
    """What happened between two report lines."""

    started: float
    ended: float = 0.0
    cpu: float = 0.0  # the service's CPU seconds in the interval
    latencies: list[float] = field(default_factory=list)  # answered RPCs, seconds
    errors: int = 0
    timeouts: int = 0
    notices: int = 0
    syncs: int = 0
    syncs_failed: int = 0
    calls: int = 0  # bookkeeper calls
    rss: list[dict[str, int]] = field(default_factory=list)  # samples, KiB

    @property
    def seconds(self) -> float:
        return max(self.ended - self.started, 1e-9)

    @property
    def rss_end_mib(self) -> float:
        return self.rss[-1]["VmRSS"] / 1024

    @property
    def rss_max_mib(self) -> float:
        return max(sample["VmRSS"] for sample in self.rss) / 1024

    @property
    def cpu_percent(self) -> float:
        return 100 * self.cpu / self.seconds

    def line(self, elapsed: float) -> str:
        lat = self.latencies
        return (f"soak t={elapsed:6.0f}s  rpc {len(lat) / self.seconds:6.1f} req/s "
                f"p50 {percentile(lat, 0.5) * 1e3:6.1f} ms p99 {percentile(lat, 0.99) * 1e3:6.1f}"
                f" ms (err {self.errors}, timeout {self.timeouts})  notices "
                f"{self.notices / self.seconds:6.1f}/s  sync {self.syncs / self.seconds:6.1f} ev/s"
                f" {self.calls / self.seconds:6.1f} calls/s"
                f" (failed {self.syncs_failed})  svc cpu {self.cpu_percent:3.0f}%  "
                f"rss {self.rss_end_mib:7.1f} MiB "
                f"(max {self.rss_max_mib:.1f}, anon {self.rss[-1]['RssAnon'] / 1024:.1f})")


class Meter:
    """The current interval, rotated by the reporter; RSS sampled on request. ``alive``
    raises (naming why) once the measured process has exited."""

    def __init__(self, pid: int, alive: Callable[[], None]) -> None:
        self.pid = pid
        self.alive = alive
        self.current = Interval(time.monotonic())
        self.done: list[Interval] = []
        self.cpu = cpu_seconds(pid)

    def sample_rss(self) -> None:
        self.alive()  # a dead process's /proc entry has no figures
        self.current.rss.append(rss_kib(self.pid))

    def rotate(self) -> Interval:
        """Close the current interval (with an RSS sample at its end), open the next."""
        self.sample_rss()
        finished, now, cpu = self.current, time.monotonic(), cpu_seconds(self.pid)
        finished.ended = now
        finished.cpu, self.cpu = cpu - self.cpu, cpu
        self.current = Interval(now)
        self.done.append(finished)
        return finished


def billed_view(items: list[dict[str, Any]]) -> tuple[int, ...]:
    """What an invoice of the soak's plan says about the traffic's documents: the quantity
    of each item the devices and users count into (``sip_devices`` counts every device but
    softphones)."""
    quantities = {(item["category"], item["item"]): int(item["quantity"]) for item in items}
    return tuple(quantities.get(key, 0) for key in BILLED_ITEMS)


BILLED_ITEMS = (("devices", "sip_devices"), ("devices", "softphone"), ("users", "user"),
                ("users", "admin"))


def counted_view(counts: dict[str, dict[str, int]]) -> tuple[int, ...]:
    """``billed_view`` of the invoice that bills ``counts`` (an account's own quantities)."""
    devices, users = counts.get("devices", {}), counts.get("users", {})
    return (devices.get("sip_device", 0) + devices.get("cellphone", 0),
            devices.get("softphone", 0), users.get("user", 0), users.get("admin", 0))


@dataclass
class _Published:
    at: float
    view: tuple[int, ...]
    billed_at: float | None = None
    undone: bool = False  # changed back to what was billed before any call: nothing owed


class BillingLag:
    """Billing lag: from a notice's publication to the first bookkeeper call whose invoice
    reflects a state at least that new.

    Per account, each notice that changes what the invoice says is a point on a timeline. A
    call at ``at`` billing ``view`` bills every point up to the newest one published before
    ``at`` whose state the invoice equals (an invoice equal to a newer state than the one it
    was made from bills exactly that state). Not counted: notices that leave the invoice as it
    was, and changes undone (back to what the last call billed) before any call, since no
    call need follow them."""

    def __init__(self, accounts: list[str], at: float) -> None:
        zero = counted_view({})
        self.timelines = {account: [_Published(at, zero, at)] for account in accounts}
        self.first_unbilled = dict.fromkeys(accounts, 1)
        self.last_billed = dict.fromkeys(accounts, zero)

    def published(self, account: str, counts: dict[str, dict[str, int]], at: float) -> None:
        timeline, view = self.timelines[account], counted_view(counts)
        if view == timeline[-1].view:
            return
        if view == self.last_billed[account]:
            for point in timeline[self.first_unbilled[account]:]:
                point.undone = True
            timeline.append(_Published(at, view, undone=True))
            self.first_unbilled[account] = len(timeline)
            return
        timeline.append(_Published(at, view))

    def billed(self, account: str, view: tuple[int, ...], at: float) -> None:
        timeline = self.timelines.get(account)
        if timeline is None:  # not one of the traffic's accounts
            return
        self.last_billed[account] = view
        first = self.first_unbilled[account]
        newest = next((n for n in range(len(timeline) - 1, first - 1, -1)
                       if timeline[n].at <= at and timeline[n].view == view), None)
        if newest is None:
            return
        for point in timeline[first:newest + 1]:
            point.billed_at = at
        self.first_unbilled[account] = newest + 1

    def lags(self, after: float, before: float) -> tuple[list[float], int]:
        """The lags of the counted notices published between ``after`` and ``before``, and
        how many of those were never billed."""
        points = [point for timeline in self.timelines.values() for point in timeline[1:]
                  if after <= point.at < before and not point.undone]
        lags = [point.billed_at - point.at for point in points if point.billed_at is not None]
        return lags, len(points) - len(lags)
