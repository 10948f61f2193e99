"""Comparing graphs: Pearson r over (P, π), KL of the marginals, and the paper's bands."""

from __future__ import annotations

import math

import pytest

from molspec.graphmath import kl_divergence, pearson
from molspec.structure.compare import compare, structure_vector, verdict
from molspec.structure.estimate import estimate

A = [["normal", "explore", "deep", "deep", "reflect", "normal"], ["explore", "deep", "reflect", "deep"]] * 5
B = [["reflect", "reflect", "normal", "explore", "explore"], ["normal", "normal", "explore", "reflect"]] * 5


def test_identical_graphs_correlate_perfectly() -> None:
    g = estimate(A, alpha=0.5)
    c = compare(g, g)
    assert c.r == pytest.approx(1.0)
    assert c.verdict == "compatible"
    assert c.kl_ab == pytest.approx(0.0, abs=1e-12) and c.kl_ba == pytest.approx(0.0, abs=1e-12)
    assert c.n == 4 * 4 + 4
    assert abs(c.max_diff[2]) == pytest.approx(0.0)


def test_different_graphs_are_flagged() -> None:
    a, b = estimate(A, alpha=0.5), estimate(B, alpha=0.5)
    c = compare(a, b)
    assert c.r < 0.8 and c.verdict == "incompatible"
    assert c.kl_ab > 0 and c.kl_ba > 0
    assert c.to_dict()["verdict"] == "incompatible"
    assert "incompatible" in c.summary()
    assert compare(b, a).r == pytest.approx(c.r)  # symmetric


def test_bands() -> None:
    assert verdict(0.95) == verdict(0.9) == "compatible"
    assert verdict(0.85) == "caution"
    assert verdict(0.79) == "incompatible"
    assert verdict(math.nan) == "undefined"


def test_helpers() -> None:
    import numpy as np

    assert math.isnan(pearson(np.ones(3), np.arange(3.0)))
    assert pearson(np.arange(4.0), 2 * np.arange(4.0) + 1) == pytest.approx(1.0)
    assert kl_divergence(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == pytest.approx(0.0)
    assert math.isfinite(kl_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])))
    assert structure_vector(estimate(A)).shape == (20,)


def test_graphs_over_different_bond_sets_align_by_name() -> None:
    from molspec.structure.estimate import GraphCounter

    counter = GraphCounter(("deep", "verify", "normal"))
    counter.add(["deep", "verify", "normal", "deep"])
    other = estimate([["normal", "deep", "deep"]])
    c = compare(other, counter.graph())
    assert c.bonds == ("explore", "deep", "reflect", "normal", "verify")
    assert c.n == 5 * 5 + 5
