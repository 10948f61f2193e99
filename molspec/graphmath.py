"""The graph math every stage shares: a graph as a Markov chain, its stationary distribution and expected
walk length, transition counts and row normalisation, length summaries, and structural correlation.

GraphSpec -> arrays: start vector, transition matrix, end vector. Energies are turned into Gibbs–Boltzmann
probabilities, p(b'|b) ∝ exp(-E(b, b') / T), over the targets a row lists. Bond order is the spec's
declaration order restricted to the bonds the graph uses. plan, check, runtime and structure import
this module; it imports nothing but the Spec.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from molspec.spec import GraphSpec, RowSpec

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Chain:
    """A graph as arrays.

    Attributes:
        name: the graph's name.
        bonds: bond names; index i of every array is bonds[i].
        start: P(first bond), shape (K,).
        trans: P(next bond | bond), shape (K, K); row i plus end[i] sums to 1 (or 0 for a dead end).
        end: P(stop after bond), shape (K,).
        min_steps, max_steps: length bounds.
        uses_end: whether some bond has a positive `end` weight (else the length is uniform in the
            bounds).
    """

    name: str
    bonds: tuple[str, ...]
    start: FloatArray
    trans: FloatArray
    end: FloatArray
    min_steps: int
    max_steps: int
    uses_end: bool

    def index(self, bond: str) -> int:
        return self.bonds.index(bond)


def graph_bonds(graph: GraphSpec, declared: Sequence[str]) -> tuple[str, ...]:
    used = {r.source for r in graph.rows} | {e.target for r in graph.rows for e in r.edges}
    return tuple(b for b in declared if b in used)


def row_weights(row: RowSpec, graph: GraphSpec) -> dict[str, float]:
    """The row as probabilities (energies converted, `normalize` applied); may not sum to 1."""
    raw = {e.target: e.weight for e in row.edges}
    if graph.mode == "energy":
        if not raw:
            return {}
        e = np.array(list(raw.values()), dtype=np.float64) / graph.temperature
        w = np.exp(-(e - e.min()))  # shift by the minimum: same ratios, no overflow
        return dict(zip(raw, (w / w.sum()).tolist(), strict=True))
    if graph.normalize:
        total = sum(raw.values())
        return {k: v / total for k, v in raw.items()} if total > 0 else {k: 0.0 for k in raw}
    return raw


def chain(graph: GraphSpec, declared: Sequence[str]) -> Chain:
    """Arrays of `graph`; `declared` is the spec's bond order."""
    bonds = graph_bonds(graph, declared)
    k = len(bonds)
    pos = {b: i for i, b in enumerate(bonds)}
    start, trans, end = np.zeros(k), np.zeros((k, k)), np.zeros(k)
    for row in graph.rows:
        weights = row_weights(row, graph)
        if row.source == "start":
            for tgt, w in weights.items():
                if tgt in pos:
                    start[pos[tgt]] = w
            continue
        i = pos[row.source]
        for tgt, w in weights.items():
            if tgt == "end":
                end[i] = w
            else:
                trans[i, pos[tgt]] = w
    uses_end = bool((end > 0).any())  # `end` in the start row, or with weight 0, stops nothing
    return Chain(graph.name, bonds, start, trans, end, graph.min_steps, graph.max_steps, uses_end)


def stationary(c: Chain) -> FloatArray:
    """The stationary distribution of the bond-to-bond chain (end removed, rows renormalised)."""
    k = len(c.bonds)
    if k == 0:
        return np.zeros(0)
    rows = c.trans.sum(axis=1, keepdims=True)
    p = np.where(rows > 0, c.trans / np.where(rows > 0, rows, 1), np.eye(k))
    a = np.vstack([p.T - np.eye(k), np.ones((1, k))])
    b = np.zeros(k + 1)
    b[-1] = 1.0
    pi, *_ = np.linalg.lstsq(a, b, rcond=None)
    pi = np.clip(pi, 0, None)
    return np.asarray(pi / pi.sum() if pi.sum() > 0 else pi, dtype=np.float64)


