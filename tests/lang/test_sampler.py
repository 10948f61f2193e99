"""The walk sampler: statistics match the graph, and plans are reproducible and shardable.

scipy is not a dependency: chi-square critical values come from the Wilson-Hilferty approximation
chi2_{df, 1-alpha} ~ df * (1 - 2/(9 df) + z_{1-alpha} sqrt(2/(9 df)))^3, which is within a few
percent of the exact quantile for df >= 3 and slightly above it (conservative); a test checks both
against the exact quantile, computed from the incomplete-gamma series.
"""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import molspec
from molspec.graphmath import Chain, chain
from molspec.plan.compile import Plan, Walks
from molspec.plan.sampler import draws_per_sample, grid, tables, uniforms, walk
from molspec.spec import EdgeSpec, GraphSpec, RowSpec

FIXTURES = Path(__file__).parent / "fixtures" / "compile"
Z_1E4 = 3.719  # the standard normal quantile at 1 - 1e-4
N_WALKS = 100_000


def chi2_critical(df: int, z: float = Z_1E4) -> float:
    """Wilson-Hilferty approximation of the chi-square quantile."""
    k = 2.0 / (9.0 * df)
    return float(df * (1.0 - k + z * np.sqrt(k)) ** 3)


def chi2(observed: npt.NDArray[np.int64], probs: npt.NDArray[np.float64]) -> tuple[float, int]:
    """Pearson's statistic of counts against probabilities (cells with p = 0 must be empty)."""
    n = observed.sum()
    keep = probs > 0
    assert observed[~keep].sum() == 0, "a zero-probability outcome was drawn"
    expected = n * probs[keep]
    return float(((observed[keep] - expected) ** 2 / expected).sum()), int(keep.sum()) - 1


def _chi2_cdf(x: float, df: int) -> float:
    """The chi-square CDF from the series of the lower regularised gamma function."""
    a, half = df / 2.0, x / 2.0
    term = total = 1.0 / a
    n = 1
    while term > 1e-17 * total:
        term *= half / (a + n)
        total += term
        n += 1
    return total * math.exp(-half + a * math.log(half) - math.lgamma(a))


def _chi2_quantile(p: float, df: int) -> float:
    lo, hi = 0.0, 10.0 * df + 100.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _chi2_cdf(mid, df) < p else (lo, mid)
    return lo


@pytest.mark.parametrize("df", [3, 5, 10, 30, 100])
def test_wilson_hilferty_is_close_and_conservative(df: int) -> None:
    exact = _chi2_quantile(1 - 1e-4, df)
    assert exact <= chi2_critical(df) <= exact * 1.04


def sample(c: Chain, n: int, seed: int = 0) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int16]]:
    ids = {b: i for i, b in enumerate(c.bonds)}
    return walk(tables(c, ids), grid(seed, 0, n, draws_per_sample(c.max_steps)), c.max_steps)


def graph(rows: dict[str, dict[str, float]], lo: int, hi: int, has_steps: bool = True) -> GraphSpec:
    specs = tuple(RowSpec(source=s, edges=tuple(EdgeSpec(target=t, weight=w) for t, w in e.items()))
                  for s, e in rows.items())
    return GraphSpec(name="g", rows=specs, min_steps=lo, max_steps=hi, has_steps=has_steps)


BONDS = ("explore", "deep", "reflect", "normal")
QWQ = {"start": {"explore": 0.7, "normal": 0.3},
       "explore": {"deep": 0.50, "normal": 0.25, "reflect": 0.15, "explore": 0.10},
       "deep": {"deep": 0.45, "reflect": 0.25, "normal": 0.20, "explore": 0.10},
       "reflect": {"deep": 0.40, "normal": 0.30, "explore": 0.20, "reflect": 0.10},
       "normal": {"deep": 0.50, "normal": 0.25, "reflect": 0.15, "explore": 0.10}}
R1_END = {"start": {"explore": 1.0},
          "explore": {"deep": 0.6, "normal": 0.3, "reflect": 0.1},
          "deep": {"deep": 0.40, "reflect": 0.25, "normal": 0.15, "explore": 0.05, "end": 0.15},
          "reflect": {"deep": 0.5, "explore": 0.2, "end": 0.3},
          "normal": {"deep": 0.6, "normal": 0.2, "end": 0.2}}


