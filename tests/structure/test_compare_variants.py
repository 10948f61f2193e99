"""`molspec compare` on a variant build (every variant against the first, or --base) and on two variant dirs."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from molspec.cli import main
from molspec.structure.compare import Structure, bond_differences, compare
from molspec.structure.compare_variants import compare_group
from molspec.structure.group import open_group
from tests.publish.variant_builds import NAMES, make_group


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_group(tmp_path_factory.mktemp("variants") / "ablations")


def _walks(variant_dir: Path) -> list[list[str]]:
    return [r["bonds"] for p in sorted((variant_dir / "data").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]


def _shares(walks: list[list[str]]) -> dict[str, float]:
    counts = Counter(b for w in walks for b in w)
    total = sum(counts.values())
    return {b: n / total for b, n in counts.items()}


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert main(["compare", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_every_variant_against_the_first(group: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, str(group))
    assert out["base"] == "r1" and "same split, question" in out["pairing"]
    pairs = {p["b"]: p for p in out["pairs"]}
    assert list(pairs) == ["qwq", "no_reflect", "terse_answer"] and all(p["a"] == "r1" for p in out["pairs"])
    # A text-only variant walks r1's walks: identical structure, nothing differs per bond.
    terse = pairs["terse_answer"]
    assert terse["same_walks"] and terse["r"] == pytest.approx(1.0) and terse["verdict"] == "compatible"
    assert terse["changes"] == ["answer.instruct"]
    assert all(d["share_diff"] == 0 and d["row_tv"] == 0 for d in terse["per_bond"])
    # Dropping a bond: its share goes to 0 and its row cannot be compared; the shares are the rows' own.
    no_reflect = pairs["no_reflect"]
    assert no_reflect["changes"] == ["drop reflect"] and not no_reflect["same_walks"]
    by_bond = {d["bond"]: d for d in no_reflect["per_bond"]}
    assert by_bond["reflect"]["share_b"] == 0 and by_bond["reflect"]["row_tv"] is None
    assert by_bond["reflect"]["largest"] is None
    r1, nr = _shares(_walks(group / "r1")), _shares(_walks(group / "no_reflect"))
    for bond, d in by_bond.items():
        assert d["share_a"] == pytest.approx(r1.get(bond, 0.0)) and d["share_b"] == pytest.approx(nr.get(bond, 0.0))
    # The labelled view: the labels the build's fidelity gate stored with each step.
    labels = [[st["label"] for st in r["steps"]] for p in sorted((group / "no_reflect" / "data").glob("*.parquet"))
              for r in pq.read_table(p).to_pylist()]
    labelled = {d["bond"]: d for d in no_reflect["labelled"]["per_bond"]}
    for bond, share in _shares(labels).items():
        assert labelled[bond]["share_b"] == pytest.approx(share)
    assert terse["labelled"]["verdict"] in ("compatible", "caution", "incompatible")
    # The verdict follows the paper's thresholds.
    for p in out["pairs"]:
        r = p["r"]
        assert p["verdict"] == ("compatible" if r >= 0.9 else "incompatible" if r < 0.8 else "caution")


def test_two_variant_directories(group: Path, capsys: pytest.CaptureFixture[str]) -> None:
    whole = {p["b"]: p for p in _json(capsys, str(group))["pairs"]}
    two = _json(capsys, str(group / "r1"), str(group / "qwq"))
    assert two["r"] == pytest.approx(whole["qwq"]["r"]) and two["verdict"] == whole["qwq"]["verdict"]
    assert [d["bond"] for d in two["per_bond"]] == [d["bond"] for d in whole["qwq"]["per_bond"]]
    assert two["per_bond"] == whole["qwq"]["per_bond"]


def test_base_and_text_report(group: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, str(group), "--base", "qwq")
    assert out["base"] == "qwq" and [p["b"] for p in out["pairs"]] == ["r1", "no_reflect", "terse_answer"]
    assert main(["compare", str(group)]) == 0
    text = capsys.readouterr().out
    assert "each against r1" in text and "r >= 0.9 compatible" in text
    line = next(x for x in text.splitlines() if x.strip().startswith("terse_answer  walks"))
    assert line.startswith("  terse_answer  walks r = 1.000 (compatible); labelled r = ")
    assert line.endswith("; same walks; changes: answer.instruct")
    assert "no_reflect vs r1, walks: per bond (b - a)" in text
    assert "no_reflect vs r1, labelled text: per label (b - a)" in text
    section = text.split("no_reflect vs r1, walks")[1].splitlines()
    reflect = next(line for line in section if line.strip().startswith("reflect"))
    assert reflect.rstrip().endswith("absent in no_reflect")


def test_labeler_choice(group: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert all(p["labelled"] is None for p in _json(capsys, str(group), "--labeler", "none")["pairs"])
    cue = _json(capsys, str(group), "--labeler", "cue")["pairs"]
    assert all(p["labelled"] is not None and p["labelled"]["per_bond"] for p in cue)
    assert main(["compare", str(group), "--labeler", "nope"]) == 1
    assert "unknown labeler 'nope'" in capsys.readouterr().err


def test_refusals(group: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(group / "r1")]) == 1
    assert "not a variant build" in capsys.readouterr().err
    assert main(["compare", str(group), str(group / "r1")]) == 1
    assert "compared alone" in capsys.readouterr().err
    assert main(["compare", str(group), "--base", "nope"]) != 0
    assert "no variant 'nope'" in capsys.readouterr().err


def test_group_pairs_in_python(group: Path) -> None:
    g = open_group(group)
    assert [v.name for v in g.variants] == list(NAMES)
    pairs = compare_group(g, labeler="none")
    assert [p.b for p in pairs] == list(NAMES[1:]) and all(p.labelled is None for p in pairs)
    assert pairs[0].to_dict()["per_bond"][0]["bond"] == pairs[0].walks.comparison.bonds[0]


def test_bond_differences_by_hand() -> None:
    import numpy as np

    a = Structure(("x", "y"), np.array([[0.5, 0.5], [1.0, 0.0]]), np.array([0.6, 0.4]))
    b = Structure(("x", "y", "z"), np.array([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5], [1.0, 0.0, 0.0]]),
                  np.array([0.5, 0.3, 0.2]))
    diffs = {d.bond: d for d in bond_differences(a, b)}
    assert diffs["x"].row_tv == pytest.approx(0.5) and diffs["x"].largest[0] == "x"
    assert diffs["x"].largest[1] == pytest.approx(-0.5)
    assert diffs["y"].row_tv == pytest.approx(0.5) and diffs["y"].share_diff == pytest.approx(-0.1)
    assert math.isnan(diffs["z"].row_tv) and diffs["z"].share_a == 0 and diffs["z"].largest == ("", 0.0)
    assert compare(a, a).r == pytest.approx(1.0) and compare(a, b).bonds == ("x", "y", "z")
