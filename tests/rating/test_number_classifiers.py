"""The default ``emergency`` classifier (KAZOO 4.3 knm_converters.erl, 988 included)."""

from __future__ import annotations

import pytest

from svc.quantities import DEFAULT_CLASSIFIERS, classify_number

EMERGENCY = ["911", "922", "933", "988", "833", "811", "711", "999"]


def test_the_default_emergency_pattern_is_kazoos():
    [emergency] = [c for c in DEFAULT_CLASSIFIERS if c.name == "emergency"]
    assert emergency.regex.pattern == r"^(911|922|933|988|833|811|711|999)$"


@pytest.mark.parametrize("number", EMERGENCY)
def test_every_emergency_short_code_is_classified_emergency(number):
    assert classify_number(number, DEFAULT_CLASSIFIERS) == "emergency"


@pytest.mark.parametrize("number", ["9880", "098", "+1988", "+19885550123"])
def test_only_the_bare_short_code_is_emergency(number):
    assert classify_number(number, DEFAULT_CLASSIFIERS) != "emergency"
