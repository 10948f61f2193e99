"""Checks of the dataset block: isomer mixing, judged by the structural correlation of the graphs."""

from __future__ import annotations

from itertools import combinations

import numpy as np

from molspec.diagnostics import Diagnostic, Label, Severity
from molspec.graphmath import COMPATIBLE_R, INCOMPATIBLE_R, chain, expected_visits, pearson
from molspec.spec import Spec, SplitSpec

MIXING_HELP = ("the paper behind Mole-Syn found that mixing two teachers' structures in one training "
               "set destabilises learning; build one split per graph, or set `allow_mixing = true`")


def check_dataset(spec: Spec) -> list[Diagnostic]:
    d = spec.dataset
    if d is None:
        return []
    out: list[Diagnostic] = []
    for split in d.splits:
        graphs = [g for g in split.graphs if g in spec.graphs]
        if len(graphs) > 1:
            out += _mixing(spec, split, graphs)
    return out


def _mixing(spec: Spec, split: SplitSpec, graphs: list[str]) -> list[Diagnostic]:
    assert split.span is not None
    pairs = {(a, b): structural_r(spec, a, b) for a, b in combinations(graphs, 2)}
    worst_pair, worst = min(pairs.items(), key=lambda kv: kv[1] if kv[1] == kv[1] else -1.0)
    what = f"split '{split.name}' mixes graphs {', '.join(graphs)}"
    r_text = f"r = {worst:.3f} between {worst_pair[0]} and {worst_pair[1]}"
    if not split.allow_mixing:
        return [Diagnostic("MOL601", f"{what} ({r_text})", Label(split.span, "isomer mixing"), help=MIXING_HELP)]
    if worst < INCOMPATIBLE_R:
        return [Diagnostic("MOL608", f"{what}: incompatible isomers ({r_text} < {INCOMPATIBLE_R})",
                           Label(split.span), severity=Severity.WARNING,
                           help="structures this far apart did not teach long CoT in the paper; split them")]
    if worst < COMPATIBLE_R:
        return [Diagnostic("MOL609", f"{what}: isomers only loosely alike ({r_text})", Label(split.span),
                           severity=Severity.WARNING, help=f"the paper's teachers agree at r >= {COMPATIBLE_R}")]
    return [Diagnostic("MOL607", f"{what} (allowed; {r_text}, compatible)", Label(split.span),
                       severity=Severity.NOTE)]


def structural_r(spec: Spec, a: str, b: str) -> float:
    """Pearson r of two graphs' flattened (P, π), the paper's structural correlation."""
    order = list(spec.bonds)
    return pearson(_vector(spec, a, order), _vector(spec, b, order))


def _vector(spec: Spec, graph: str, order: list[str]) -> np.ndarray:
    c = chain(spec.graphs[graph], order)
    k = len(order)
    p, pi = np.zeros((k, k)), np.zeros(k)
    idx = [order.index(x) for x in c.bonds]
    rows = c.trans.sum(axis=1, keepdims=True)
    cond = np.where(rows > 0, c.trans / np.where(rows > 0, rows, 1), 0.0)
    visits = expected_visits(c)
    p[np.ix_(idx, idx)] = cond
    pi[idx] = visits / visits.sum() if visits.sum() > 0 else 0.0
    return np.concatenate([p.ravel(), pi])
