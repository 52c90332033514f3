"""crossbar's query-string filters on documents (KAZOO 4.3 ``crossbar_filter.erl``), as a
pure predicate: ``filter_<path>=<value>`` keeps a document whose value at the dotted path,
as text, is the value (or one of the values of a JSON list), ``filter_not_<path>`` the
others; ``has_key``, ``key_missing`` and ``has_value`` name a path. Every filter must hold.
(``created_*`` and ``modified_*`` are not applied: svc keeps no such times on plans.)"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

Doc = dict[str, Any]
_MISSING = object()
FILTER_PREFIXES = ("filter_", "has_key", "key_missing", "has_value")


def filters_of(query: Mapping[str, str]) -> dict[str, str]:
    """The query string's filters."""
    return {key: value for key, value in query.items() if key.startswith(FILTER_PREFIXES)}


def _at(doc: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(doc, dict) or key not in doc:
            return _MISSING
        doc = doc[key]
    return doc


def _as_text(value: Any) -> str | None:
    """KAZOO's ``get_binary_value``: text of a scalar, nothing of an object or a list."""
    if value is _MISSING or value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _matches(doc: Doc, path: str, wanted: str) -> bool:
    value = _as_text(_at(doc, path))
    if value is None:
        return False
    if value == wanted:
        return True
    try:
        listed = json.loads(wanted)
    except ValueError:
        return False
    return isinstance(listed, list) and value in listed


def _holds(doc: Doc, key: str, value: str) -> bool:
    if key.startswith("filter_not_"):
        return not _matches(doc, key.removeprefix("filter_not_"), value)
    if key.startswith("filter_"):
        return _matches(doc, key.removeprefix("filter_"), value)
    found = _at(doc, value)
    if key == "has_key":
        return found is not _MISSING
    if key == "key_missing":
        return found is _MISSING
    if key == "has_value":
        return found not in (_MISSING, None, "", [], {})
    return True  # not a filter of crossbar's


def crossbar_filter(filters: Mapping[str, str]) -> Callable[[Doc], bool]:
    return lambda doc: all(_holds(doc, key, value) for key, value in filters.items())
