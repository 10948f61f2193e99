"""The card's structure section and picture: the plan next to the structure of the text that was written.

    Manifest (planned) + rows ──text_structure──▶ CardStructure ──▶ tables (README.md), structure.png

The rows are labelled here (the build's own labels where its steps carry them, else the default labeler),
so the picture and the numbers change when the text does, even when the plan does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from molspec.graphmath import pearson
from molspec.publish.markdown import matrix_table, pct, table
from molspec.records import FidelityInfo, Manifest
from molspec.structure.compare import verdict
from molspec.structure.fidelity import TextStructure, expected_labels, text_structure
from molspec.structure.rows import bond_kinds, read_rows

# Rows labelled for the card: thousands of steps, shares to about 1%. A bigger build is labelled on a
# sample of each split.
CARD_LABEL_ROWS = 500
Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CardStructure:
    """What the card shows about structure.

    Attributes:
        plan_bonds: the plan's bonds, in its order.
        planned: P(next | bond) of the plan's walks, over `text.bonds` (zero rows for labels outside the plan).
        planned_shares: bond -> share of the plan's steps.
        text: the rows' asked and labelled bonds.
        led: how many of the labelled rows' steps open with words the spec wrote (a bond's `lead`).
    """

    plan_bonds: tuple[str, ...]
    planned: Matrix
    planned_shares: dict[str, float]
    text: TextStructure
    led: int = 0

    @property
    def bonds(self) -> tuple[str, ...]:
        return self.text.bonds

    def correlation(self) -> float:
        """Pearson r of the flattened (P, π) of plan and labels, as `molspec compare` computes it."""
        labelled = self.text.shares("labelled")
        return pearson(np.concatenate([self.planned.ravel(), [self.planned_shares.get(b, 0.0) for b in self.bonds]]),
                       np.concatenate([self.text.transitions("labelled").ravel(), [labelled[b] for b in self.bonds]]))


def card_structure(build_dir: Path, m: Manifest) -> CardStructure:
    """Label the build's rows (a sample of each split beyond CARD_LABEL_ROWS) and align them with the plan."""
    plan_bonds = tuple(bond_order(m))
    rows = read_rows(build_dir, m, limit=CARD_LABEL_ROWS)
    text = text_structure(rows, plan_bonds, rows_total=m.summary.kept,
                          stored_by=m.fidelity.labeler if m.fidelity is not None else None,
                          expected=expected_labels(bond_kinds(build_dir, m)))
    return CardStructure(plan_bonds, _aligned(m.planned.transitions.bonds, m.planned.transitions.matrix, text.bonds),
                         dict(m.planned.bond_shares), text, led=sum(bool(s.lead) for r in rows for s in r.steps))


def bond_order(m: Manifest) -> list[str]:
    """The bond names in the order the plan uses (the matrices' row order)."""
    for transitions in (m.planned.transitions, m.realised.transitions):
        if transitions.bonds:
            return list(transitions.bonds)
    return list(dict.fromkeys(b for g in m.graphs.values() for b in g.bonds))


def _aligned(names: list[str], matrix: list[list[float]], bonds: tuple[str, ...]) -> Matrix:
    pos = {b: i for i, b in enumerate(bonds)}
    out = np.zeros((len(bonds), len(bonds)))
    for a, row in zip(names, matrix, strict=False):
        for b, p in zip(names, row, strict=False):
            if a in pos and b in pos:
                out[pos[a], pos[b]] = float(p)
    return out


# --------------------------------------------------------------------------------------------------
# The picture
# --------------------------------------------------------------------------------------------------


