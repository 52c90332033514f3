"""The kz_json merge primitives the plan merge is built on."""

from __future__ import annotations

from svc.rating.jsonmerge import drop_empty, merge_recursive, merge_right


def test_merge_recursive_sets_leaves_replaces_arrays_and_null_deletes():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 4}
    top = {"a": {"c": [3], "e": 5}, "d": None}
    assert merge_recursive(base, top) == {"a": {"b": 1, "c": [3], "e": 5}}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 4}  # inputs untouched


def test_merge_recursive_empty_objects_contribute_nothing():
    assert merge_recursive({"a": 1}, {"a": {}, "b": {"c": {}}}) == {"a": 1}


def test_merge_right_recurses_but_an_empty_object_on_the_right_wipes():
    left = {"x": {"y": {"rate": 1, "minimum": 2}}, "z": 1}
    assert merge_right(left, {"x": {"y": {"rate": 3}}}) == {
        "x": {"y": {"rate": 3, "minimum": 2}}, "z": 1}
    assert merge_right(left, {"x": {"y": {}}}) == {"x": {"y": {}}, "z": 1}


def test_drop_empty_removes_nested_empties_and_nulls():
    assert drop_empty({"a": {"b": {}}, "c": None, "d": {"e": 0, "f": {}}}) == {"d": {"e": 0}}
