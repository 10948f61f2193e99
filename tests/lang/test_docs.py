"""The reference docs stay true: every diagnostic code is documented, and the .mol snippets parse."""

from __future__ import annotations

import re

import pytest

from molspec.lang.build import parse_file
from tests.lang.corpus import ROOT

LANGUAGE = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
DIAGNOSTICS = (ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8")
ITEM = re.compile(r"^(molspec|use|dataset|source|model|bond|graph|template|answer|output|fidelity)\b")


def codes_in_source() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "molspec").rglob("*.py"):
        found |= set(re.findall(r"\"(MOL\d{3})\"", path.read_text(encoding="utf-8")))
    return found


def test_every_code_is_documented_once() -> None:
    headings = re.findall(r"^### (MOL\d{3}):", DIAGNOSTICS, re.M)
    assert len(headings) == len(set(headings)), "a code has two entries"
    missing = codes_in_source() - set(headings)
    assert not missing, f"undocumented codes: {sorted(missing)}"
    assert set(headings) <= codes_in_source(), "documented codes that molspec never emits"


def snippets() -> list[str]:
    """Code blocks of language.md that are whole items (not fragments with `...` or bare properties)."""
    blocks = re.findall(r"^```\n(.*?)^```", LANGUAGE, re.M | re.S)
    out = []
    for block in blocks:
        first = next((line for line in block.splitlines() if line.strip() and not line.startswith("#")), "")
        if ITEM.match(first) and "..." not in block.replace('"..."', "").replace('"""..."""', ""):
            out.append(block)
    return out


SNIPPETS = snippets()


def test_the_reference_has_runnable_snippets() -> None:
    assert len(SNIPPETS) >= 10


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.splitlines()[0][:40] for s in SNIPPETS])
def test_snippets_parse(snippet: str) -> None:
    parsed = parse_file(snippet, "language.md")
    assert parsed.items or parsed.version is not None
