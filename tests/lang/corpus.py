"""The .mol files the language tests run over: examples, golden diagnostics and compiler fixtures."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").rglob("*.mol"))
# `_support/generated/` holds a FIFO, a 5 MB file and a symlink loop made by the golden test: not specs
LANG_TESTS = sorted(p for p in (ROOT / "tests" / "lang").rglob("*.mol") if "generated" not in p.parts)


def read(path: Path) -> str | None:
    """The file's text, or None when it is not UTF-8 (a golden case about exactly that)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


def label(path: Path) -> str:
    return str(path.relative_to(ROOT))
