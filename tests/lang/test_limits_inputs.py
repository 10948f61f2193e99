"""Issue 10 items 9, 11, 12 and 13: hostile or careless inputs get a located diagnostic, never a hang,
an out-of-memory, an echoed secret or an internal error. Each test is written from the issue's reproducer.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import molspec
from molspec.cli import main
from molspec.diagnostics import MolspecError, render_all
from molspec.lang.fmt import format_text
from molspec.sources import SourceError, load_questions
from tests.lang.corpus import ROOT

COMMON = (ROOT / "tests" / "lang" / "diagnostics" / "_support" / "common.mol").read_text(encoding="utf-8")


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A work folder holding the shared bonds and graph, as the current directory."""
    (tmp_path / "common.mol").write_text(COMMON.replace("data/questions.jsonl", "q.jsonl"), encoding="utf-8")
    shutil.copy(ROOT / "tests" / "lang" / "diagnostics" / "_support" / "data" / "questions.jsonl", tmp_path / "q.jsonl")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def spec(path: Path, body: str) -> Path:
    path.write_text(f'molspec 1\nuse "common.mol"\n{body}\n', encoding="utf-8")
    return path


def codes(path: Path | str) -> list[str]:
    try:
        return [d.code for d in molspec.load(path).diagnostics if d.is_error]
    except MolspecError as err:
        return [d.code for d in err.diagnostics]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


# ---------------------------------------------------------------- item 9: `use` and `check` read anything

def test_use_of_a_non_spec_file_never_shows_its_text(here: Path) -> None:
    (here / "secret.txt").write_text("hf_SECRETTOKEN123\n", encoding="utf-8")
    path = spec(here / "s.mol", 'use "secret.txt"')
    doc = molspec.load(path)
    assert [d.code for d in doc.diagnostics if d.is_error] == ["MOL505"]
    assert "SECRETTOKEN" not in render_all(doc.diagnostics, doc.sources)
    assert "SECRETTOKEN" not in str(doc.sources)


