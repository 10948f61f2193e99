"""Plans of a spec with variants: the pairing holds in the compiled walks, and `molspec plan` says it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from molspec.api import Document, load
from molspec.cli import main
from molspec.diagnostics import MolspecError
from molspec.plan.compile import Plan
from molspec.plan.pairing import pairing
from molspec.plan.stats import plan_stats, self_loops, transition_shares
from tests.lang.golden import check_golden
from tests.lang.test_compile import canonical, plan_json

ROOT = Path(__file__).resolve().parents[2]
ABLATIONS = ROOT / "examples" / "ablations.mol"
FIXTURE = Path(__file__).parent / "fixtures" / "ablations.plans.json"
SAMPLES = 300  # more than the example's 8, so that graph differences show in the walks


@pytest.fixture(scope="module")
def doc() -> Document:
    return load(ABLATIONS)


@pytest.fixture(scope="module")
def plans(doc: Document) -> dict[str, Plan]:
    return doc.compile_variants(samples=SAMPLES)


def test_fixture_pair(doc: Document, update_goldens: bool) -> None:
    """The first walks and the statistics of every variant's own plan, as one golden file."""
    got = {name: plan_json(p) for name, p in doc.compile_variants().items()}
    check_golden(FIXTURE, canonical(got), update_goldens)


def test_sample_i_has_the_same_question_split_and_seed_in_every_variant(plans: dict[str, Plan]) -> None:
    walks = {name: p.walks(0, SAMPLES) for name, p in plans.items()}
    ref = walks["r1"]
    for name, w in walks.items():
        assert np.array_equal(w.index, ref.index), name
        assert np.array_equal(w.split, ref.split), name
        assert np.array_equal(w.question, ref.question), name
    assert len({p.seed for p in plans.values()}) == 1


def test_a_text_only_variant_keeps_the_walks(plans: dict[str, Plan]) -> None:
    a, b = plans["r1"].walks(0, SAMPLES), plans["terse_answer"].walks(0, SAMPLES)
    assert plans["r1"].bonds == plans["terse_answer"].bonds
    assert np.array_equal(a.bonds, b.bonds) and np.array_equal(a.lengths, b.lengths)
    assert np.array_equal(a.graph, b.graph)


def test_a_graph_variant_walks_other_paths_from_the_same_draws(plans: dict[str, Plan]) -> None:
    r1, qwq = plans["r1"].walks(0, SAMPLES), plans["qwq"].walks(0, SAMPLES)
    assert not np.array_equal(r1.bonds, qwq.bonds)
    explore = plans["qwq"].bonds.index("explore")
    assert (qwq.bonds[:, 0] == explore).all()  # QwQ's graph always starts in exploration


def test_no_reflect_never_reflects(plans: dict[str, Plan]) -> None:
    p = plans["no_reflect"]
    assert "reflect" not in p.bonds
    names = {b for row, n in zip(p.walks(0, SAMPLES).bonds, p.walks(0, SAMPLES).lengths, strict=True)
             for b in p.bond_names(row, int(n))}
    assert names == {"explore", "deep", "normal"}


def test_pairing_in_words(doc: Document) -> None:
    pairs = pairing(doc.variants)
    assert pairs.unpaired == () and pairs.same_walks == {"r1": ("terse_answer",), "qwq": (), "no_reflect": ()}
    assert pairs.sentence() == ("paired: sample i has the same question and seed in every variant; "
                                "same walks as r1: terse_answer; other walks from the same draws: qwq, no_reflect")


def test_transition_shares_sum_to_one(plans: dict[str, Plan]) -> None:
    stats = plan_stats(plans["qwq"])
    assert sum(transition_shares(stats).values()) == pytest.approx(1.0)
    assert 0 < self_loops(stats) < 1


def test_unknown_variant_is_a_diagnostic(doc: Document) -> None:
    with pytest.raises(MolspecError) as err:
        doc.compile(variant="no_reflex")
    (d,) = err.value.diagnostics
    assert d.code == "MOL809" and d.help == "did you mean 'no_reflect'?"


def test_plan_prints_the_variants_side_by_side(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(ABLATIONS)]) == 0
    out = capsys.readouterr().out
    assert "4 variants" in out
    assert ("paired: sample i has the same question and seed in every variant; same walks as r1: terse_answer; "
            "other walks from the same draws: qwq, no_reflect") in out
    assert ["r1", "qwq", "no_reflect", "terse_answer"] in [line.split() for line in out.splitlines()]
    reflect = next(line for line in out.splitlines() if line.strip().startswith("share reflect"))
    assert reflect.split()[-2] == "dropped"
    assert any(line.split()[:2] == ["token", "budget"] for line in out.splitlines())


def test_plan_json_carries_the_pairing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(ABLATIONS), "--json", "--samples", "40"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["pairing"]["paired"] is True and got["pairing"]["same_walks"]["r1"] == ["terse_answer"]
    assert list(got["variants"]) == ["r1", "qwq", "no_reflect", "terse_answer"]
    assert got["variants"]["no_reflect"]["changes"] == ["drop reflect"]
    assert got["variants"]["r1"]["steps"] == got["variants"]["terse_answer"]["steps"]
    assert all(v["samples"] == 40 for v in got["variants"].values())


def test_plan_out_writes_one_walk_file_per_variant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "walks.jsonl"
    assert main(["plan", str(ABLATIONS), "--out", str(out)]) == 0
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [f"walks.{n}.jsonl" for n in sorted(["r1", "qwq", "no_reflect", "terse_answer"])]
    rows = {n: [json.loads(line) for line in (tmp_path / f"walks.{n}.jsonl").read_text().splitlines()]
            for n in ("r1", "terse_answer")}
    assert rows["r1"] == rows["terse_answer"] and len(rows["r1"]) == 8


def test_plan_text_golden(capsys: pytest.CaptureFixture[str], update_goldens: bool,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole human summary of `molspec plan examples/ablations.mol`, for review."""
    monkeypatch.chdir(ROOT)
    assert main(["plan", "examples/ablations.mol"]) == 0
    check_golden(FIXTURE.with_name("ablations.plan.txt"), capsys.readouterr().out, update_goldens)
