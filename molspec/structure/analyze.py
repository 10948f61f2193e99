"""`molspec analyze DIR`: does a built dataset have the structure its spec asked for?

Three views of each graph (isomer) in the build:
    planned    the spec's transition graph (P, and its stationary shares π)
    realised   the walks the rows carry (what was asked of the model, sample by sample)
    labelled   what the written steps look like: each step re-labelled by a labeler (cue by default)
Reported: Pearson r of (P, π) like the paper, KL of the shares, a chi-square test of realised transition
counts against P, bond fidelity (share of steps whose label is the bond they were asked for), steps and
tokens per bond, duplicate rates and accuracy against gold.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from molspec.plan.matrix import Chain
from molspec.structure.compare import compare
from molspec.structure.estimate import StepCounts, StructureGraph
from molspec.structure.graphs import build_rows, conditional, from_chain, from_walks, manifest, spec_graphs
from molspec.structure.label import BONDS, Labeler, get_labeler


@dataclass
class GraphReport:
    """The analysis of the rows built from one graph."""

    graph: str
    samples: int
    planned: StructureGraph
    realised: StructureGraph
    labelled: StructureGraph | None
    chi2: dict[str, float]
    fidelity: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        plan_vs_real = compare(self.planned, self.realised)
        out: dict[str, Any] = {
            "graph": self.graph, "samples": self.samples, "bonds": list(self.planned.bonds),
            "planned": _tables(self.planned), "realised": _tables(self.realised),
            "planned_vs_realised": plan_vs_real.to_dict(), "chi2": self.chi2,
        }
        if self.labelled is not None and self.fidelity is not None:
            out["labelled"] = _tables(self.labelled)
            out["planned_vs_labelled"] = compare(self.planned, self.labelled).to_dict()
            out["fidelity"] = self.fidelity
        return out


def _tables(g: StructureGraph) -> dict[str, Any]:
    return {"shares": dict(zip(g.bonds, (round(x, 4) for x in g.shares), strict=True)),
            "transitions": [[round(x, 4) for x in row] for row in g.transitions]}


def analyze(build_dir: Path, spec_path: Path | None = None, labeler: str | None = "cue") -> dict[str, Any]:
    """The full report of a build directory as a JSON-ready dict."""
    m = manifest(build_dir)
    rows = build_rows(build_dir)
    planned = _planned(m, spec_path)
    lab = get_labeler(labeler) if labeler else None
    graphs = []
    for name, g in planned.items():
        mine = [r for r in rows if r["graph"] == name]
        if mine:
            graphs.append(_graph_report(name, g, mine, lab).to_json())
    return {"build": str(build_dir), "samples": len(rows), "failed": m.get("summary", {}).get("failed", 0),
            "labeler": labeler, "graphs": graphs, "per_bond": _per_bond(rows), "duplicates": _duplicates(rows),
            "accuracy": _accuracy(rows)}


def _planned(m: dict[str, Any], spec_path: Path | None) -> dict[str, StructureGraph]:
    if spec_path is not None:
        from molspec.api import load

        return {k: conditional(v) for k, v in spec_graphs(load(spec_path).raise_for_errors()).items()}
    out = {}
    for name, g in m["graphs"].items():
        lo, hi = g["steps"]
        c = Chain(name, tuple(g["bonds"]), np.array(g["start"]), np.array(g["transitions"]), np.array(g["end"]),
                  lo, hi, bool(np.any(np.array(g["end"]) > 0)))
        out[name] = conditional(from_chain(c))
    return out


def _graph_report(name: str, planned: StructureGraph, rows: list[dict[str, Any]], lab: Labeler | None) -> GraphReport:
    bonds = planned.bonds
    realised = conditional(from_walks((r["bonds"] for r in rows), bonds))
    labelled, fidelity = None, None
    if lab is not None:
        labels = lab.label_many([(r["question"], [s["text"] for s in r["steps"]]) for r in rows])
        order = tuple(bonds) + tuple(b for b in BONDS if b not in bonds)
        labelled = conditional(from_walks(labels, order))
        fidelity = _fidelity(rows, labels, order)
    return GraphReport(name, len(rows), planned, realised, labelled, _chi2(planned, rows), fidelity)


def _fidelity(rows: Sequence[dict[str, Any]], labels: Sequence[Sequence[str]], bonds: Sequence[str]) -> dict[str, Any]:
    """How often a step shows the bond it was asked for, per bond, with the confusion matrix."""
    confusion: Counter[tuple[str, str]] = Counter()
    for r, lab in zip(rows, labels, strict=True):
        for asked, seen in zip(r["bonds"], lab, strict=True):
            confusion[(asked, seen)] += 1
    per = {}
    for b in bonds:
        n = sum(v for (a, _), v in confusion.items() if a == b)
        if n:
            per[b] = {"steps": n, "fidelity": round(confusion[(b, b)] / n, 4)}
    total = sum(confusion.values())
    hits = sum(v for (a, s), v in confusion.items() if a == s)
    return {"overall": round(hits / total, 4) if total else None, "per_bond": per,
            "confusion": {a: {s: confusion[(a, s)] for s in bonds if confusion[(a, s)]} for a in bonds
                          if any(confusion[(a, s)] for s in bonds)}}


def _chi2(planned: StructureGraph, rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Chi-square test of realised transition counts against the planned P (cells with expectation > 0)."""
    idx = {b: i for i, b in enumerate(planned.bonds)}
    k = len(idx)
    counts = np.zeros((k, k))
    for r in rows:
        seq = [idx[b] for b in r["bonds"]]
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
    return {"statistic": round(stat, 4), "dof": dof, "p_value": round(p_value, 6),
            "impossible_transitions": impossible}


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


def _per_bond(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    tokens: dict[str, list[int]] = {}
    cut: Counter[str] = Counter()
    for r in rows:
        for s in r["steps"]:
            tokens.setdefault(s["bond"], []).append(int(s["n_tokens"]))
            cut[s["bond"]] += s["finish_reason"] == "length"
    return {b: {"steps": len(v), "tokens": dataclasses.asdict(StepCounts.of(v)),
                "cut_by_max_tokens": round(cut[b] / len(v), 4)} for b, v in tokens.items()}


def _duplicates(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    steps = [" ".join(s["text"].lower().split()) for r in rows for s in r["steps"]]
    thinking = [" ".join(r["thinking"].lower().split()) for r in rows]
    return {"step_duplicate_rate": _dup_rate(steps), "trace_duplicate_rate": _dup_rate(thinking)}


def _dup_rate(items: Sequence[str]) -> float:
    """Share of items that repeat an earlier item (exact match after whitespace/case normalisation)."""
    if not items:
        return 0.0
    return round(1 - len(set(items)) / len(items), 4)


def _accuracy(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    graded = [r["correct"] for r in rows if r.get("correct") is not None]
    return {"graded": len(graded), "accuracy": round(sum(graded) / len(graded), 4) if graded else None}
