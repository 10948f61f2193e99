"""`molspec extract`, `analyze` and `compare` end to end (CLI), on an echo build and on trace files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import molspec
from molspec.cli import main
from molspec.pipeline import build
from molspec.runtime.build import BuildOptions
from molspec.structure.analyze import chi2_sf
from tests.runtime.conftest import write_spec

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "traces"


@pytest.fixture(scope="module")
def echo_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("analyze")
    spec = write_spec(root / "spec", samples=600, steps="4..12")
    build(molspec.load(spec), BuildOptions(out=root / "out"))
    return spec, root / "out"


def test_analyze_echo_build_matches_the_plan(echo_build: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    spec, out = echo_build
    assert main(["analyze", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    g = report["graphs"][0]
    assert g["samples"] == 600
    assert g["planned_vs_realised"]["r"] > 0.99
    assert g["chi2"]["impossible_transitions"] == 0 and g["chi2"]["p_value"] > 1e-4
    assert 0 <= g["fidelity"]["overall"] <= 1 and set(g["fidelity"]["per_bond"]) <= set(g["bonds"])
    assert report["duplicates"]["trace_duplicate_rate"] == 0.0
    assert report["accuracy"]["graded"] == 600
    assert (out / "analysis.png").stat().st_size > 1000
    assert main(["analyze", str(out), "--spec", str(spec)]) == 0
    text = capsys.readouterr().out
    assert "planned vs realised walks" in text and "bond fidelity" in text


def test_compare_spec_with_its_build(echo_build: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    spec, out = echo_build
    assert main(["compare", str(spec), str(out), "--json"]) == 0
    c = json.loads(capsys.readouterr().out)
    assert c["r"] > 0.99 and c["verdict"] == "compatible"


def test_compare_names_a_graph_when_a_spec_has_several(capsys: pytest.CaptureFixture[str]) -> None:
    iso = Path(__file__).resolve().parents[2] / "examples" / "isomers.mol"
    assert main(["compare", str(iso), str(iso)]) == 1
    assert "graphs" in capsys.readouterr().err


def test_chi2_survival_function_matches_known_values() -> None:
    # Reference values of the chi-square distribution's upper tail.
    assert chi2_sf(3.841, 1) == pytest.approx(0.05, abs=2e-4)
    assert chi2_sf(18.307, 10) == pytest.approx(0.05, abs=2e-4)
    assert chi2_sf(2.0, 2) == pytest.approx(0.36788, abs=1e-4)
    assert chi2_sf(100.0, 4) < 1e-15


def _trace_file(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_extract_writes_a_valid_graph(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    thinking = ("Let me read the problem. We need x.\n\nSo 2x = 6, therefore x = 3.\n\n"
                "Wait, let me check that: 2 * 3 = 6. Yes.\n\nAlternatively, try guessing values of x.")
    traces = _trace_file(tmp_path / "t.jsonl", [{"id": str(i), "thinking": thinking} for i in range(5)])
    out = tmp_path / "g.mol"
    assert main(["extract", str(traces), "-o", str(out), "--name", "mine", "--labels", str(tmp_path / "l.jsonl")]) == 0
    doc = molspec.load(out)
    assert doc.ok and "mine" in doc.spec.graphs  # type: ignore[union-attr]
    labels = [json.loads(line) for line in (tmp_path / "l.jsonl").read_text().splitlines()]
    assert len(labels) == 5 and labels[0]["steps"]
    assert main(["fmt", "--check", str(out)]) == 0


@pytest.mark.parametrize("rows, needle", [
    (['{"thinking": "a"}', "{not json"], "t.jsonl:2"),
    ([{"id": "x", "answer": "no thinking here"}], "t.jsonl:1"),
    ([], "t.jsonl"),
])
def test_extract_bad_input_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             rows: list[object], needle: str) -> None:
    traces = _trace_file(tmp_path / "t.jsonl", rows)
    assert main(["extract", str(traces), "-o", str(tmp_path / "g.mol")]) == 1
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "g.mol").exists()


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data is not present")
def test_teachers_are_compatible_isomers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("deepseek-r1", "qwq-32b"):
        assert main(["extract", str(SHARED / f"{name}.sample.jsonl"), "-o", str(tmp_path / f"{name}.mol")]) == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "deepseek-r1.mol"), str(tmp_path / "qwq-32b.mol"), "--json"]) == 0
    c = json.loads(capsys.readouterr().out)
    assert c["r"] >= 0.9 and c["verdict"] == "compatible"  # the paper: teachers' graphs agree at r > 0.9


def test_the_cli_names_every_labeler() -> None:
    from molspec.structure.cli import LABELER_CHOICES
    from molspec.structure.label import LABELERS

    assert set(LABELER_CHOICES) == set(LABELERS)
