"""Property tests: no input makes molspec fail with anything but its own error type.

Random text, random bytes and random mutations of the examples go through `load` -> check ->
format -> compile; each stage either succeeds or raises `MolspecError`. Where formatting succeeds,
its output must mean the same (equal AST) and be stable.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import molspec
from molspec.diagnostics import MolspecError
from molspec.lang.build import parse_file
from molspec.lang.fmt import format_text
from tests.lang.corpus import EXAMPLES, ROOT

SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
PIECES = re.compile(r'"""[\s\S]*?"""|"(?:[^"\\\n]|\\.)*"|#[^\n]*|\s+|\w+|.', re.S)
ALPHABET = 'abcdefgh_xyz0123456789 \n\t{}[]()"=:|-><.,#\\'
KEYWORDS = ["molspec", "use", "dataset", "source", "model", "bond", "graph", "template", "answer", "output",
            "start", "end", "steps", "split", "true", "false", "energy", "normalize", "->", "|", "..", '"""']


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of examples/ so that mutated specs resolve their imports and data like the originals."""
    root = tmp_path_factory.mktemp("robust")
    shutil.copytree(ROOT / "examples", root / "examples")
    return root / "examples"


def exercise(path: Path, text: str | None = None) -> None:
    """Every stage on one input; only MolspecError may escape."""
    try:
        doc = molspec.load(path, text=text)
        doc.check()
        source = doc.sources[doc.path]
        formatted = format_text(source, doc.path)
        assert parse_file(formatted) == parse_file(source)
        assert format_text(formatted) == formatted
        if doc.ok and doc.spec is not None and doc.spec.dataset is not None:
            doc.compile(samples=16).walks()
    except MolspecError as err:
        assert err.diagnostics
        err.render()


@SETTINGS
@given(text=st.text(max_size=300))
def test_random_text(workdir: Path, text: str) -> None:
    exercise(workdir / "random.mol", text)


@SETTINGS
@given(text=st.lists(st.sampled_from(KEYWORDS + list(ALPHABET)), max_size=80).map(" ".join))
def test_random_token_soup(workdir: Path, text: str) -> None:
    exercise(workdir / "soup.mol", text)


@settings(SETTINGS, max_examples=60)
@given(data=st.binary(max_size=200))
def test_random_bytes(workdir: Path, data: bytes) -> None:
    path = workdir / "bytes.mol"
    path.write_bytes(data)
    exercise(path)


def _char_mutation(draw: st.DrawFn, text: str) -> str:
    i = draw(st.integers(0, len(text)))
    kind = draw(st.sampled_from(["delete", "insert", "duplicate", "swap"]))
    if kind == "delete":
        return text[:i] + text[i + 1:]
    if kind == "insert":
        return text[:i] + draw(st.sampled_from(ALPHABET)) + text[i:]
    j = draw(st.integers(i, min(len(text), i + 40)))
    if kind == "duplicate":
        return text[:j] + text[i:j] + text[j:]
    return text[:i] + text[j:j + 1] + text[i + 1:j] + text[i:i + 1] + text[j + 1:] if j > i else text


def _token_mutation(draw: st.DrawFn, text: str) -> str:
    tokens = PIECES.findall(text)
    i = draw(st.integers(0, len(tokens) - 1))
    j = draw(st.integers(0, len(tokens) - 1))
    kind = draw(st.sampled_from(["delete", "duplicate", "swap", "replace"]))
    if kind == "delete":
        del tokens[i]
    elif kind == "duplicate":
        tokens.insert(i, tokens[i])
    elif kind == "swap":
        tokens[i], tokens[j] = tokens[j], tokens[i]
    else:
        tokens[i] = draw(st.sampled_from(KEYWORDS + ["0.5", "-1", "1e400", "x", "{", "}", "9..3"]))
    return "".join(tokens)


@st.composite
def mutated_example(draw: st.DrawFn) -> tuple[Path, str]:
    path = draw(st.sampled_from(EXAMPLES))
    text = path.read_text(encoding="utf-8")
    steps: list[Callable[[st.DrawFn, str], str]] = [_char_mutation, _token_mutation]
    for _ in range(draw(st.integers(1, 4))):
        text = draw(st.sampled_from(steps))(draw, text)
    return path, text


@settings(SETTINGS, max_examples=250)
@given(case=mutated_example())
def test_mutated_examples(workdir: Path, case: tuple[Path, str]) -> None:
    path, text = case
    exercise(workdir / path.relative_to(ROOT / "examples"), text)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_survive_every_stage(workdir: Path, path: Path) -> None:
    doc = molspec.load(path)
    assert doc.ok, [d.message for d in doc.diagnostics]
    exercise(path)
