"""`molspec review`: the blind sheet of a build's steps, and the score of a sheet a person filled.

Builds are real echo-engine builds (tests/runtime's tiny spec, gated by the `cue` labeler so that no weights
are loaded). The echo engine writes its step's bond into the text ("[deep · step 1 ...]"): that is the
engine, not the sheet; the sheet's own columns carry no bond.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pytest

from molspec.diagnostics import MolspecError
from molspec.records import Row, read_manifest
from molspec.structure.label import BONDS, get_labeler
from molspec.structure.review import ReviewScore
from molspec.structure.review_sheet import COLUMNS, SheetLine, sheet_csv, text_sha1
from molspec.structure.rows import read_rows
from tests.lang.golden import check_golden
from tests.runtime.buildtools import cli
from tests.runtime.conftest import write_spec
from tests.runtime.varianttools import CUE, write_variant_spec

GOLDENS = Path(__file__).parents[1] / "cli_goldens"
Sheet = list[dict[str, str]]


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gated echo build of 16 samples (every step carries the gate's `cue` label). Its text depends only on the
    echo engine and the cue labeler (no weights), so the golden renders below stay put."""
    root = tmp_path_factory.mktemp("review")
    spec = write_spec(root / "spec", samples=16)
    spec.write_text(spec.read_text() + CUE)
    assert cli("build", spec, "--out", root / "out", "-q").rc == 0
    return root / "out"


def _rows(out: Path) -> list[Row]:
    return read_rows(out, read_manifest(out))


def _read(path: Path) -> Sheet:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _write(path: Path, sheet: Sheet, delimiter: str = ",", quoting: Literal[0, 1, 2, 3] = csv.QUOTE_ALL) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(sheet[0]), delimiter=delimiter, quoting=quoting)
        writer.writeheader()
        writer.writerows(sheet)


def _sheet(build: Path, tmp_path: Path, *extra: str) -> Path:
    out = tmp_path / "sheet.csv"
    ran = cli("review", build, "--out", out, *extra)
    assert ran.rc == 0, ran.err
    return out


# ---------------------------------------------------------------- the sheet


def test_the_sheet_is_blind_whole_walks_shuffled(build: Path, tmp_path: Path) -> None:
    rows = {r.sample_index: r for r in _rows(build)}
    out = _sheet(build, tmp_path, "--walks", "6", "--seed", "1")
    sheet = _read(out)
    assert out.read_bytes().startswith(b"\xef\xbb\xbf\"walk\",\"step\"")  # UTF-8 mark, every field quoted
    assert tuple(sheet[0]) == COLUMNS  # no bond, bonds or label column of the build's
    bonds = set(BONDS) | {s.bond for r in rows.values() for s in r.steps}
    for line in sheet:
        for column in ("walk", "step", "key", "question", "sha1", "label"):
            assert line[column].lower() not in bonds
        assert line["label"] == ""
    walks: dict[int, list[dict[str, str]]] = {}
    for line in sheet:
        walks.setdefault(int(line["walk"]), []).append(line)
    assert list(walks) == [1, 2, 3, 4, 5, 6]
    order = []
    for lines in walks.values():
        sample = int(lines[0]["key"].split(":")[0])
        order.append(sample)
        row = rows[sample]
        assert [ln["key"] for ln in lines] == [f"{sample}:{j}" for j in range(1, len(row.steps) + 1)]  # whole
        assert [int(ln["step"]) for ln in lines] == list(range(1, len(row.steps) + 1))
        assert [ln["text"] for ln in lines] == [s.text for s in row.steps]
        assert [ln["sha1"] for ln in lines] == [text_sha1(s.text) for s in row.steps]
        assert [ln["question"] for ln in lines] == [row.question] + [""] * (len(lines) - 1)
    assert order != sorted(order)  # not the dataset's order
    again = _read(_sheet(build, tmp_path / "again", "--walks", "6", "--seed", "1"))
    other = _read(_sheet(build, tmp_path / "other", "--walks", "6", "--seed", "2"))
    assert again == sheet and [ln["key"] for ln in other] != [ln["key"] for ln in sheet]


def test_default_name_and_no_overwrite(build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    first = cli("review", build)
    assert first.rc == 0
    sheet = tmp_path / "out-review.csv"
    assert first.out.startswith("wrote out-review.csv: 16 walks") and "docs/labelling-guide.md" in first.out
    assert len({ln["walk"] for ln in _read(sheet)}) == 16  # --walks 20 of a 16-walk build: all of them
    sheet.write_text("a filled sheet\n")
    again = cli("review", build)
    assert again.rc == 1 and "error[MOL733]" in again.err and "out-review.csv already exists" in again.err
    assert sheet.read_text() == "a filled sheet\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out-review.csv"]  # no temporary file left
    under_a_file = cli("review", build, "--out", sheet / "x.csv")
    assert under_a_file.rc == 1 and "error[MOL733]: cannot write" in under_a_file.err


