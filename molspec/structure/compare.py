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
import numpy.typing as npt

from molspec.graphmath import COMPATIBLE_R, INCOMPATIBLE_R, kl_divergence, pearson
from molspec.structure.estimate import StructureGraph

Matrix = npt.NDArray[np.float64]
Vector = npt.NDArray[np.float64]


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
    return Structure.of(graph).aligned(bonds)


def structure_vector(graph: StructureGraph, bonds: tuple[str, ...] | None = None) -> np.ndarray:
    """The flattened (P, π) vector that the correlation is computed on."""
    p, pi = aligned(graph, bonds or graph.bonds)
    return np.concatenate([p.ravel(), pi])


@dataclass(frozen=True, slots=True)
class Structure:
    """A structure as bare numbers: transitions P(next | bond) and bond shares π over `bonds`.

    What `compare` correlates; a StructureGraph, a build's planned matrix or its labelled text all become one.
    """

    bonds: tuple[str, ...]
    p: Matrix
    pi: Vector

    @staticmethod
    def of(graph: StructureGraph) -> Structure:
        return Structure(tuple(graph.bonds), graph.matrix(), graph.marginal())

    def aligned(self, bonds: tuple[str, ...]) -> tuple[Matrix, Vector]:
        """(P, π) re-indexed to `bonds`; bonds this structure lacks get zero rows and columns."""
        index = {b: i for i, b in enumerate(self.bonds)}
        at = [index.get(b, -1) for b in bonds]
        p, pi = np.zeros((len(bonds), len(bonds))), np.zeros(len(bonds))
        for i, src in enumerate(at):
            if src < 0:
                continue
            pi[i] = self.pi[src]
            for j, dst in enumerate(at):
                if dst >= 0:
                    p[i, j] = self.p[src, dst]
        return p, pi


@dataclass(frozen=True, slots=True)
class BondDiff:
    """How one bond changes from structure a to structure b (b minus a).

    Attributes:
        bond: the bond.
        share_a, share_b: its share of all steps in a and in b (0 where it is absent).
        row_tv: total variation distance of its rows P(next | bond): half the summed absolute differences,
            0 (same row) to 1 (disjoint); NaN when the bond never occurs in a or in b.
        largest: the entry of its row that changes most: (next bond, P_b - P_a); ("", 0.0) with no row.
    """

    bond: str
    share_a: float
    share_b: float
    row_tv: float
    largest: tuple[str, float]

    @property
    def share_diff(self) -> float:
        return self.share_b - self.share_a

    def to_dict(self) -> dict[str, Any]:
        return {"bond": self.bond, "share_a": self.share_a, "share_b": self.share_b, "share_diff": self.share_diff,
                "row_tv": None if math.isnan(self.row_tv) else self.row_tv,
                "largest": {"to": self.largest[0], "diff": self.largest[1]} if self.largest[0] else None}


def compare(a: StructureGraph | Structure, b: StructureGraph | Structure) -> Comparison:
    """Correlate two structures' (P, π) and compare their marginals."""
    sa, sb = _structure(a), _structure(b)
    bonds = union_bonds(sa, sb)
    pa, pia = sa.aligned(bonds)
    pb, pib = sb.aligned(bonds)
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


def bond_differences(a: StructureGraph | Structure, b: StructureGraph | Structure) -> tuple[BondDiff, ...]:
    """Per bond (in the order of a, then b's own), its share and its row of transitions, b against a."""
    sa, sb = _structure(a), _structure(b)
    bonds = union_bonds(sa, sb)
    pa, pia = sa.aligned(bonds)
    pb, pib = sb.aligned(bonds)
    out = []
    for i, bond in enumerate(bonds):
        if not (pia[i] > 0 and pib[i] > 0):  # a bond that never occurs on one side has no row to compare
            out.append(BondDiff(bond, float(pia[i]), float(pib[i]), float("nan"), ("", 0.0)))
            continue
        row = pb[i] - pa[i]
        j = int(np.argmax(np.abs(row)))
        out.append(BondDiff(bond, float(pia[i]), float(pib[i]), 0.5 * float(np.abs(row).sum()),
                            (bonds[j], float(row[j]))))
    return tuple(out)


def union_bonds(a: Structure, b: Structure) -> tuple[str, ...]:
    return tuple(a.bonds) + tuple(x for x in b.bonds if x not in a.bonds)


def _structure(s: StructureGraph | Structure) -> Structure:
    return s if isinstance(s, Structure) else Structure.of(s)