def transition_counts(bonds: npt.NDArray[np.int8], k: int) -> npt.NDArray[np.int64]:
    a, b = bonds[:, :-1].astype(np.int64), bonds[:, 1:].astype(np.int64)
    ok = (a >= 0) & (b >= 0)
    return np.bincount(a[ok] * k + b[ok], minlength=k * k).reshape(k, k)


@pytest.mark.parametrize("rows", [QWQ, R1_END], ids=["uniform-length", "end-weights"])
def test_transition_frequencies_match_the_graph(rows: dict[str, dict[str, float]]) -> None:
    c = chain(graph(rows, 4, 40), BONDS)
    bonds, _ = sample(c, N_WALKS, seed=11)
    counts = transition_counts(bonds, len(c.bonds))
    total, df = 0.0, 0
    for i in range(len(c.bonds)):
        probs = c.trans[i] / c.trans[i].sum()  # moves given that the walk goes on
        stat, d = chi2(counts[i], probs)
        total, df = total + stat, df + d
    assert total < chi2_critical(df), (total, df)


def test_start_distribution_matches() -> None:
    c = chain(graph(QWQ, 4, 8), BONDS)
    bonds, _ = sample(c, N_WALKS, seed=12)
    stat, df = chi2(np.bincount(bonds[:, 0], minlength=len(c.bonds)), c.start)
    assert stat < chi2_critical(df)


def test_uniform_lengths_are_uniform_within_bounds() -> None:
    c = chain(graph(QWQ, 8, 40), BONDS)
    _, lengths = sample(c, N_WALKS, seed=13)
    assert lengths.min() == 8 and lengths.max() == 40
    probs = np.zeros(41)
    probs[8:] = 1 / 33
    stat, df = chi2(np.bincount(lengths, minlength=41), probs)
    assert stat < chi2_critical(df)


def test_end_probabilities_match_after_the_minimum() -> None:
    """From min_steps on, a walk at bond b stops with probability end[b]; before, never."""
    lo, hi = 3, 30
    c = chain(graph(R1_END, lo, hi), BONDS)
    bonds, lengths = sample(c, N_WALKS, seed=14)
    assert lengths.min() >= lo and lengths.max() <= hi
    pos = np.arange(bonds.shape[1])[None, :]
    for i in np.flatnonzero(c.end > 0):
        at = (bonds == i) & (pos + 1 >= lo) & (pos + 1 < hi) & (pos < lengths[:, None])
        stopped = int((at & (pos + 1 == lengths[:, None])).sum())
        went_on = int(at.sum()) - stopped
        stat, df = chi2(np.array([stopped, went_on]), np.array([c.end[i], 1 - c.end[i]]))
        assert stat < chi2_critical(max(df, 1)), (c.bonds[i], stopped, went_on)


@st.composite
def random_graph(draw: st.DrawFn) -> GraphSpec:
    k = draw(st.integers(1, 5))
    names = BONDS[:k] if k <= 4 else (*BONDS, "extra")
    weight = st.one_of(st.just(0.0), st.floats(0.01, 1.0))
    rows: dict[str, dict[str, float]] = {"start": {names[0]: 1.0}}
    use_end = draw(st.booleans())
    for b in names:
        row = {t: draw(weight) for t in names}
        if use_end:
            row["end"] = draw(weight)
        if sum(v for t, v in row.items() if t != "end") == 0:
            row[draw(st.sampled_from(names))] = 1.0
        total = sum(row.values())
        rows[b] = {t: v / total for t, v in row.items() if v > 0}
    lo = draw(st.integers(1, 10))
    hi = draw(st.integers(lo, 24))
    return graph(rows, lo, hi)


@settings(deadline=None, max_examples=60)
@given(g=random_graph(), seed=st.integers(0, 2**32))
def test_walks_only_use_positive_edges(g: GraphSpec, seed: int) -> None:
    c = chain(g, (*BONDS, "extra"))
    bonds, lengths = sample(c, 2000, seed)
    assert ((lengths >= c.min_steps) & (lengths <= c.max_steps)).all()
    steps = np.arange(bonds.shape[1])[None, :]
    assert ((bonds >= 0) == (steps < lengths[:, None])).all()
    assert (c.start[bonds[:, 0]] > 0).all()
    a, b = bonds[:, :-1].astype(np.int64), bonds[:, 1:].astype(np.int64)
    ok = b >= 0
    assert (c.trans[a[ok], b[ok]] > 0).all()
    if c.uses_end:  # otherwise lengths are uniform in the bounds, whatever the last bond
        ended = lengths < c.max_steps
        last = bonds[ended, lengths[ended] - 1]
        assert (c.end[last] > 0).all(), "a walk stopped early at a bond without an end weight"


