"""The structure of a build's text: each step's asked bond next to a label of what its text does.

    list[Row] ──label_rows──▶ labels ──TextStructure──▶ asked vs labelled transitions, shares, confusion, fidelity

A step that already carries a label (the build's fidelity gate labelled it) keeps it; the other rows are
labelled by a labeler, the default one unless another is given. Both the card and `molspec analyze` report
from a `TextStructure`, so they always agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from molspec.records import Row

if TYPE_CHECKING:
    from molspec.structure.label import Labeler

Matrix = npt.NDArray[np.float64]
Counts = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Fidelity:
    """How often a step's text shows the bond it was asked for.

    Attributes:
        per_bond: asked bond -> (steps asked for it, share of them labelled with it); bonds never asked are absent.
        overall: share of all steps labelled with the bond they were asked for (None: no steps).
    """

    per_bond: dict[str, tuple[int, float]]
    overall: float | None


@dataclass(frozen=True, slots=True)
class TextStructure:
    """Asked and labelled bond sequences of a build's rows, with the tables both reports show.

    Attributes:
        bonds: the order of every table: the plan's bonds, then any other label the labeler gave.
        asked: per row, the bond each step was asked for (the row's walk).
        labelled: per row, the label of each step's text.
        source: who labelled the steps, for readers ("the `cue` labeler", "the build's fidelity gate ...").
        rows_total: rows in the build (more than `len(asked)` when only a sample was labelled).
        expected: asked bond -> the label that counts as a hit, where they differ (a spec's own bond names
            mapped to the labeler's by their kind); other bonds expect their own name.
    """

    bonds: tuple[str, ...]
    asked: tuple[tuple[str, ...], ...]
    labelled: tuple[tuple[str, ...], ...]
    source: str
    rows_total: int
    expected: Mapping[str, str] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return sum(len(w) for w in self.asked)

    def transitions(self, which: str) -> Matrix:
        """P(next | bond) between consecutive steps of `which` ("asked" or "labelled"); a bond never seen
        followed by another step has a zero row."""
        return row_normalise(pair_counts(self._walks(which), self.bonds))

    def shares(self, which: str) -> dict[str, float]:
        """Share of all steps per bond, in `bonds` order."""
        counts = bond_counts(self._walks(which), self.bonds)
        total = int(counts.sum())
        return {b: (float(c) / total if total else 0.0) for b, c in zip(self.bonds, counts, strict=True)}

    def confusion(self) -> Counts:
        """Step counts, rows: the asked bond, columns: the label (both in `bonds` order)."""
        idx = {b: i for i, b in enumerate(self.bonds)}
        out = np.zeros((len(self.bonds), len(self.bonds)), dtype=np.int64)
        for walk, labels in zip(self.asked, self.labelled, strict=True):
            for asked, seen in zip(walk, labels, strict=True):
                out[idx[asked], idx[seen]] += 1
        return out

    def fidelity(self) -> Fidelity:
        c = self.confusion()
        col = {b: i for i, b in enumerate(self.bonds)}
        hits = {b: int(c[i, col[self.expected.get(b, b)]]) if self.expected.get(b, b) in col else 0
                for i, b in enumerate(self.bonds)}
        per = {b: (int(c[i].sum()), hits[b] / int(c[i].sum())) for i, b in enumerate(self.bonds) if c[i].sum()}
        total = int(c.sum())
        return Fidelity(per, sum(hits.values()) / total if total else None)

    def _walks(self, which: str) -> tuple[tuple[str, ...], ...]:
        if which not in ("asked", "labelled"):
            raise ValueError(f"which must be 'asked' or 'labelled', not {which!r}")
        return self.asked if which == "asked" else self.labelled


def text_structure(rows: Sequence[Row], plan_bonds: Sequence[str], labeler: Labeler | None = None,
                   relabel: bool = False, rows_total: int | None = None, stored_by: str | None = None,
                   expected: Mapping[str, str] | None = None) -> TextStructure:
    """Label the steps of `rows` and gather the asked and labelled sequences.

    Args:
        plan_bonds: the plan's bonds, first in every table.
        labeler: labels rows without labels of their own; None: the default labeler, made only if needed.
        relabel: label every row with the labeler, ignoring labels the build stored.
        rows_total: rows in the build, when `rows` is a sample of them.
        stored_by: the labeler that made the build's own labels (the fidelity gate's), when known.
        expected: see `TextStructure.expected`.
    """
    asked = tuple(tuple(s.bond for s in r.steps) for r in rows)
    stored = [None if relabel else _stored(r) for r in rows]
    todo = [i for i, s in enumerate(stored) if s is None]
    labels: list[tuple[str, ...]] = [s or () for s in stored]
    name = None
    if todo:
        labeler = labeler if labeler is not None else default_labeler()
        name = str(labeler.name)
        made = labeler.label_many([(rows[i].question, [s.text for s in rows[i].steps]) for i in todo])
        for i, seq in zip(todo, made, strict=True):
            labels[i] = tuple(str(b) for b in seq)
    extra = dict.fromkeys(b for seq in (*asked, *labels) for b in seq if b not in plan_bonds)
    return TextStructure(tuple(plan_bonds) + tuple(extra), asked, tuple(labels),
                         _source(name, stored_by, len(todo), len(rows)),
                         len(rows) if rows_total is None else rows_total, dict(expected or {}))


def expected_labels(kinds: Mapping[str, str]) -> dict[str, str]:
    """Bond name -> the label its text should get: the labeler's bond of the same kind (what the build's gate
    checks too), so a spec's own bond names are scored by their kind."""
    from molspec.structure.label import BOND_KINDS

    by_kind = {kind: label for label, kind in BOND_KINDS.items()}
    return {b: by_kind[k] for b, k in kinds.items() if k in by_kind}


