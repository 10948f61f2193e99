"""The structure of the text (asked vs labelled bonds) in `molspec analyze`, and the typed build reader behind it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import molspec
from molspec.cli import main
from molspec.diagnostics import MolspecError
from molspec.pipeline import build
from molspec.records import Message, Row, Step, read_manifest
from molspec.runtime.build import BuildOptions
from molspec.structure.fidelity import text_structure
from molspec.structure.label import get_labeler
from molspec.structure.rows import read_rows
from tests.publish.echo_spec import write_spec
from tests.runtime.conftest import HEADER
from tests.runtime.conftest import write_spec as write_runtime_spec
from tests.support.specs import BONDS as VOCABULARY
from tests.support.specs import graph

BONDS = ("explore", "deep", "reflect", "normal")


def _row(index: int, asked: list[str], labels: list[str | None]) -> Row:
    steps = [Step(bond=b, text=f"step {i} of sample {index}", n_tokens=4, finish_reason="stop", label=lab)
             for i, (b, lab) in enumerate(zip(asked, labels, strict=True))]
    return Row(id=f"train-{index}", split="train", sample_index=index, question_id=str(index), question="What?",
               gold=None, graph="g", bonds=asked, steps=steps, thinking="", answer="", correct=None,
               messages=[Message(role="user", content="What?")], metadata="{}")


def test_confusion_fidelity_and_transitions_from_stored_labels() -> None:
    rows = [_row(0, ["explore", "deep", "deep"], ["explore", "deep", "reflect"]),
            _row(1, ["deep", "reflect"], ["normal", "reflect"])]
    t = text_structure(rows, BONDS)
    assert t.source == "the build's fidelity gate" and t.steps == 5
    c = t.confusion()
    assert c.tolist() == [[1, 0, 0, 0], [0, 1, 1, 1], [0, 0, 1, 0], [0, 0, 0, 0]]  # rows asked, columns labelled
    fid = t.fidelity()
    assert fid.per_bond == {"explore": (1, 1.0), "deep": (3, pytest.approx(1 / 3)), "reflect": (1, 1.0)}
    assert fid.overall == pytest.approx(3 / 5)
    # Labelled transitions: explore->deep, deep->reflect, normal->reflect; a label never followed has a zero row.
    p = t.transitions("labelled")
    assert p.tolist() == [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 1, 0]]
    assert t.shares("labelled") == {"explore": 0.2, "deep": 0.2, "reflect": 0.4, "normal": 0.2}
    assert t.shares("asked") == {"explore": 0.2, "deep": 0.6, "reflect": 0.2, "normal": 0.0}


def test_rows_without_labels_are_labelled_and_relabel_ignores_stored_ones() -> None:
    cue = get_labeler("cue")
    rows = [_row(0, ["explore", "deep"], ["deep", "deep"]), _row(1, ["deep", "normal"], [None, "normal"])]
    mixed = text_structure(rows, BONDS, cue)
    assert mixed.labelled[0] == ("deep", "deep")  # stored
    assert mixed.labelled[1] == tuple(cue.label("What?", [s.text for s in rows[1].steps]))
    assert mixed.source == "the build's fidelity gate for 1 of them and the `cue` labeler for 1"
    fresh = text_structure(rows, BONDS, cue, relabel=True)
    assert list(fresh.labelled) == [tuple(x) for x in cue.label_many([("What?", [s.text for s in r.steps])
                                                                      for r in rows])]
    assert fresh.source == "the `cue` labeler"


def test_spec_bond_names_count_by_the_label_they_expect() -> None:
    rows = [_row(0, ["try", "check"], ["explore", "reflect"])]
    t = text_structure(rows, ("try", "check"), expected={"try": "explore", "check": "reflect"})
    assert t.bonds == ("try", "check", "explore", "reflect")
    assert t.fidelity().overall == 1.0 and t.fidelity().per_bond["check"] == (1, 1.0)


@pytest.fixture(scope="module")
def two_split_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("analyze-text")
    spec = write_spec(root / "spec", train=30)  # and a test split of 4
    build(molspec.load(spec), BuildOptions(out=root / "out"))
    return root / "out"


def test_analyze_json_has_planned_vs_labelled_confusion_and_fidelity(
        two_split_build: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(two_split_build), "--json"]) == 0
    g = json.loads(capsys.readouterr().out)["graphs"][0]
    steps = sum(len(r.steps) for r in read_rows(two_split_build, read_manifest(two_split_build)))
    gate = read_manifest(two_split_build).fidelity
    assert gate is not None and g["labelled"]["source"] == f"the build's fidelity gate (its `{gate.labeler}` labeler)"
    assert set(g["planned_vs_labelled"]) >= {"r", "verdict", "kl_ab"}
    counts = np.array(g["confusion"]["counts"])
    assert g["confusion"]["asked"] == g["confusion"]["labelled"] and counts.sum() == steps
    for i, bond in enumerate(g["confusion"]["asked"]):
        if counts[i].sum():
            per = g["fidelity"]["per_bond"][bond]
            assert per["steps"] == counts[i].sum() and per["fidelity"] == pytest.approx(counts[i, i] / per["steps"],
                                                                                       abs=1e-4)
    assert g["fidelity"]["overall"] == pytest.approx(np.trace(counts) / steps, abs=1e-4)
    shares = g["labelled"]["shares"]
    assert sum(shares.values()) == pytest.approx(1, abs=1e-3)
    assert [round(x, 4) for x in counts.sum(axis=0) / steps] == pytest.approx([shares[b] for b in g["bonds"]],
                                                                             abs=1e-4)
    # The build's own fidelity (its gate's labeler) and analyze's reading of the same labels agree.
    built = read_manifest(two_split_build).fidelity
    assert built is not None and g["fidelity"]["overall"] == pytest.approx(built.overall, abs=1e-4)


def test_analyze_labeler_options(two_split_build: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(two_split_build), "--json", "--labeler", "cue"]) == 0
    g = json.loads(capsys.readouterr().out)["graphs"][0]
    assert g["labelled"]["source"] == "the `cue` labeler"
    assert main(["analyze", str(two_split_build), "--json", "--labeler", "none"]) == 0
    g = json.loads(capsys.readouterr().out)["graphs"][0]
    assert g["labelled"] is None and g["confusion"] is None and g["planned_vs_realised"]["r"] is not None
    assert main(["analyze", str(two_split_build), "--labeler", "no-such-labeler"]) == 1
    err = capsys.readouterr().err
    assert "no-such-labeler" in err and "Traceback" not in err
    assert main(["analyze", str(two_split_build)]) == 0
    text = capsys.readouterr().out
    assert "asked \\ labelled" in text and "bond fidelity" in text and "planned vs labelled" in text


def test_analyze_with_the_language_model_labeler(two_split_build: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--labeler learned-lm` end to end: the built-in SmolLM2 reads every step, no loading bar in the report."""
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    assert main(["analyze", str(two_split_build), "--json", "--labeler", "learned-lm"]) == 0
    captured = capsys.readouterr()
    g = json.loads(captured.out)["graphs"][0]
    assert g["labelled"]["source"] == "the `learned-lm` labeler"
    assert g["fidelity"]["overall"] is not None and "Loading weights" not in captured.err