def reachable(c: Chain) -> set[int]:
    """Bonds a walk can visit (positive-probability edges from the start)."""
    seen = {int(i) for i in np.flatnonzero(c.start > 0)}
    frontier = list(seen)
    while frontier:
        i = frontier.pop()
        for j in np.flatnonzero(c.trans[i] > 0):
            if int(j) not in seen:
                seen.add(int(j))
                frontier.append(int(j))
    return seen


def can_end(c: Chain) -> set[int]:
    """Bonds from which some path reaches `end`."""
    ok = {int(i) for i in np.flatnonzero(c.end > 0)}
    changed = True
    while changed:
        changed = False
        for i in range(len(c.bonds)):
            if i not in ok and any(c.trans[i, j] > 0 for j in ok):
                ok.add(i)
                changed = True
    return ok


def expected_visits(c: Chain) -> FloatArray:
    """Expected number of steps on each bond in one walk (start, length rule and `end` included).

    Divided by its sum it is the planned bond share of finite walks, which differs from the stationary
    distribution when walks are short or start in one bond (Mole-Syn starts in exploration).
    """
    k = len(c.bonds)
    rows = c.trans.sum(axis=1, keepdims=True)
    p_go = np.where(rows > 0, c.trans / np.where(rows > 0, rows, 1), 0.0)  # moves when ending is not allowed
    with_end = c.trans  # sub-stochastic: the missing mass is the walk ending
    v = c.start / c.start.sum() if c.start.sum() > 0 else np.zeros(k)
    visits = np.zeros(k)
    span = c.max_steps - c.min_steps + 1
    for t in range(c.max_steps):  # v: probability of being on each bond at step t with the walk still going
        if c.uses_end:
            visits += v
            v = v @ (p_go if t + 1 < c.min_steps else with_end)
        else:
            alive = 1.0 if t < c.min_steps else (c.max_steps - t) / span  # P(L > t) for L uniform in bounds
            visits += alive * v
            v = v @ p_go
    return visits


# ---------------------------------------------------------------- counting and comparing structures

COMPATIBLE_R = 0.9  # at or above: same structure (teachers agree at r > 0.9 in the paper)
INCOMPATIBLE_R = 0.8  # below: demonstrations this far from the teacher did not help in the paper
_KL_EPS = 1e-6  # floor for empty shares, so KL stays finite when one side never uses a bond


def transition_counts(bonds: npt.NDArray[np.integer], k: int) -> npt.NDArray[np.int64]:
    """k x k counts of consecutive pairs in walks laid out as rows of bond indices (-1 pads a row's end)."""
    a, b = bonds[:, :-1].astype(np.int64), bonds[:, 1:].astype(np.int64)
    ok = (a >= 0) & (b >= 0)
    return np.bincount(a[ok] * k + b[ok], minlength=k * k).reshape(k, k)


def row_normalise(counts: npt.NDArray[np.number]) -> FloatArray:
    """Counts -> P(next | bond) row by row; a row with no counts stays all zero."""
    rows = counts.sum(axis=1, keepdims=True)
    return np.where(rows > 0, counts / np.where(rows > 0, rows, 1), 0.0).astype(np.float64)


def summary(values: Sequence[int]) -> dict[str, float]:
    """mean, p50, p95, max and total of a list of counts (lengths, tokens); zeros for an empty list."""
    if not values:
        return {"mean": 0.0, "p50": 0, "p95": 0, "max": 0, "total": 0}
    a = np.asarray(values)
    return {"mean": round(float(a.mean()), 2), "p50": int(np.percentile(a, 50)), "p95": int(np.percentile(a, 95)),
            "max": int(a.max()), "total": int(a.sum())}


def pearson(x: FloatArray, y: FloatArray) -> float:
    """Pearson r (np.corrcoef); NaN when either side has no variance."""
    if x.size < 2 or float(np.std(x)) == 0.0 or float(np.std(y)) == 0.0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def kl_divergence(p: FloatArray, q: FloatArray) -> float:
    """KL(p ‖ q) in nats, after flooring both at a tiny epsilon and renormalising."""
    p = np.maximum(p, _KL_EPS)
    q = np.maximum(q, _KL_EPS)
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum(p * np.log(p / q)))
