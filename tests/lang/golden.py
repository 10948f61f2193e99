"""Golden-file comparison shared by the diagnostic and compiler fixture tests."""

from __future__ import annotations

from pathlib import Path

import pytest


def check_golden(path: Path, actual: str, update: bool) -> None:
    """Compare `actual` with the file at `path`, or rewrite the file when `update` is set."""
    if update:
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"{path} is missing; run pytest with --update-goldens to create it")
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{path.name} differs; review the change, then run with --update-goldens"