def structure_png(cs: CardStructure, name: str) -> bytes:
    """planned | labelled transitions, asked vs labelled bonds | bond shares; the PNG's bytes."""
    from molspec.structure.plots import Bars, Heatmap, Panel, figure_png

    bonds = list(cs.bonds)
    labelled = cs.text.shares("labelled")
    grid: list[list[Panel]] = [
        [Heatmap("Planned transitions (the plan's walks)", cs.planned, bonds, bonds),
         Heatmap(f"Labelled transitions (the text, {cs.text.steps:,} steps)", cs.text.transitions("labelled"),
                 bonds, bonds, "next label", "label")],
        [Heatmap("Asked vs labelled bond (diagonal: fidelity)", confusion_shares(cs.text), bonds, bonds,
                 "labelled bond", "asked bond"),
         Bars("Bond shares", bonds, {"planned": [cs.planned_shares.get(b, 0.0) for b in bonds],
                                     "labelled": [labelled[b] for b in bonds]})],
    ]
    return figure_png(grid, f"{name}: Mole-Syn structure, planned vs labelled")


def confusion_shares(text: TextStructure) -> Matrix:
    """The confusion matrix with each asked bond's row scaled to 1."""
    counts = text.confusion().astype(np.float64)
    sums = counts.sum(axis=1, keepdims=True)
    out: Matrix = np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)
    return out


# --------------------------------------------------------------------------------------------------
# The tables
# --------------------------------------------------------------------------------------------------


def structure_context(cs: CardStructure, m: Manifest) -> dict[str, Any]:
    """What the template's structure section needs (tables rendered, numbers formatted)."""
    text = cs.text
    r = cs.correlation()
    fid = text.fidelity()
    return {
        "labelled_rows": len(text.asked), "rows_total": text.rows_total, "label_source": text.source,
        "fidelity_overall": pct(fid.overall), "correlation": "n/a" if math.isnan(r) else f"{r:.2f}",
        "verdict": verdict(r), "shares_table": _shares_table(cs, m), "fidelity_table": _fidelity_table(text),
        "planned_table": matrix_table(cs.plan_bonds, cs.plan_bonds, cs.planned[:len(cs.plan_bonds),
                                                                               :len(cs.plan_bonds)]),
        "labelled_table": matrix_table(cs.bonds, cs.bonds, text.transitions("labelled")),
        "gate": _gate(m.fidelity),
        "led": f"{cs.led:,} of the {text.steps:,}" if cs.led else None,
    }


def _gate(info: FidelityInfo | None) -> str | None:
    """One sentence on what the build's fidelity gate did (None: the build had none)."""
    if info is None:
        return None
    why = ", ".join(f"{k} {n:,}" for k, n in sorted(info.reasons.items()))
    left = ", ".join(f"{k} {n:,}" for k, n in sorted(info.problems.items()))
    head = (f"The build's fidelity gate was {'on' if info.gate else 'off'} (labeler `{info.labeler or '?'}`): "
            f"{info.retries:,} steps asked again" + (f" ({why})" if why else ""))
    return (f"{head}, {info.repaired:,} kept steps trimmed back to their last complete sentence, "
            f"{'kept steps still flagged: ' + left if left else 'no kept step still flagged'}.")


def _shares_table(cs: CardStructure, m: Manifest) -> str:
    stationary = m.planned.stationary
    asked, labelled = cs.text.shares("asked"), cs.text.shares("labelled")
    header = ["bond", "planned", "asked", "labelled"] + [f"stationary ({g})" for g in stationary]
    rows = [[b, pct(cs.planned_shares.get(b)), pct(asked[b]), pct(labelled[b])]
            + [pct(stationary[g].get(b)) for g in stationary] for b in cs.bonds]
    return table(header, rows)


def _fidelity_table(text: TextStructure) -> str:
    c = text.confusion()
    per = text.fidelity().per_bond
    rows = [[b, *map(str, c[i]), str(int(c[i].sum())), pct(per[b][1]) if b in per else "—"]
            for i, b in enumerate(text.bonds)]
    overall = text.fidelity().overall
    rows.append(["all", *map(str, c.sum(axis=0)), str(int(c.sum())), pct(overall)])
    return table(["asked \\ labelled", *text.bonds, "steps", "fidelity"], rows)
