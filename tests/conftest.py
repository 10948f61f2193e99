"""Shared pytest switches."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="rewrite golden files (diagnostic renders, plan fixtures) from the current output")


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    """True when the run should rewrite golden files instead of comparing against them."""
    return bool(request.config.getoption("--update-goldens"))
