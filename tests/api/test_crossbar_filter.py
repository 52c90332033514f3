"""crossbar's query-string filters (KAZOO 4.3 applications/crossbar/src/crossbar_filter.erl),
rule by rule, on plan documents."""

from __future__ import annotations

import pytest

from svc.crossbar_filter import crossbar_filter, filters_of

DOC = {"name": "Agent", "merge": {"strategy": "cumulative", "priority": 2},
       "bookkeeper": {"type": "http"}, "enabled": True, "empty": "", "tags": ["a"]}


@pytest.mark.parametrize(("filters", "kept"), [
    ({"filter_merge.strategy": "cumulative"}, True),  # the value at the dotted path, as text
    ({"filter_merge.strategy": "simple"}, False),
    ({"filter_merge.priority": "2"}, True),  # a number as its text
    ({"filter_enabled": "true"}, True),  # a boolean as its text
    ({"filter_merge.strategy": '["simple", "cumulative"]'}, True),  # one of a JSON list
    ({"filter_missing": ""}, True),  # a missing value is the empty text
    ({"filter_merge": "x"}, False),  # an object has no text: the document is left out
    ({"filter_not_merge.strategy": "cumulative"}, False),
    ({"has_key": "bookkeeper.type"}, True),
    ({"has_key": "bookkeeper.id"}, False),
    ({"key_missing": "bookkeeper.id"}, True),
    ({"has_value": "empty"}, False),  # present, but empty
    ({"has_value": "name"}, True),
    ({"filter_merge.strategy": "cumulative", "has_key": "nothing"}, False),  # all must hold
    ({}, True),
])
def test_each_filter(filters, kept):
    assert crossbar_filter(filters)(DOC) is kept


def test_only_the_filters_of_a_query_string():
    assert filters_of({"paginate": "false", "filter_merge.strategy": "cumulative",
                       "details": "true", "has_key": "a", "key_missing": "b",
                       "has_value": "c"}) == {"filter_merge.strategy": "cumulative",
                                              "has_key": "a", "key_missing": "b",
                                              "has_value": "c"}
