"""The .mol files the language tests run over: examples, golden diagnostics and compiler fixtures."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").rglob("*.mol"))
LANG_TESTS = sorted((ROOT / "tests" / "lang").rglob("*.mol"))


def read(path: Path) -> str | None:
    """The file's text, or None when it is not UTF-8 (a golden case about exactly that)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


def label(path: Path) -> str:
    return str(path.relative_to(ROOT))
