"""The formatter: canonical, idempotent, comment-preserving, and meaning-preserving (equal AST)."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from lark import Token

from molspec.diagnostics import MolspecError
from molspec.lang import ast
from molspec.lang.build import parse_file
from molspec.lang.fmt import format_text
from molspec.lang.syntax import parse
from tests.lang.corpus import EXAMPLES, LANG_TESTS, label, read


def parsed(paths: list[Path]) -> list[tuple[Path, str]]:
    """The files among `paths` that are UTF-8 and parse, with their text."""
    out = []
    for p in paths:
        text = read(p)
        if text is None:
            continue
        try:
            parse(text)
        except MolspecError:
            continue
        out.append((p, text))
    return out


CORPUS = parsed(EXAMPLES + LANG_TESTS)


def comments(text: str) -> list[str]:
    found: list[Token] = []
    parse(text, comments=found)
    return [str(t).rstrip() for t in found]


def test_corpus_is_large() -> None:
    assert len(EXAMPLES) >= 7 and len(CORPUS) >= 60


@pytest.mark.parametrize("path", EXAMPLES, ids=label)
def test_examples_are_formatted(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert format_text(text, str(path)) == text


@pytest.mark.parametrize(("path", "text"), CORPUS, ids=[label(p) for p, _ in CORPUS])
def test_round_trip(path: Path, text: str) -> None:
    out = format_text(text)
    assert parse_file(out) == parse_file(text), "formatting changed the meaning"
    assert format_text(out) == out, "formatting is not idempotent"
    assert comments(out) == comments(text), "comments were lost or reordered"


_PIECES = re.compile(r'"""[\s\S]*?"""|"(?:[^"\\\n]|\\.)*"|#[^\n]*|[ \t\r\n]+|.', re.S)
_SPACES = (" ", "  ", "\t", "\n", " \n\n  ", "\n\t")


def respace(text: str, rng: random.Random) -> str:
    """The same tokens with every run of whitespace replaced by another (newlines kept after comments)."""
    out: list[str] = []
    for piece in _PIECES.findall(text):
        if piece.isspace():
            ws = rng.choice(_SPACES)
            out.append(ws if "\n" in ws or not out or not out[-1].startswith("#") else ws + "\n")
        else:
            out.append(piece)
    return "".join(out)


@pytest.mark.parametrize("path", EXAMPLES, ids=label)
def test_whitespace_does_not_change_the_ast(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    original = parse_file(text)
    for seed in range(3):
        variant = respace(text, random.Random(seed))
        assert variant != text
        assert parse_file(variant) == original
        assert comments(variant) == comments(text)


def test_spans_are_not_part_of_equality() -> None:
    a = parse_file('molspec 1\nbond b : vdw { instruct = "x" }\n')
    b = parse_file('molspec   1\n\n\n   bond b:vdw{instruct="x"}')
    assert a == b and hash(a) == hash(b)
    bond = a.items[0]
    assert isinstance(bond, ast.Bond) and bond.sp.line == 2
    assert b.items[0].sp.line == 4


def test_comments_everywhere_survive() -> None:
    text = ('# head\nmolspec 1  # version\n\n# before bond\nbond b : vdw "B" {  # open\n  instruct = "x"  # inst\n'
            '  # inside\n}  # close\ngraph g {  # g\n  start -> b 1.0  # row\n  # between\n  b -> b 1.0\n'
            '  steps = 2..3  # steps\n  # last in graph\n}\n# tail\n')
    out = format_text(text)
    assert comments(out) == comments(text) and len(comments(text)) == 13
    assert format_text(out) == out


@pytest.mark.parametrize(("written", "value"), [('"""X"""', "X"), ('"""\nX\n"""', "X\n"), ('"""\r\nX"""', "X"),
                                                ('"""\n\nX"""', "\nX"), ('"""a\nb"""', "a\nb")])
def test_triple_quoted_strings_drop_one_leading_newline(written: str, value: str) -> None:
    text = f"molspec 1\ntemplate step {written}\n"
    item = parse_file(text).items[0]
    assert isinstance(item, ast.Template) and item.body.value == value
    out = format_text(text)
    assert parse_file(out) == parse_file(text) and format_text(out) == out
