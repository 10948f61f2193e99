"""`molspec compare` on a variant build: every variant against one (the first by default).

    Group ──each variant's rows──▶ walks Structure, labelled Structure ──compare, bond_differences──▶ VariantPair

Two views of a variant's structure. *Walks*: the bonds its rows were asked for, as `molspec compare DIR`
reads any build (transitions conditional on the walk going on); variants that change only text or sampling
keep the base walks, so they correlate at r = 1, while a graph swap or a removed bond shows in r and in the
bonds' rows. *Labelled*: the bonds its text was labelled with (the labels its fidelity gate stored, else the
default labeler, or every step re-labelled with a named labeler), which is where a change of instruction,
model or temperature shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from molspec.structure.compare import BondDiff, Comparison, Structure, bond_differences, compare
from molspec.structure.group import Group, GroupVariant

if TYPE_CHECKING:
    from molspec.structure.label import Labeler

GUIDANCE = "paper's guidance: r >= 0.9 compatible (teachers agree), r < 0.8 incompatible (do not mix)"
NO_LABELS = "none"


@dataclass(frozen=True, slots=True)
class View:
    """One structure of two variants compared: r and the rest, and the per-bond differences (b - a)."""

    comparison: Comparison
    bonds: tuple[BondDiff, ...]

    @staticmethod
    def of(a: Structure, b: Structure) -> View:
        return View(compare(a, b), bond_differences(a, b))

    def to_dict(self) -> dict[str, Any]:
        return {**self.comparison.to_dict(), "per_bond": [d.to_dict() for d in self.bonds]}


@dataclass(frozen=True, slots=True)
class VariantPair:
    """One variant (b) against the reference variant (a): their walks, and their labelled text (None: not asked)."""

    a: str
    b: str
    changes: tuple[str, ...]
    same_walks: bool
    walks: View
    labelled: View | None

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "changes": list(self.changes), "same_walks": self.same_walks,
                **self.walks.to_dict(), "labelled": self.labelled.to_dict() if self.labelled else None}


def walk_structure(v: GroupVariant) -> Structure:
    """The structure of the walks a variant's rows realised (what `molspec compare DIR` reads)."""
    from molspec.structure.graphs import load_graph

    return Structure.of(load_graph(str(v.dir))[1])


def labelled_structure(v: GroupVariant, labeler: Labeler | None, relabel: bool) -> Structure:
    """P(next label | label) and label shares of a variant's text (see `fidelity.text_structure`)."""
    from molspec.structure.fidelity import expected_labels, text_structure
    from molspec.structure.rows import bond_kinds, read_rows

    m = v.manifest
    order = list(dict.fromkeys(b for g in m.graphs.values() for b in g.bonds))
    text = text_structure(read_rows(v.dir, m), order, labeler, relabel=relabel,
                          stored_by=m.fidelity.labeler if m.fidelity is not None else None,
                          expected=expected_labels(bond_kinds(v.dir, m)))
    shares = text.shares("labelled")
    return Structure(text.bonds, text.transitions("labelled"), np.asarray([shares[b] for b in text.bonds]))


def compare_group(group: Group, base: str | None = None, labeler: str | None = None) -> list[VariantPair]:
    """Every variant but `base` (default: the first) against `base`, in spec order.

    Args:
        labeler: None: each variant's stored labels, else the default labeler; "none": no labelled view;
            a labeler's name: re-label every step with it.

    Raises:
        MolspecError: MOL701, `base` is not a variant of the group, or a variant's rows cannot be read.
        ValueError: an unknown labeler name.
    """
    ref = group.variant(base) if base else group.variants[0]
    others = [v for v in group.variants if v.name != ref.name]
    walks = {v.name: walk_structure(v) for v in (ref, *others)}
    labelled: dict[str, Structure] = {}
    if labeler != NO_LABELS:
        from molspec.structure.label import get_labeler

        lab = get_labeler(labeler) if labeler else None
        labelled = {v.name: labelled_structure(v, lab, relabel=lab is not None) for v in (ref, *others)}
    return [VariantPair(ref.name, v.name, tuple(v.entry.changes), v.entry.same_walks,
                        View.of(walks[ref.name], walks[v.name]),
                        View.of(labelled[ref.name], labelled[v.name]) if labelled else None) for v in others]


# --------------------------------------------------------------------------------------------------
# Printing
# --------------------------------------------------------------------------------------------------


def text_report(pairs: list[VariantPair], title: str) -> str:
    """The terminal report: one line per pair, then each pair's per-bond differences."""
    lines = [title, f"  {GUIDANCE}"]
    width = max((len(p.b) for p in pairs), default=4)
    for p in pairs:
        changes = ", ".join(p.changes) or "nothing"
        walks = "same walks" if p.same_walks else "other walks"
        c = p.walks.comparison
        text = f"; labelled r = {_r(p.labelled.comparison.r)} ({p.labelled.comparison.verdict})" if p.labelled else ""
        lines.append(f"  {p.b:<{width}}  walks r = {_r(c.r)} ({c.verdict}){text}; {walks}; changes: {changes}")
    for p in pairs:
        lines += ["", f"{p.b} vs {p.a}, walks: per bond (b - a)", *bond_table(p.walks.bonds, p.a, p.b)]
        if p.labelled:
            lines += ["", f"{p.b} vs {p.a}, labelled text: per label (b - a)",
                      *bond_table(p.labelled.bonds, p.a, p.b)]
    return "\n".join(lines)


def bond_table(diffs: tuple[BondDiff, ...], a: str, b: str) -> list[str]:
    """Aligned rows: share in a, in b, the change, the row's total variation and its largest change."""
    width = max(4, *(len(d.bond) for d in diffs)) if diffs else 4
    wa, wb = max(8, len(a) + 6), max(8, len(b) + 6)
    rows = [f"  {'bond':<{width}}  {'share ' + a:>{wa}}  {'share ' + b:>{wb}}  {'change':>7}  {'row TV':>6}  "
            "largest change of P(next | bond)"]
    for d in diffs:
        tv = "—" if math.isnan(d.row_tv) else f"{d.row_tv:.3f}"
        to, diff = d.largest
        if not to:
            change = "absent in both" if d.share_a == d.share_b == 0 else f"absent in {a if d.share_a == 0 else b}"
        else:
            change = f"-> {to} {diff:+.3f}" if abs(diff) > 0 else "none"
        rows.append(f"  {d.bond:<{width}}  {d.share_a:>{wa}.3f}  {d.share_b:>{wb}.3f}  {d.share_diff:>+7.3f}  "
                    f"{tv:>6}  {change}")
    return rows


def _r(r: float) -> str:
    return "n/a" if math.isnan(r) else f"{r:.3f}"
