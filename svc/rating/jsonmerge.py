"""The two JSON merge primitives of KAZOO's ``kz_json`` that plan merging relies on.

Both return new objects and never mutate their inputs.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


def merge_recursive(base: Json, top: Json) -> Json:
    """Set every leaf of ``top`` at the same path in ``base``.

    A leaf is any non-object value; arrays replace, ``None`` deletes the key, and an empty
    object in ``top`` contributes nothing.
    """
    result = dict(base)
    for key, value in top.items():
        if isinstance(value, dict):
            if _has_leaves(value):
                below = result.get(key)
                result[key] = merge_recursive(below if isinstance(below, dict) else {}, value)
        elif value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def _has_leaves(doc: Json) -> bool:
    return any(not isinstance(v, dict) or _has_leaves(v) for v in doc.values())


def merge_right(left: Json, right: Json) -> Json:
    """Union of keys, ``right`` winning; objects on both sides recurse, except that an empty
    object on the right replaces the left sub-tree wholesale."""
    result = {k: v for k, v in left.items() if v is not None}
    for key, value in right.items():
        if value is None:
            continue
        below = result.get(key)
        if isinstance(value, dict) and value and isinstance(below, dict):
            result[key] = merge_right(below, value)
        else:
            result[key] = value
    return result


def drop_empty(doc: Json) -> Json:
    """Remove empty objects and nulls at any depth (an object left empty goes too): what
    happens to a plan when KAZOO fetches it."""
    result: Json = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            value = drop_empty(value)
            if not value:
                continue
        elif value is None:
            continue
        result[key] = value
    return result
