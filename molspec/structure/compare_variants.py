"""`molspec compare` on a variant build: every variant against one (the first by default).

    Group ──walks of each variant's rows──▶ Structure per variant ──compare, bond_differences──▶ VariantPair

The structure of a variant is the walks its rows realised, as `molspec compare` reads any build directory
(transitions conditional on the walk going on). Variants that change only text or sampling keep the base
walks, so they correlate at r = 1; a graph swap or a removed bond shows in r and in the bonds' rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from molspec.structure.compare import BondDiff, Comparison, Structure, bond_differences, compare
from molspec.structure.group import Group, GroupVariant

GUIDANCE = "paper's guidance: r >= 0.9 compatible (teachers agree), r < 0.8 incompatible (do not mix)"


@dataclass(frozen=True, slots=True)
class VariantPair:
    """One variant (b) against the reference variant (a)."""

    a: str
    b: str
    changes: tuple[str, ...]
    same_walks: bool
    comparison: Comparison
    bonds: tuple[BondDiff, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "changes": list(self.changes), "same_walks": self.same_walks,
                **self.comparison.to_dict(), "per_bond": [d.to_dict() for d in self.bonds]}


def walk_structure(v: GroupVariant) -> Structure:
    """The structure of the walks a variant's rows realised (what `molspec compare DIR` reads)."""
    from molspec.structure.graphs import load_graph

    return Structure.of(load_graph(str(v.dir))[1])


def compare_group(group: Group, base: str | None = None) -> list[VariantPair]:
    """Every variant but `base` (default: the first) against `base`, in spec order.

    Raises:
        MolspecError: MOL701, `base` is not a variant of the group, or a variant's rows cannot be read.
    """
    ref = group.variant(base) if base else group.variants[0]
    ref_structure = walk_structure(ref)
    return [pair(ref.name, ref_structure, v.name, walk_structure(v), v.entry.changes, v.entry.same_walks)
            for v in group.variants if v.name != ref.name]


def pair(a: str, sa: Structure, b: str, sb: Structure, changes: list[str] | tuple[str, ...] = (),
         same_walks: bool = False) -> VariantPair:
    return VariantPair(a, b, tuple(changes), same_walks, compare(sa, sb), bond_differences(sa, sb))


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
        lines.append(f"  {p.b:<{width}}  r = {_r(p.comparison.r)} ({p.comparison.verdict}); {walks}; "
                     f"changes: {changes}")
    for p in pairs:
        lines += ["", f"{p.b} vs {p.a}: per bond (b - a)", *bond_table(p.bonds, p.a, p.b)]
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
