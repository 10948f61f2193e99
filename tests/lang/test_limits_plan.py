"""Issue 10 item 10: `samples = 1000000000` passes check with a warning, and `plan` / a range of walks
cost in proportion to what they produce (the planner is counter-based, so any range is drawn alone)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import molspec
from molspec.cli import main
from molspec.plan.stats import plan_stats
from tests.lang.corpus import ROOT

BILLION = 1_000_000_000


@pytest.fixture
def big(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """examples/quickstart.mol with a billion samples, next to a copy of its data."""
    shutil.copytree(ROOT / "examples" / "data", tmp_path / "data")
    text = (ROOT / "examples" / "quickstart.mol").read_text(encoding="utf-8")
    path = tmp_path / "big.mol"
    path.write_text(re.sub(r"samples = \d+", f"samples = {BILLION}", text), encoding="utf-8")
    assert f"samples = {BILLION}" in path.read_text(encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return path


def test_check_warns_with_the_size_in_memory(big: Path) -> None:
    doc = molspec.load(big)
    assert doc.ok
    (d,) = [d for d in doc.diagnostics if d.code == "MOL610"]
    assert "1,000,000,000 samples" in d.message and " GB " in d.message and not d.is_error


def test_the_last_walks_of_a_billion_are_drawn_alone(big: Path) -> None:
    plan = molspec.load(big).compile()
    assert plan.samples == BILLION
    tail = plan.walks(BILLION - 5, BILLION)
    assert tail.index.tolist() == list(range(BILLION - 5, BILLION)) and (tail.lengths > 0).all()
    again = plan.walks(BILLION - 3, BILLION + 10)  # stop is clamped to the plan
    assert np.array_equal(again.bonds, tail.bonds[2:])


def test_plan_statistics_are_estimated_from_a_bounded_number_of_walks(big: Path) -> None:
    stats = plan_stats(molspec.load(big).compile(), budget=8192)
    assert stats.estimated and stats.walked == 8192 and stats.samples == BILLION
    assert 3 * BILLION < stats.steps["total"] < 5 * BILLION  # quickstart walks are 3..5 steps
    assert abs(stats.engine_calls - stats.steps["total"] - BILLION) < 100  # both scaled, rounded per bin


def test_estimates_agree_with_exact_statistics() -> None:
    plan = molspec.load(ROOT / "examples" / "isomers.mol").compile(samples=40_000)
    exact, estimate = plan_stats(plan), plan_stats(plan, budget=10_000)
    assert not exact.estimated and estimate.estimated and estimate.walked <= 10_000
    for bond, share in exact.bond_shares.items():
        assert abs(estimate.bond_shares[bond] - share) < 0.02, bond
    assert abs(estimate.steps["mean"] - exact.steps["mean"]) < 0.2
    assert set(estimate.splits) == set(exact.splits)


def test_plan_command_on_a_billion_samples(big: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "big.mol", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["samples"] == BILLION and out["estimated_from_walks"] == 1 << 20