def test_a_variant_group_names_its_variants(tmp_path: Path) -> None:
    spec = write_variant_spec(tmp_path / "spec", samples=2)
    assert cli("build", spec, "--out", tmp_path / "group", "-q", "--variant", "base", "--variant", "terse").rc == 0
    ran = cli("review", tmp_path / "group", "--out", tmp_path / "s.csv")
    assert ran.rc == 1 and "error[MOL701]" in ran.err and "review one of them" in ran.err
    assert str(tmp_path / "group" / "base") in ran.err and str(tmp_path / "group" / "terse") in ran.err
    assert cli("review", tmp_path / "group" / "terse", "--out", tmp_path / "s.csv").rc == 0


def test_generated_text_never_runs_as_a_formula() -> None:
    text = sheet_csv([SheetLine(1, 1, "0:1", "=1+1?", "-2 is wrong: =HYPERLINK(x)", text_sha1("-2"))])
    row = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))[1]
    assert row[3:5] == ["'=1+1?", "'-2 is wrong: =HYPERLINK(x)"] and row[5] == text_sha1("-2")


@pytest.mark.parametrize("argv", [["--json"], ["--score", "x.csv", "--walks", "3"], ["--score", "x.csv", "--out", "y"],
                                  ["--walks", "0"], ["--walks", "many"]])
def test_usage_errors_exit_2(build: Path, argv: list[str]) -> None:
    ran = cli("review", build, *argv)
    assert ran.rc == 2 and "error" in ran.err


# ---------------------------------------------------------------- scoring


def _fill(sheet: Sheet, rows: dict[int, Row], pick: Callable[[Row, int], str]) -> Sheet:
    out = []
    for line in sheet:
        sample, step = (int(x) for x in line["key"].split(":"))
        out.append({**line, "label": pick(rows[sample], step - 1)})
    return out


def test_score_of_a_filled_sheet(build: Path, tmp_path: Path) -> None:
    rows = {r.sample_index: r for r in _rows(build)}
    path = _sheet(build, tmp_path, "--walks", "8")

    def pick(row: Row, i: int) -> str:  # odd steps: the asked bond (in capitals); even: normal; 3rd: empty
        return "" if i == 2 else row.steps[i].bond.upper() if i % 2 == 0 else "normal"

    _write(path, _fill(_read(path), rows, pick))
    ran = cli("review", build, "--score", path, "--json")
    assert ran.rc == 0, ran.err
    score = ReviewScore.model_validate_json(ran.out)
    judged = [(rows[int(ln["key"].split(":")[0])], int(ln["step"]) - 1) for ln in _read(path)]
    hand = [(r.steps[i].bond, pick(r, i).lower()) for r, i in judged if pick(r, i)]
    assert (score.steps, score.labelled, score.unlabelled) == (len(judged), len(hand), len(judged) - len(hand))
    assert score.fidelity == round(sum(a == h for a, h in hand) / len(hand), 4)
    assert score.confusion.labelled == list(BONDS)
    asked = dict.fromkeys(a for a, _ in hand)
    expected = {a: [sum(1 for x, h in hand if x == a and h == b) for b in BONDS] for a in asked}
    assert dict(zip(score.confusion.asked, score.confusion.counts, strict=True)) == expected
    assert {b.bond: (b.hits, b.steps) for b in score.per_bond} == {a: (c[BONDS.index(a)], sum(c))
                                                                  for a, c in expected.items()}
    assert score.more_than_routine == sum(h != "normal" for _, h in hand)
    agree = {a.judge: a for a in score.agreement}
    assert score.gate_labeler == "cue" and list(agree) == ["build", "cue", "learned-blind"]
    gate = [(r.steps[i].label, pick(r, i).lower()) for r, i in judged if pick(r, i)]
    assert (agree["build"].steps, agree["build"].agree) == (len(gate), sum(a == b for a, b in gate))
    for name in ("cue", "learned-blind"):
        try:
            judge = get_labeler(name)
            said = [(judge.label(r.question, [s.text for s in r.steps])[i], pick(r, i).lower()) for r, i in judged
                    if pick(r, i)]
        except MolspecError as err:  # weights that do not load: reported with the score, not fatal
            assert agree[name].unavailable == err.diagnostics[0].message and agree[name].share is None
            continue
        assert agree[name].unavailable is None and agree[name].steps == len(hand)
        assert agree[name].agree == sum(a == b for a, b in said)
    text = cli("review", build, "--score", path)
    assert f"hand fidelity: {score.fidelity:.3f}" in text.out and "asked bond x hand label:" in text.out


