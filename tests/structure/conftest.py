"""Shared fixtures for the structure tests: where the real teacher traces live (if present)."""

from __future__ import annotations

from pathlib import Path

import pytest

# ../shared/data next to the repository: local, unlicensed fixtures that are never copied in.
SHARED_TRACES = Path(__file__).resolve().parents[3] / "shared" / "data" / "traces"
TRACE_FILES = {"r1": SHARED_TRACES / "deepseek-r1.sample.jsonl", "qwq": SHARED_TRACES / "qwq-32b.sample.jsonl"}


@pytest.fixture(scope="session")
def shared_traces() -> dict[str, Path]:
    """Paths of the R1 and QwQ sample traces; skips the test when ../shared/data is absent."""
    missing = [str(p) for p in TRACE_FILES.values() if not p.exists()]
    if missing:
        pytest.skip(f"shared traces not found: {', '.join(missing)}")
    return TRACE_FILES
