"""Quantity objects (category → item → count) and their arithmetic.

A store keeps one contribution per document and sums them; everything here is linear so
that adding a document's new contribution and subtracting its old one is always exact.
The one non-linear rule, ``user_apps`` of ``all``/``admins`` installs, is kept
symbolic under two pseudo-categories and only resolved against the user counts when the
quantities are read, as KAZOO does with its −1/−2 placeholders.
"""

from __future__ import annotations

from collections.abc import Iterator

Counts = dict[str, dict[str, int]]

# user_apps.<name> per install: "all" → enabled users + admins, "admins" → enabled admins.
USER_APPS_ALL = "user_apps@all"
USER_APPS_ADMINS = "user_apps@admins"
_SYMBOLIC = (USER_APPS_ALL, USER_APPS_ADMINS)


def bump(counts: Counts, category: str, item: str, delta: int) -> None:
    """Add ``delta`` in place, dropping the entry (and an emptied category) at zero."""
    items = counts.setdefault(category, {})
    value = items.get(item, 0) + delta
    if value:
        items[item] = value
    else:
        items.pop(item, None)
    if not items:
        del counts[category]


def entries(counts: Counts) -> Iterator[tuple[str, str, int]]:
    for category, items in counts.items():
        for item, value in items.items():
            yield category, item, value


def _combine(a: Counts, b: Counts, sign: int) -> Counts:
    result: Counts = {}
    for category, item, value in entries(a):
        bump(result, category, item, value)
    for category, item, value in entries(b):
        bump(result, category, item, sign * value)
    return result


def add_counts(a: Counts, b: Counts) -> Counts:
    return _combine(a, b, 1)


def subtract_counts(a: Counts, b: Counts) -> Counts:
    """``a − b``; entries may go negative (a difference, not a quantity)."""
    return _combine(a, b, -1)


def diff_counts(before: Counts, after: Counts) -> list[tuple[str, str, int, int]]:
    """``(category, item, previous, current)`` for every entry that differs, sorted."""
    keys = {(c, i) for c, i, _ in entries(before)} | {(c, i) for c, i, _ in entries(after)}
    changes = []
    for category, item in sorted(keys):
        previous = before.get(category, {}).get(item, 0)
        current = after.get(category, {}).get(item, 0)
        if previous != current:
            changes.append((category, item, previous, current))
    return changes


def resolve_counts(counts: Counts) -> Counts:
    """Replace the symbolic ``user_apps`` by real values using these same counts' users
    (KAZOO's post-processing: other priv levels do not count). The input must be a sum of
    contributions, so a negative entry is refused with ``ValueError`` rather than hidden."""
    negative = [f"{c}.{i} = {v}" for c, i, v in entries(counts) if v < 0]
    if negative:
        raise ValueError("quantities must not be negative: " + ", ".join(sorted(negative)))
    users = counts.get("users", {})
    admins = users.get("admin", 0)
    everyone = users.get("user", 0) + admins
    resolved: Counts = {}
    for category, item, value in entries(counts):
        if category not in _SYMBOLIC:
            bump(resolved, category, item, value)
    for name, installs in counts.get(USER_APPS_ALL, {}).items():
        bump(resolved, "user_apps", name, installs * everyone)
    for name, installs in counts.get(USER_APPS_ADMINS, {}).items():
        bump(resolved, "user_apps", name, installs * admins)
    return resolved