def test_a_spec_s_own_bond_names_count_by_their_kind(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec", samples=4)
    spec.write_text(spec.read_text().replace("explore", "wander").replace("reflect", "recheck") + CUE)
    assert cli("build", spec, "--out", tmp_path / "out", "-q").rc == 0
    rows = {r.sample_index: r for r in _rows(tmp_path / "out")}
    kind_label = {"wander": "explore", "recheck": "reflect", "deep": "deep", "normal": "normal"}
    path = _sheet(tmp_path / "out", tmp_path)
    _write(path, _fill(_read(path), rows, lambda r, i: kind_label[r.steps[i].bond]))
    score = ReviewScore.model_validate_json(cli("review", tmp_path / "out", "--score", path, "--json").out)
    assert score.fidelity == 1.0 and {b.bond: b.expects for b in score.per_bond}["wander"] == "explore"
    assert "wander" in score.confusion.asked and score.confusion.labelled == list(BONDS)


def test_a_spreadsheet_saved_sheet_scores_the_same(build: Path, tmp_path: Path) -> None:
    rows = {r.sample_index: r for r in _rows(build)}
    path = _sheet(build, tmp_path, "--walks", "4")
    filled = _fill(_read(path), rows, lambda r, i: r.steps[i].bond)
    _write(path, filled)
    saved = tmp_path / "saved.csv"  # semicolons, quotes only where needed, CRLF, no byte-order mark
    _write(saved, filled, delimiter=";", quoting=csv.QUOTE_MINIMAL)
    a, b = cli("review", build, "--score", path, "--json"), cli("review", build, "--score", saved, "--json")
    sa, sb = ReviewScore.model_validate_json(a.out), ReviewScore.model_validate_json(b.out)
    assert sa.fidelity == sb.fidelity == 1.0 and sa.model_dump(exclude={"sheet"}) == sb.model_dump(exclude={"sheet"})


def test_end_to_end_in_a_process_of_its_own(build: Path, tmp_path: Path) -> None:
    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "molspec.cli", "review", str(build), *argv], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)

    wrote = run("--walks", "2")
    assert wrote.returncode == 0 and (tmp_path / "out-review.csv").is_file()
    sheet = _read(tmp_path / "out-review.csv")
    _write(tmp_path / "out-review.csv", [{**ln, "label": "normal"} for ln in sheet])
    scored = run("--score", "out-review.csv")
    assert scored.returncode == 0 and "Traceback" not in scored.stderr
    assert f"{len(sheet)} of {len(sheet)} steps labelled by hand" in scored.stdout


# ---------------------------------------------------------------- bad sheets: located diagnostics (goldens)


def _label(sheet: Sheet) -> Sheet:
    return [{**ln, "label": ("deep", "Normal", "")[i % 3]} for i, ln in enumerate(sheet)]


def _unknown_label(sheet: Sheet) -> str:
    sheet[4]["label"] = "refelct"
    return _csv(sheet)


def _sha1_mismatch(sheet: Sheet) -> str:
    sheet[2]["sha1"] = "1.23457E+11"  # what a spreadsheet makes of an all-digit hash
    return _csv(sheet)


def _unknown_key(sheet: Sheet) -> str:
    sheet[3]["key"] = "12:03:00"  # what a spreadsheet makes of 12:3
    return _csv(sheet)


def _missing_column(sheet: Sheet) -> str:
    return _csv([{k: v for k, v in ln.items() if k != "sha1"} for ln in sheet])


def _malformed(sheet: Sheet) -> str:
    lines = _csv(sheet).split("\r\n")
    lines[3] = lines[3].replace('","', '" ,"', 1)
    return "\r\n".join(lines)


def _unclosed(sheet: Sheet) -> str:
    return _csv(sheet).removesuffix('"\r\n') + "\r\n"  # the last label opens a quote that never closes


def _csv(sheet: Sheet) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(sheet[0]), quoting=csv.QUOTE_ALL)
    writer.writeheader()
    writer.writerows(sheet)
    return buf.getvalue()


BAD: dict[str, tuple[str, str, Callable[[Sheet], str]]] = {
    "review-unknown-label": ("MOL732", "sheet.csv:6:", _unknown_label),
    "review-sha1-mismatch": ("MOL731", "sheet.csv:4:", _sha1_mismatch),
    "review-key-not-in-build": ("MOL731", "sheet.csv:5:", _unknown_key),
    "review-missing-column": ("MOL730", "sheet.csv:1:1", _missing_column),
    "review-malformed-csv": ("MOL730", "sheet.csv:4:4", _malformed),
    "review-unclosed-quote": ("MOL730", "sheet.csv:", _unclosed),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_sheet_is_a_located_diagnostic(case: str, build: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch, update_goldens: bool) -> None:
    code, where, damage = BAD[case]
    monkeypatch.chdir(build.parent)  # the paths in the render are the relative ones given
    sheet = tmp_path / "sheet.csv"
    assert cli("review", "out", "--out", sheet, "--walks", "3").rc == 0
    bad = Path("sheet.csv")
    bad.write_text(damage(_label(_read(sheet))), encoding="utf-8")
    try:
        ran = cli("review", "out", "--score", "sheet.csv")
        short = cli("review", "out", "--score", "sheet.csv", "--format", "short")
    finally:
        bad.unlink()
    assert ran.rc == 1 and f"error[{code}]" in ran.err and "Traceback" not in ran.err
    assert short.err.startswith(where), short.err
    check_golden(GOLDENS / f"{case}.txt", ran.err, update_goldens)
