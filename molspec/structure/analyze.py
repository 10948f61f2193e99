"""`molspec analyze DIR`: does a built dataset have the structure its spec asked for?

Three views of each graph (isomer) in the build:
    planned    the spec's transition graph (P, and its stationary shares π)
    realised   the walks the rows carry (what was asked of the model, sample by sample)
    labelled   what the written steps do: the label of each step's text (the build's own labels, from its
               fidelity gate, else the default labeler; `labeler=NAME` re-labels every step with NAME)
Reported: Pearson r of (P, π) like the paper, KL of the shares, a chi-square test of realised transition
counts against P, the confusion matrix of asked vs labelled bond, bond fidelity (share of steps whose label is
the bond they were asked for), steps and tokens per bond, duplicate rates and accuracy against gold.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from molspec.graphmath import Chain
from molspec.records import GraphInfo, Row
from molspec.structure.compare import compare
from molspec.structure.estimate import StepCounts, StructureGraph
from molspec.structure.fidelity import TextStructure, default_labeler, expected_labels, text_structure
from molspec.structure.graphs import conditional, from_chain, from_walks, load_spec, spec_graphs
from molspec.structure.report import (
    Accuracy,
    AnalysisReport,
    BondFidelity,
    BondSteps,
    Chi2,
    Confusion,
    Duplicates,
    Fidelity,
    GraphAnalysis,
    Labelled,
    Similarity,
    Tables,
)
from molspec.structure.rows import bond_kinds, open_build, read_rows

if TYPE_CHECKING:
    from molspec.structure.label import Labeler

NO_LABELS = "none"


def analyze(build_dir: Path, spec_path: Path | None = None, labeler: str | None = None) -> AnalysisReport:
    """The full report of a build directory.

    Args:
        spec_path: compare with this spec's graphs instead of the ones the build used.
        labeler: None: the build's own step labels, else the default labeler; "none": no labelled view;
            a labeler's name: re-label every step with it.

    Raises:
        MolspecError: MOL701, not a readable build directory.
        ValueError: an unknown labeler name.
    """
    m = open_build(build_dir)
    rows = read_rows(build_dir, m)
    planned = _planned(m.graphs, spec_path)
    lab = _labeler(labeler, rows)
    stored_by = m.fidelity.labeler if m.fidelity is not None else None
    expected = expected_labels(bond_kinds(build_dir, m))
    graphs = []
    for name, g in planned.items():
        mine = [r for r in rows if r.graph == name]
        if mine:
            text = None if labeler == NO_LABELS else text_structure(
                mine, g.bonds, lab, relabel=labeler is not None, stored_by=stored_by, expected=expected)
            graphs.append(_graph_report(name, g, mine, text))
    return AnalysisReport(build=str(build_dir), samples=len(rows), failed=m.summary.failed, labeler=labeler,
                          graphs=graphs, per_bond=_per_bond(rows), duplicates=_duplicates(rows),
                          accuracy=_accuracy(rows))


def _labeler(name: str | None, rows: Sequence[Row]) -> Labeler | None:
    """The labeler to run: the one named, else the default one when some row has no labels of its own."""
    if name == NO_LABELS:
        return None
    if name is not None:
        from molspec.structure.label import get_labeler

        return get_labeler(name)
    unlabelled = any(s.label is None for r in rows for s in r.steps)
    return default_labeler() if unlabelled else None


def _planned(graphs: dict[str, GraphInfo], spec_path: Path | None) -> dict[str, StructureGraph]:
    if spec_path is not None:
        return {k: conditional(v) for k, v in spec_graphs(load_spec(spec_path)).items()}
    out = {}
    for name, g in graphs.items():
        end = np.array(g.end)
        c = Chain(name, tuple(g.bonds), np.array(g.start), np.array(g.transitions), end, g.steps[0], g.steps[1],
                  bool(np.any(end > 0)))
        out[name] = conditional(from_chain(c))
    return out


def _graph_report(name: str, planned: StructureGraph, rows: list[Row], text: TextStructure | None) -> GraphAnalysis:
    realised = conditional(from_walks((r.bonds for r in rows), planned.bonds))
    out = GraphAnalysis(graph=name, samples=len(rows), bonds=list(planned.bonds), planned=_tables(planned),
                        realised=_tables(realised), planned_vs_realised=Similarity.of(compare(planned, realised)),
                        chi2=_chi2(planned, rows))
    if text is None:
        return out
    labelled = conditional(from_walks(text.labelled, text.bonds))
    fid = text.fidelity()
    transitions = text.transitions("labelled")
    out.labelled = Labelled(shares={b: round(x, 4) for b, x in text.shares("labelled").items()},
                            transitions=[[round(float(x), 4) for x in row] for row in transitions],
                            source=text.source)
    out.planned_vs_labelled = Similarity.of(compare(planned, labelled))
    out.fidelity = Fidelity(overall=None if fid.overall is None else round(fid.overall, 4),
                            per_bond={b: BondFidelity(steps=n, fidelity=round(f, 4)) for b, (n, f) in
                                      fid.per_bond.items()})
    out.confusion = Confusion(asked=list(text.bonds), labelled=list(text.bonds),
                              counts=[[int(n) for n in row] for row in text.confusion()])
    return out


def _tables(g: StructureGraph) -> Tables:
    return Tables(shares=dict(zip(g.bonds, (round(x, 4) for x in g.shares), strict=True)),
                  transitions=[[round(x, 4) for x in row] for row in g.transitions])


def _chi2(planned: StructureGraph, rows: Sequence[Row]) -> Chi2:
    """Chi-square test of realised transition counts against the planned P (cells with expectation > 0)."""
    idx = {b: i for i, b in enumerate(planned.bonds)}
    k = len(idx)
    counts = np.zeros((k, k))
    for r in rows:
        seq = [idx[b] for b in r.bonds]
        for a, b in zip(seq, seq[1:], strict=False):
            counts[a, b] += 1
    p = planned.matrix()
    stat, dof, impossible = 0.0, 0, 0
    for i in range(k):
        n = counts[i].sum()
        if n == 0:
            continue
        expected = n * p[i]
        live = expected > 0
        impossible += int(counts[i][~live].sum())
        stat += float((((counts[i][live] - expected[live]) ** 2) / expected[live]).sum())
        dof += max(int(live.sum()) - 1, 0)
    p_value = chi2_sf(stat, dof) if dof > 0 else 1.0
    return Chi2(statistic=round(stat, 4), dof=dof, p_value=round(p_value, 6), impossible_transitions=impossible)


def chi2_sf(x: float, dof: int) -> float:
    """P(X >= x) for X ~ chi-square(dof): the regularised upper incomplete gamma Q(dof/2, x/2)."""
    a, z = dof / 2.0, x / 2.0
    if z <= 0:
        return 1.0
    if z < a + 1:  # series for the lower gamma P, then Q = 1 - P
        term = total = 1.0 / a
        n = a
        while abs(term) > abs(total) * 1e-15:
            n += 1
            term *= z / n
            total += term
        return max(0.0, 1.0 - total * math.exp(-z + a * math.log(z) - math.lgamma(a)))
    # continued fraction (Lentz) for Q
    b, c, d = z + 1 - a, 1e300, 1.0 / (z + 1 - a)
    h = d
    for i in range(1, 500):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1.0 / d
        h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return min(1.0, math.exp(-z + a * math.log(z) - math.lgamma(a)) * h)


def _per_bond(rows: Sequence[Row]) -> dict[str, BondSteps]:
    tokens: dict[str, list[int]] = {}
    cut: Counter[str] = Counter()
    for r in rows:
        for s in r.steps:
            tokens.setdefault(s.bond, []).append(s.n_tokens)
            cut[s.bond] += s.finish_reason == "length"
    return {b: BondSteps(steps=len(v), tokens=StepCounts.of(v),
                         cut_by_max_tokens=round(cut[b] / len(v), 4)) for b, v in tokens.items()}


def _duplicates(rows: Sequence[Row]) -> Duplicates:
    steps = [" ".join(s.text.lower().split()) for r in rows for s in r.steps]
    thinking = [" ".join(r.thinking.lower().split()) for r in rows]
    return Duplicates(step_duplicate_rate=_dup_rate(steps), trace_duplicate_rate=_dup_rate(thinking))


def _dup_rate(items: Sequence[str]) -> float:
    """Share of items that repeat an earlier item (exact match after whitespace/case normalisation)."""
    if not items:
        return 0.0
    return round(1 - len(set(items)) / len(items), 4)


def _accuracy(rows: Sequence[Row]) -> Accuracy:
    graded = [r.correct for r in rows if r.correct is not None]
    return Accuracy(graded=len(graded), accuracy=round(sum(graded) / len(graded), 4) if graded else None)