# ---------------------------------------------------------------- reproducibility

def fixture_plan(name: str = "end-weights", samples: int = 3000) -> Plan:
    return molspec.load(FIXTURES / f"{name}.mol").compile(samples=samples)


def same(a: Walks, b: Walks) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in Walks.__dataclass_fields__)


def concat(parts: list[Walks]) -> Walks:
    return Walks(*(np.concatenate([getattr(p, f) for p in parts]) for f in Walks.__dataclass_fields__))


def test_plans_are_identical_across_runs() -> None:
    assert same(fixture_plan().walks(), fixture_plan().walks())


@settings(deadline=None, max_examples=40)
@given(case=st.sampled_from(["end-weights", "two-splits", "mixed-split", "uniform-length"]),
       k=st.integers(0, 3000), seed=st.integers(0, 2**40))
def test_plans_shard(case: str, k: int, seed: int) -> None:
    plan = molspec.load(FIXTURES / f"{case}.mol").compile(samples=3000, seed=seed)
    assert same(plan.walks(0, 3000), concat([plan.walks(0, k), plan.walks(k, 3000)]))


@settings(deadline=None, max_examples=25)
@given(chunk=st.integers(1, 4000))
def test_plans_do_not_depend_on_chunk_size(chunk: int) -> None:
    plan = fixture_plan("two-splits")
    assert same(plan.walks(), concat(list(plan.iter_walks(0, plan.samples, chunk=chunk))))


def test_seed_changes_the_plan() -> None:
    doc = molspec.load(FIXTURES / "end-weights.mol")
    assert not same(doc.compile(samples=500, seed=1).walks(), doc.compile(samples=500, seed=2).walks())


def test_plans_are_identical_in_another_process() -> None:
    code = ("import hashlib, molspec; p = molspec.load({path!r}).compile(samples=2000); w = p.walks(); "
            "print(hashlib.sha256(w.bonds.tobytes() + w.lengths.tobytes() + w.question.tobytes()).hexdigest())")
    path = str(FIXTURES / "end-weights.mol")
    out = subprocess.run([sys.executable, "-c", code.format(path=path)], capture_output=True, text=True, check=True)
    w = fixture_plan(samples=2000).walks()
    here = hashlib.sha256(w.bonds.tobytes() + w.lengths.tobytes() + w.question.tobytes()).hexdigest()
    assert out.stdout.strip() == here


def reference_walk(c: Chain, u: npt.NDArray[np.float32]) -> list[int]:
    """The sampling rule written plainly, one sample at a time, on float uniforms and cumulative rows."""
    def pick(weights: npt.NDArray[np.float64], x: float) -> int:
        total = weights.sum()
        cdf = np.cumsum(weights / total if total > 0 else weights)[:-1]
        return int((x >= cdf).sum())

    k = len(c.bonds)
    walk_ = [pick(c.start, u[2])]
    if c.uses_end:
        for step in range(1, c.max_steps):
            row = c.trans[walk_[-1]] if step < c.min_steps else np.append(c.trans[walk_[-1]], c.end[walk_[-1]])
            nxt = pick(row, u[3 + step - 1])
            if nxt == k:
                break
            walk_.append(nxt)
        return walk_
    span = c.max_steps - c.min_steps + 1
    length = c.min_steps + min(int(u[1] * np.float32(span)), span - 1)
    for step in range(1, length):
        walk_.append(pick(c.trans[walk_[-1]], u[3 + step - 1]))
    return walk_


@settings(deadline=None, max_examples=40)
@given(g=random_graph(), seed=st.integers(0, 2**32))
def test_sampler_matches_the_plain_rule(g: GraphSpec, seed: int) -> None:
    """The lookup-table sampler draws exactly what the plain float comparison draws."""
    c = chain(g, (*BONDS, "extra"))
    n = 300
    bonds, lengths = sample(c, n, seed)
    u = uniforms(seed, 0, n, draws_per_sample(c.max_steps))
    for i in range(n):
        assert bonds[i, : lengths[i]].tolist() == reference_walk(c, u[i]), i
