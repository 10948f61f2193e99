"""Estimating graphs: counts, smoothing, rows that sum to 1, and the .mol / JSON output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from molspec.structure.estimate import LabelledTrace, StructureGraph, estimate, labels_to_json
from molspec.structure.label import BONDS

SEQS = [
    ["normal", "explore", "deep", "deep", "reflect", "normal"],
    ["explore", "deep", "reflect", "deep"],
    ["normal", "deep", "deep"],
]


def test_counts_without_smoothing() -> None:
    g = estimate(SEQS)
    i = {b: k for k, b in enumerate(BONDS)}
    assert g.bonds == BONDS
    assert g.n_traces == 3 and g.n_steps == 13
    assert g.start[i["normal"]] == pytest.approx(2 / 3) and g.start[i["explore"]] == pytest.approx(1 / 3)
    # deep is followed by: deep, reflect, reflect, deep, end(trace 3) ... and ends trace 2
    deep = g.transition_counts[i["deep"]]
    assert deep[i["deep"]] == 2 and deep[i["reflect"]] == 2
    assert g.end_counts[i["deep"]] == 2 and g.end_counts[i["normal"]] == 1
    assert g.row_counts[i["deep"]] == 6
    assert g.transitions[i["deep"]][i["reflect"]] == pytest.approx(2 / 6)
    assert g.end[i["deep"]] == pytest.approx(2 / 6)
    assert sum(g.shares) == pytest.approx(1.0)
    assert (g.steps.min, g.steps.p50, g.steps.max) == (3, 4, 6)


@pytest.mark.parametrize("alpha", [0.0, 0.1, 1.0, 5.0])
def test_rows_sum_to_one(alpha: float) -> None:
    g = estimate(SEQS, alpha=alpha)
    rows = np.asarray(g.transitions).sum(axis=1) + np.asarray(g.end)
    assert np.allclose(rows, 1.0)
    assert sum(g.start) == pytest.approx(1.0)
    if alpha > 0:
        assert min(min(r) for r in g.transitions) > 0 and min(g.end) > 0


def test_smoothing_formula() -> None:
    g = estimate(SEQS, alpha=1.0)
    i = BONDS.index("deep")
    # (n(deep, reflect) + 1) / (n(deep) + 1 * (K + 1))
    assert g.transitions[i][BONDS.index("reflect")] == pytest.approx((2 + 1) / (6 + 5))
    unseen = estimate([["deep"]], alpha=0.0)
    assert unseen.transitions[BONDS.index("normal")] == pytest.approx((0.2,) * 4)  # no evidence: uniform


def test_unknown_bond_and_bad_alpha() -> None:
    with pytest.raises(ValueError, match="unknown bond 'verify'"):
        estimate([["deep", "verify"]])
    with pytest.raises(ValueError, match="alpha"):
        estimate(SEQS, alpha=-1)


def mol_rows(text: str) -> dict[str, dict[str, float]]:
    rows = {}
    for match in re.finditer(r"^\s+(\w+)\s+->\s+([^#\n]+)", text, re.MULTILINE):
        edges = [e.split() for e in match.group(2).split("|")]
        rows[match.group(1)] = {name: float(value) for name, value in edges}
    return rows


def test_to_mol_format() -> None:
    g = estimate([*SEQS, ["reflect", "explore", "normal"]], alpha=0.5)
    text = g.to_mol("r1", source_note="molspec extract r1.jsonl")
    lines = text.splitlines()
    assert lines[0] == "molspec 1"
    assert "# extracted from 4 traces of an unrecorded teacher (16 steps)" in text
    assert "# molspec extract r1.jsonl" in text
    assert sum(line.startswith("bond ") for line in lines) == 4
    assert "graph r1 {" in text and lines[-1] == "}"
    rows = mol_rows(text)
    assert list(rows) == ["start", *BONDS]
    for name, edges in rows.items():
        # exactly 1 in thousandths: the largest entry absorbs the rounding
        assert sum(round(v * 1000) for v in edges.values()) == 1000, name
        assert all(re.fullmatch(r"\d\.\d{2,3}", f"{v}") or v in (0.0, 1.0) for v in edges.values())
        if name != "start":
            assert "end" in edges
    for bond, n in zip(BONDS, g.row_counts, strict=True):
        assert re.search(rf"^\s+{bond}\s+->.*# n={n}$", text, re.MULTILINE)
    assert re.search(r"^\s+steps = \d+\.\.\d+$", text, re.MULTILINE)


def test_to_mol_rounding_keeps_rows_exact() -> None:
    third = 1 / 3
    g = StructureGraph(
        bonds=BONDS,
        start=(third, third, third, 0.0),
        transitions=((0.1111, 0.1111, 0.1111, 0.1111),) * 4,
        end=(0.5556,) * 4,
        row_counts=(9, 9, 9, 9),
        shares=(0.25,) * 4,
        steps=estimate(SEQS).steps,
        n_traces=3,
    )
    rows = mol_rows(g.to_mol("x"))
    assert rows["start"] == {"explore": 0.334, "deep": 0.333, "reflect": 0.333}  # zero start entries dropped
    assert all(sum(round(v * 1000) for v in r.values()) == 1000 for r in rows.values())


def test_to_mol_bond_modes_and_name_check() -> None:
    g = estimate(SEQS)
    assert 'use "bonds/standard.mol"' in g.to_mol("a", bonds="use")
    bare = g.to_mol("a", bonds="none")
    assert not re.search(r"^(bond|use) ", bare, re.MULTILINE)
    with pytest.raises(ValueError, match="identifier"):
        g.to_mol("not a name")
    with pytest.raises(ValueError, match="bonds must be"):
        g.to_mol("a", bonds="import")


def test_written_graph_passes_molspec_check(tmp_path: Path) -> None:
    molspec = pytest.importorskip("molspec.api")
    path = tmp_path / "teacher.mol"
    path.write_text(estimate(SEQS, alpha=0.5).to_mol("teacher", source_note="test"), encoding="utf-8")
    doc = molspec.load(path)
    assert doc.ok, [str(d) for d in doc.check()]


def test_json_outputs() -> None:
    g = estimate(SEQS, alpha=0.5)
    data = json.loads(g.to_json())
    assert data["bonds"] == list(BONDS) and data["n_steps"] == 13
    assert data["counts"]["transitions"][1][1] == 2
    traces = [LabelledTrace("t1", ("normal", "deep"), ((0, 5), (7, 12)), "f.jsonl", "m")]
    (line,) = labels_to_json(traces).splitlines()
    assert json.loads(line) == {
        "id": "t1",
        "source": "f.jsonl",
        "teacher_model": "m",
        "steps": [{"bond": "normal", "start": 0, "end": 5}, {"bond": "deep", "start": 7, "end": 12}],
    }
    assert estimate([LabelledTrace("t", ("deep",), teacher_model="R1")]).teacher == "R1"
