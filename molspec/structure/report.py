"""The report of `molspec analyze`: its typed shape (what `--json` prints), the terminal text and the picture.

    analyze ──AnalysisReport──▶ text_report (terminal), to_json (--json), draw (analysis.png)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from molspec.structure.compare import Comparison
from molspec.structure.estimate import StepCounts


class Report(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Tables(Report):
    """Bond shares and P(next | bond), rows and columns in the graph's `bonds` order."""

    shares: dict[str, float]
    transitions: list[list[float]]


class Labelled(Tables):
    source: str = Field(description="where the labels came from: the build's own, or a labeler")


class MaxDiff(Report):
    from_: str = Field(alias="from")
    to: str
    diff: float


class Similarity(Report):
    """`molspec compare` of two views: Pearson r of the flattened (P, π), KL of the shares."""

    bonds: list[str]
    r: float | None
    n: int
    kl_ab: float
    kl_ba: float
    max_diff: MaxDiff
    verdict: str

    @staticmethod
    def of(c: Comparison) -> Similarity:
        return Similarity.model_validate(c.to_dict())


class Chi2(Report):
    """Realised transition counts against the planned P."""

    statistic: float
    dof: int
    p_value: float
    impossible_transitions: int


class BondFidelity(Report):
    steps: int
    fidelity: float


class Fidelity(Report):
    overall: float | None
    per_bond: dict[str, BondFidelity]


class Confusion(Report):
    """Step counts: one row per asked bond, one column per label."""

    asked: list[str]
    labelled: list[str]
    counts: list[list[int]]


class GraphAnalysis(Report):
    """The rows built from one graph: planned, realised (the walks) and labelled (the text)."""

    graph: str
    samples: int
    bonds: list[str]
    planned: Tables
    realised: Tables
    planned_vs_realised: Similarity
    chi2: Chi2
    labelled: Labelled | None = None
    planned_vs_labelled: Similarity | None = None
    fidelity: Fidelity | None = None
    confusion: Confusion | None = None


class BondSteps(Report):
    steps: int
    tokens: StepCounts  # the extraction's distribution type, serialised as the same fields
    cut_by_max_tokens: float


class Duplicates(Report):
    step_duplicate_rate: float
    trace_duplicate_rate: float


class Accuracy(Report):
    graded: int
    accuracy: float | None


class AnalysisReport(Report):
    build: str
    samples: int
    failed: int
    labeler: str | None = Field(description="the labeler asked for; None: the build's own labels, else the default")
    graphs: list[GraphAnalysis]
    per_bond: dict[str, BondSteps]
    duplicates: Duplicates
    accuracy: Accuracy
    png: str | None = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=False)


# --------------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------------


def text_report(r: AnalysisReport) -> str:
    lines = [f"analysis of {r.build}: {r.samples:,} samples ({r.failed:,} failed)"]
    for g in r.graphs:
        lines += _graph_lines(g)
    lines.append("per bond   steps   tokens mean  p95   cut by max_tokens")
    for b, v in r.per_bond.items():
        lines.append(f"  {b:<10} {v.steps:>6,}  {v.tokens.mean:>9.1f}  {v.tokens.p95:>5}   {v.cut_by_max_tokens:.1%}")
    d, acc = r.duplicates, r.accuracy
    lines.append(f"duplicates: {d.step_duplicate_rate:.1%} of steps, {d.trace_duplicate_rate:.1%} of traces")
    lines.append("accuracy: " + ("n/a (no gold)" if acc.accuracy is None else
                                 f"{acc.accuracy:.1%} of {acc.graded:,} graded"))
    if r.png:
        lines.append(f"picture: {r.png}")
    return "\n".join(lines)


def _graph_lines(g: GraphAnalysis) -> list[str]:
    pr, chi = g.planned_vs_realised, g.chi2
    lines = [f"graph {g.graph} ({g.samples:,} samples)",
             f"  planned vs realised walks   r = {_r(pr.r)} ({pr.verdict}), KL = {pr.kl_ab:.4f}; "
             f"chi-square {chi.statistic:.1f} on {chi.dof} dof, p = {chi.p_value:.3g}"
             + (f", {chi.impossible_transitions} impossible transitions" if chi.impossible_transitions else "")]
    lab = g.labelled
    if lab is not None and g.planned_vs_labelled is not None and g.fidelity is not None:
        pl, fid = g.planned_vs_labelled, g.fidelity
        per = ", ".join(f"{b} {v.fidelity:.2f}" for b, v in fid.per_bond.items())
        lines += [f"  labels                      {lab.source}",
                  f"  planned vs labelled steps   r = {_r(pl.r)} ({pl.verdict}), KL = {pl.kl_ab:.4f}",
                  f"  bond fidelity               {_f(fid.overall)} overall; {per}"]
    lines.append("  bond       planned  realised" + ("  labelled" if lab else ""))
    for b in g.bonds:
        row = f"  {b:<10} {g.planned.shares[b]:>7.1%}  {g.realised.shares[b]:>8.1%}"
        lines.append(row + (f"  {lab.shares.get(b, 0.0):>8.1%}" if lab else ""))
    if g.confusion is not None:
        lines += _confusion_lines(g.confusion)
    return lines


def _confusion_lines(c: Confusion) -> list[str]:
    width = max(8, *(len(b) + 1 for b in c.labelled))
    head = "  asked \\ labelled" + "".join(f"{b:>{width}}" for b in c.labelled)
    rows = [f"  {a:<16}" + "".join(f"{n:>{width},}" for n in counts)
            for a, counts in zip(c.asked, c.counts, strict=True) if sum(counts)]
    return [head, *rows]


def _r(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


# --------------------------------------------------------------------------------------------------
# Picture
# --------------------------------------------------------------------------------------------------


def picture(r: AnalysisReport) -> bytes:
    """A PNG with one row per graph: planned, realised and labelled transitions, asked vs labelled bonds, shares."""
    from molspec.structure.plots import figure_png

    return figure_png([_graph_panels(g) for g in r.graphs], f"molspec analyze {r.build}", cell=(3.6, 3.4))


def _graph_panels(g: GraphAnalysis) -> list[Any]:
    import numpy as np

    from molspec.structure.plots import Bars, Heatmap

    views: list[tuple[str, Tables]] = [("planned", g.planned), ("realised", g.realised)]
    if g.labelled is not None:
        views.append(("labelled", g.labelled))
    panels: list[Any] = []
    for name, t in views:
        bonds = g.bonds if name != "labelled" or g.confusion is None else g.confusion.labelled
        panels.append(Heatmap(f"{g.graph}: {name}", np.asarray(t.transitions, dtype=float), bonds, bonds))
    if g.confusion is not None:
        counts = np.asarray(g.confusion.counts, dtype=float)
        sums = counts.sum(axis=1, keepdims=True)
        panels.append(Heatmap(f"{g.graph}: asked vs labelled", np.divide(counts, sums, out=np.zeros_like(counts),
                                                                          where=sums > 0),
                              g.confusion.asked, g.confusion.labelled, "labelled bond", "asked bond"))
    shares = {name: [t.shares.get(b, 0.0) for b in g.bonds] for name, t in views}
    panels.append(Bars(f"{g.graph}: bond shares", g.bonds, shares))
    return panels
