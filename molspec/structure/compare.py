"""Structural correlation of two behaviour-transition graphs (the paper's isomer test).

The paper compares corpora by the Pearson correlation of their flattened (transition matrix P,
marginal π): r > 0.9 across strong teachers; demonstrations with r < 0.8 to the teacher fail like
random ones. Here: r ≥ 0.9 is "compatible", r < 0.8 "incompatible", in between "caution". The KL
divergence of the marginals is reported alongside, since r ignores a uniform shift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from molspec.graphmath import COMPATIBLE_R, INCOMPATIBLE_R, kl_divergence, pearson
from molspec.structure.estimate import StructureGraph


@dataclass(frozen=True, slots=True)
class Comparison:
    """How alike two graphs are.

    Attributes:
        bonds: the bond order used for both (the union of their bonds).
        r: Pearson correlation of the flattened (P, π) vectors; NaN when either vector is constant.
        n: length of the compared vectors (K·K + K).
        kl_ab: KL(π_a ‖ π_b) in nats.
        kl_ba: KL(π_b ‖ π_a) in nats.
        max_diff: the largest |P_a − P_b| entry, and where: (from bond, to bond, difference).
        verdict: "compatible", "caution", "incompatible", or "undefined" when r is NaN.
    """

    bonds: tuple[str, ...]
    r: float
    n: int
    kl_ab: float
    kl_ba: float
    max_diff: tuple[str, str, float]
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "bonds": list(self.bonds),
            "r": None if math.isnan(self.r) else self.r,
            "n": self.n,
            "kl_ab": self.kl_ab,
            "kl_ba": self.kl_ba,
            "max_diff": {"from": self.max_diff[0], "to": self.max_diff[1], "diff": self.max_diff[2]},
            "verdict": self.verdict,
        }

    def summary(self) -> str:
        """One line for terminals and logs."""
        src, dst, diff = self.max_diff
        return (
            f"r = {self.r:.3f} ({self.verdict}), KL(a‖b) = {self.kl_ab:.4f}, KL(b‖a) = {self.kl_ba:.4f}, "
            f"largest transition difference {src} -> {dst} {diff:+.3f}"
        )


def verdict(r: float) -> str:
    """Name the correlation band (thresholds from the paper, see module docstring)."""
    if math.isnan(r):
        return "undefined"
    if r >= COMPATIBLE_R:
        return "compatible"
    return "incompatible" if r < INCOMPATIBLE_R else "caution"


def aligned(graph: StructureGraph, bonds: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(P, π) of `graph` re-indexed to `bonds`; bonds the graph lacks get zero rows and columns."""
    index = {b: i for i, b in enumerate(graph.bonds)}
    k = len(bonds)
    p = np.zeros((k, k))
    pi = np.zeros(k)
    src = graph.matrix()
    shares = graph.marginal()
    for i, a in enumerate(bonds):
        if a not in index:
            continue
        pi[i] = shares[index[a]]
        for j, b in enumerate(bonds):
            if b in index:
                p[i, j] = src[index[a], index[b]]
    return p, pi


def structure_vector(graph: StructureGraph, bonds: tuple[str, ...] | None = None) -> np.ndarray:
    """The flattened (P, π) vector that the correlation is computed on."""
    p, pi = aligned(graph, bonds or graph.bonds)
    return np.concatenate([p.ravel(), pi])


def compare(a: StructureGraph, b: StructureGraph) -> Comparison:
    """Correlate two graphs' (P, π) and compare their marginals."""
    bonds = tuple(a.bonds) + tuple(x for x in b.bonds if x not in a.bonds)
    pa, pia = aligned(a, bonds)
    pb, pib = aligned(b, bonds)
    r = pearson(np.concatenate([pa.ravel(), pia]), np.concatenate([pb.ravel(), pib]))
    diff = pa - pb
    i, j = np.unravel_index(int(np.argmax(np.abs(diff))), diff.shape)
    return Comparison(
        bonds=bonds,
        r=r,
        n=pa.size + pia.size,
        kl_ab=kl_divergence(pia, pib),
        kl_ba=kl_divergence(pib, pia),
        max_diff=(bonds[int(i)], bonds[int(j)], float(diff[i, j])),
        verdict=verdict(r),
    )