def test_a_huge_spec_is_not_read_whole(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with (here / "big.mol").open("wb") as fh:  # 1 GB of NULs, sparse
        fh.truncate(1 << 30)
    code, err = cli(capsys, "check", "big.mol")
    assert code == 1 and "MOL018" in err and "\x00" not in err and len(err) < 2000


def test_an_import_that_is_too_large(here: Path) -> None:
    with (here / "big.mol").open("wb") as fh:
        fh.truncate(5 << 20)
    assert codes(spec(here / "s.mol", 'use "big.mol"')) == ["MOL018"]


@pytest.mark.timeout(30)
def test_check_dev_zero_is_refused_without_reading_it(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = cli(capsys, "check", "/dev/zero")
    assert code == 1 and "MOL017" in err and "a device" in err


@pytest.mark.timeout(30)
def test_a_fifo_as_spec_or_import_does_not_wait_for_a_writer(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(here / "pipe.mol")
    assert cli(capsys, "check", "pipe.mol")[0] == 1
    assert codes(spec(here / "s.mol", 'use "pipe.mol"')) == ["MOL017"]
    assert cli(capsys, "fmt", "pipe.mol")[1].count("MOL017") == 1


# ---------------------------------------------------------------- item 11: internal errors become diagnostics

def test_fmt_on_a_file_that_is_not_utf8(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (here / "latin1.mol").write_bytes('molspec 1\n# café\n'.encode("latin-1"))
    code, err = cli(capsys, "fmt", "latin1.mol")
    assert code == 1 and "error[MOL013]" in err and "latin1.mol:2:6" in err and "internal error" not in err


@pytest.mark.parametrize("body", ['use "{long}.mol"', 'source q2 = jsonl("{long}.jsonl")'])
def test_a_path_over_255_bytes(here: Path, body: str) -> None:
    path = spec(here / "s.mol", body.format(long="x" * 300) + "\ndataset \"a/b\" { samples = 2  source = q2 }"
                if "source" in body else body.format(long="x" * 300))
    assert "MOL019" in codes(path)
    assert codes("y" * 300 + ".mol") == ["MOL019"]


@pytest.mark.parametrize("body", ['use "a\x00b.mol"',
                                  'source q2 = jsonl("a\x00b.jsonl")\ndataset "a/b" { source = q2 }'])
def test_a_nul_in_a_path(here: Path, body: str) -> None:
    assert "MOL019" in codes(spec(here / "s.mol", body))
    assert codes("a\x00b.mol") == ["MOL019"]


def test_symlink_loops_as_spec_import_and_source(here: Path) -> None:
    for a, b in (("la.mol", "lb.mol"), ("lb.mol", "la.mol"), ("qa.jsonl", "qb.jsonl"), ("qb.jsonl", "qa.jsonl")):
        (here / a).symlink_to(b)
    assert codes("la.mol") == ["MOL019"]
    assert codes(spec(here / "s.mol", 'use "la.mol"')) == ["MOL019"]
    assert codes(spec(here / "t.mol", 'source q2 = jsonl("qa.jsonl")\ndataset "a/b" { source = q2 }')) == ["MOL019"]


@pytest.mark.parametrize("depth", [240, 5000])
def test_blocks_nested_deeper_than_the_limit(here: Path, depth: int) -> None:
    body = "model m { name = \"x\" options " + "{ a " * depth + "{ }" + " }" * depth + " }"
    path = spec(here / "s.mol", body)
    assert codes(path) == ["MOL020"]
    with pytest.raises(MolspecError) as err:
        format_text(path.read_text(encoding="utf-8"), "s.mol")
    assert err.value.diagnostics[0].code == "MOL020"


def test_parentheses_nested_400_deep_in_a_template(here: Path) -> None:
    path = spec(here / "s.mol", 'template step """{{ ' + "(" * 400 + "question" + ")" * 400 + ' }}"""')
    assert codes(path) == ["MOL306"]


def jsonl_source(here: Path, data: bytes, extra: str = "") -> Path:
    (here / "d.jsonl").write_bytes(data)
    return spec(here / "s.mol",
                f'source d = jsonl("d.jsonl") {{ {extra} }}\ndataset "a/b" {{ samples = 2  source = d }}')


@pytest.mark.parametrize(("data", "words"), [
    (b"\xff\xfe" + bytes(range(256)) * 64, "not UTF-8"),
    (b'{"question": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n", "nested too deeply"),
    (b'{"id": ' + b"7" * 5000 + b', "question": "q"}\n', "digits"),
])
def test_a_jsonl_that_is_binary_deep_or_has_a_huge_number(here: Path, data: bytes, words: str) -> None:
    doc = molspec.load(jsonl_source(here, data))
    (d,) = [d for d in doc.diagnostics if d.is_error]
    assert d.code == "MOL404" and words in d.message and "d.jsonl:1" in d.message


def test_a_lone_surrogate_is_refused_at_check_and_at_load(here: Path) -> None:
    path = jsonl_source(here, b'{"question": "What is \\ud800?", "gold": "1"}\n')
    doc = molspec.load(path)
    assert [d.code for d in doc.diagnostics if d.is_error] == ["MOL408"]
    assert doc.spec is not None
    with pytest.raises(SourceError) as err:
        load_questions(doc.spec.sources["d"])
    assert err.value.code == "MOL408"


# ---------------------------------------------------------------- item 12: source values typed

def rows_of(here: Path, rows: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def test_null_gold_means_no_gold(here: Path) -> None:
    doc = molspec.load(jsonl_source(here, rows_of(here, [{"question": "q1", "gold": None},
                                                         {"question": "q2", "gold": 4}])))
    assert doc.ok
    assert doc.spec is not None
    assert [(q.question, q.gold) for q in load_questions(doc.spec.sources["d"])] == [("q1", None), ("q2", "4")]


@pytest.mark.parametrize(("row", "column", "what"), [
    ({"question": ["a", "b"]}, "question", "a list"),
    ({"question": None}, "question", "null"),
    ({"question": 7}, "question", "a whole number"),
    ({"question": "q", "gold": ["4"]}, "gold", "a list"),
    ({"question": "q", "gold": True}, "gold", "true or false"),
    ({"question": "q", "id": {"a": 1}}, "id", "an object"),
])
def test_values_of_the_wrong_type_are_refused_with_file_and_line(here: Path, row: dict[str, object], column: str,
                                                                   what: str) -> None:
    data = rows_of(here, [{"question": "fine", "id": 0}, row])
    doc = molspec.load(jsonl_source(here, data, 'id = "id"'))
    (d,) = [d for d in doc.diagnostics if d.is_error]
    assert d.code == "MOL406" and d.message.startswith("d.jsonl:2:") and f"'{column}' is {what}" in d.message


@pytest.mark.parametrize("question", ["", "   \n"])
def test_an_empty_question_is_refused(here: Path, question: str) -> None:
    doc = molspec.load(jsonl_source(here, rows_of(here, [{"question": question}])))
    assert [d.code for d in doc.diagnostics if d.is_error] == ["MOL407"]


# ---------------------------------------------------------------- item 13: smaller diagnostic faults

@pytest.mark.parametrize("sep", ["\f", "\v", "\x85", "\u2028", "\u2029", "\x1c"])
def test_a_line_number_points_at_the_line_shown(here: Path, sep: str) -> None:
    """Only \\n ends a line, in positions and in the render alike; other separators stay in the line."""
    text = f"molspec 1\n# a comment {sep} with a separator\nbond b : nope {{ instruct = \"x\" }}\n"
    (here / "s.mol").write_text(text, encoding="utf-8")
    doc = molspec.load("s.mol")
    (d,) = [d for d in doc.diagnostics if d.code == "MOL106"]
    assert (d.span.line, d.span.col) == (3, 10)
    shown = render_all([d], doc.sources).splitlines()
    assert shown[3] == '3 | bond b : nope { instruct = "x" }' and shown[4].index("^") == shown[3].index("nope")


def test_a_cr_only_file_counts_its_lines(here: Path) -> None:
    (here / "s.mol").write_bytes(b'molspec 1\r\rbond b : nope { instruct = "x" }\r')
    (d,) = [d for d in molspec.load("s.mol").diagnostics if d.code == "MOL106"]
    assert (d.span.line, d.span.col) == (3, 10)


def test_a_utf8_bom_is_accepted(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (here / "s.mol").write_bytes("\ufeff".encode() + b'molspec 1\n\nuse "common.mol"\n')
    assert molspec.load("s.mol").ok
    assert cli(capsys, "fmt", "--check", "s.mol")[0] == 0


def test_a_one_megabyte_token_prints_a_short_caret_line(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (here / "s.mol").write_text("molspec 1\nbond " + "a" * 1_000_000 + " : nope { }\n", encoding="utf-8")
    code, err = cli(capsys, "check", "s.mol")
    assert code == 1 and len(err) < 5000
    (here / "t.mol").write_text('molspec 1\noutput { hub = "' + "x" * 1_000_000 + '" @ }\n', encoding="utf-8")
    code, err = cli(capsys, "check", "t.mol")
    lines = err.splitlines()
    caret = next(line for line in lines if "^" in line)
    assert code == 1 and "MOL" in err and len(err) < 5000
    assert lines[lines.index(caret) - 1][caret.index("^")] == "@"


@pytest.mark.timeout(30)
def test_a_directory_or_fifo_as_source_says_what_it_is(here: Path) -> None:
    (here / "folder.jsonl").mkdir()
    os.mkfifo(here / "pipe.jsonl")
    for name, words in (("folder.jsonl", "is a directory"), ("pipe.jsonl", "FIFO")):
        doc = molspec.load(spec(here / "s.mol", f'source d = jsonl("{name}")\ndataset "a/b" {{ source = d }}'))
        (d,) = [d for d in doc.diagnostics if d.is_error]
        assert d.code == "MOL409" and words in d.message and "not found" not in d.message
