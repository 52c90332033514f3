"""Benchmarks run at smoke size under ``make test`` and full size under ``make bench``;
targets are asserted at full size only, where the figures mean something."""

from __future__ import annotations

import os

import pytest

SCALE = os.environ.get("SVC_BENCH_SCALE", "smoke")


@pytest.fixture
def full_size() -> bool:
    return SCALE == "full"


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.bench)