def default_labeler() -> Labeler:
    """The default labeler of `molspec.structure.label` (imported here, late: it is not cheap to import)."""
    from molspec.structure.label import get_labeler

    return get_labeler()


def _stored(row: Row) -> tuple[str, ...] | None:
    """The labels the build's fidelity gate gave the row's steps, when every step has one."""
    labels = [s.label for s in row.steps]
    return tuple(b for b in labels if b is not None) if None not in labels else None


def _source(labeler: str | None, stored_by: str | None, labelled_here: int, rows: int) -> str:
    gate = f"the build's fidelity gate (its `{stored_by}` labeler)" if stored_by else "the build's fidelity gate"
    if rows == 0:
        return "nothing (no rows)"
    if labeler is None:
        return gate
    if labelled_here == rows:
        return f"the `{labeler}` labeler"
    return f"{gate} for {rows - labelled_here:,} of them and the `{labeler}` labeler for {labelled_here:,}"


def bond_counts(walks: Sequence[Sequence[str]], bonds: Sequence[str]) -> Counts:
    idx = {b: i for i, b in enumerate(bonds)}
    out = np.zeros(len(bonds), dtype=np.int64)
    for w in walks:
        for b in w:
            out[idx[b]] += 1
    return out


def pair_counts(walks: Sequence[Sequence[str]], bonds: Sequence[str]) -> Counts:
    """Counts of consecutive (bond, next bond) pairs."""
    idx = {b: i for i, b in enumerate(bonds)}
    out = np.zeros((len(bonds), len(bonds)), dtype=np.int64)
    for w in walks:
        for a, b in zip(w, w[1:], strict=False):
            out[idx[a], idx[b]] += 1
    return out


def row_normalise(counts: Counts) -> Matrix:
    """Rows scaled to sum to 1; an all-zero row stays zero."""
    sums = counts.sum(axis=1, keepdims=True).astype(np.float64)
    out: Matrix = np.divide(counts, sums, out=np.zeros(counts.shape, dtype=np.float64), where=sums > 0)
    return out