def test_read_rows_samples_every_split_and_reports_a_damaged_shard(two_split_build: Path, tmp_path: Path) -> None:
    m = read_manifest(two_split_build)
    rows = read_rows(two_split_build, m)
    assert len(rows) == m.summary.kept and all(isinstance(r, Row) for r in rows)
    some = read_rows(two_split_build, m, limit=10)
    assert 10 <= len(some) <= 10 + len(m.files)
    assert {r.split for r in some} == {r.split for r in rows}
    assert [r.id for r in some] == [r.id for r in rows if r.id in {s.id for s in some}]
    shard = two_split_build / next(iter(m.files.values()))[0]
    broken = tmp_path / "broken"
    (broken / "data").mkdir(parents=True)
    (broken / "molspec.json").write_bytes((two_split_build / "molspec.json").read_bytes())
    for files in m.files.values():
        for rel in files:
            (broken / rel).write_bytes(shard.read_bytes()[:100])
    with pytest.raises(MolspecError) as info:
        read_rows(broken, m)
    assert info.value.diagnostics[0].code == "MOL701"


def test_spec_bond_names_are_scored_by_kind_like_the_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = {"explore": "tryout", "deep": "dig", "reflect": "recheck", "normal": "routine"}
    text = HEADER.format(samples=12) + VOCABULARY + "\n" + graph("2..4") + '\nanswer { verify = "math" }\n'
    spec = write_runtime_spec(tmp_path / "spec", samples=12, steps="2..4")
    spec.write_text(re.sub(r"\b(explore|deep|reflect|normal)\b", lambda mt: names[mt[1]], text))
    build(molspec.load(spec), BuildOptions(out=tmp_path / "out"))
    assert main(["analyze", str(tmp_path / "out"), "--json"]) == 0
    g = json.loads(capsys.readouterr().out)["graphs"][0]
    assert set(g["bonds"]) == set(names.values()) and set(g["fidelity"]["per_bond"]) <= set(names.values())
    built = read_manifest(tmp_path / "out").fidelity
    assert built is not None and built.overall is not None and built.overall > 0  # echo text reads as its kind
    assert g["fidelity"]["overall"] == pytest.approx(built.overall, abs=1e-4)
    for bond, per in g["fidelity"]["per_bond"].items():
        assert per["fidelity"] == pytest.approx(built.per_bond[bond], abs=1e-4)
