"""The reference docs stay true: every diagnostic code is documented, and the .mol snippets parse."""

from __future__ import annotations

import re

import pytest

from molspec.check import blocks
from molspec.lang.build import parse_file
from molspec.spec import DEFAULT_SAMPLING, Sampling
from tests.lang.corpus import ROOT

LANGUAGE = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
DIAGNOSTICS = (ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8")
ITEM = re.compile(r"^(molspec|use|dataset|source|model|bond|graph|template|answer|output|fidelity|variant)\b")


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


BLOCKS = {"dataset": blocks.DATASET, "model": blocks.MODEL, "answer": blocks.ANSWER, "output": blocks.OUTPUT,
          "fidelity": blocks.FIDELITY}
DOC_DEFAULT = re.compile(r"^\s+(\w+) = [^#\n]*#[^\n]*\(default ([^)]+)\)\s*$", re.M)


def documented_defaults() -> list[tuple[str, str, str]]:
    """(block, key, default as the reference writes it) for each `key = ...  # ... (default X)` line."""
    found = []
    for block in re.findall(r"^```\n(.*?)^```", LANGUAGE, re.M | re.S):
        item = block.split(maxsplit=1)[0]
        if item in BLOCKS:
            found += [(item, m.group(1), m.group(2).strip('"')) for m in DOC_DEFAULT.finditer(block)]
    return found


def default_of(item: str, key: str) -> object:
    """The default that lowering fills in: the field's, or the model's sampling defaults."""
    found = BLOCKS[item].key(key)
    assert found is not None and found.owner is not None, f"{item} has no key {key}"
    if found.owner is Sampling and item == "model":
        return getattr(DEFAULT_SAMPLING, found.attr)
    value = found.owner.model_fields[found.attr].default
    return value[0] if isinstance(value, tuple) and len(value) == 1 else value


def test_reference_defaults_are_the_models() -> None:
    """docs/language.md states defaults in its comments; they must be the ones in molspec.spec."""
    documented = documented_defaults()
    assert len(documented) >= 10
    for item, key, text in documented:
        value = default_of(item, key)
        written: object = {"true": True, "false": False}.get(text, text)
        if isinstance(value, float):
            written = float(text)
        elif isinstance(value, int) and not isinstance(value, bool):
            written = int(text)
        assert written == value, f"language.md: {item} {key} default {text}, molspec.spec says {value!r}"
