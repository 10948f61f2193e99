"""Statistics of a plan: lengths, bond shares (planned vs stationary), engine calls and token budget.

Computed in one streaming pass over the plan's chunks, so a million-sample plan needs no more
memory than one chunk; beyond STATS_WALKS samples they are estimated from that many walks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from molspec.graphmath import expected_visits, row_normalise, stationary, transition_counts
from molspec.plan.compile import Plan, SplitPlan
from molspec.spec import DEFAULT_SAMPLING


@dataclass
class PlanStats:
    """What `molspec plan` prints (and `--json` dumps)."""

    samples: int
    seed: int
    steps: dict[str, float]
    bond_shares: dict[str, float]
    stationary: dict[str, dict[str, float]]
    expected_steps: dict[str, float]  # per graph: the mean walk length implied by the graph (exact, not sampled)
    transitions: dict[str, Any]
    engine_calls: int
    max_tokens: int
    splits: dict[str, dict[str, Any]]
    walked: int = 0  # walks the statistics were computed from; fewer than `samples` means estimated
    pair_counts: list[list[int]] = field(default_factory=list)  # transitions a -> b counted, in transitions' order

    @property
    def estimated(self) -> bool:
        return self.walked < self.samples

    def to_json(self) -> dict[str, Any]:
        return {"samples": self.samples, "seed": self.seed, "steps": self.steps,
                "bond_shares": self.bond_shares, "stationary": self.stationary,
                "expected_steps": self.expected_steps,
                "transitions": self.transitions, "engine_calls": self.engine_calls,
                "max_tokens": self.max_tokens, "splits": self.splits}


STATS_WALKS = 1 << 20  # walks drawn for the statistics of a larger plan (each split in proportion)


def plan_stats(plan: Plan, budget: int = STATS_WALKS) -> PlanStats:
    """Statistics of the plan: exact up to `budget` samples, estimated from `budget` walks beyond.

    Walks are independent draws (counter-based), so the first walks of each split are a random sample
    of it; their counts are scaled to the split's size. The cost is bounded whatever `samples` is.
    """
    k = len(plan.bonds)
    counts = np.zeros(k, dtype=np.float64)
    trans = np.zeros((k, k), dtype=np.int64)
    hist = np.zeros(plan.max_steps + 1, dtype=np.float64)
    drawn = 0
    for sp, n in _quota(plan, budget):
        scale = sp.spec.samples / n
        for w in plan.iter_walks(sp.offset, sp.offset + n):
            counts += scale * np.bincount(w.bonds[w.bonds >= 0].astype(np.int64), minlength=k)
            hist += scale * np.bincount(w.lengths.astype(np.int64), minlength=plan.max_steps + 1)
            trans += transition_counts(w.bonds, k)
        drawn += n
    steps = np.rint(counts).astype(np.int64)
    total_steps = int(steps.sum())
    return PlanStats(
        samples=plan.samples, seed=plan.seed, steps=_length_stats(np.rint(hist).astype(np.int64)),
        bond_shares={b: _r(c / max(total_steps, 1)) for b, c in zip(plan.bonds, steps, strict=True) if c},
        stationary={c.name: {b: _r(p) for b, p in zip(c.bonds, stationary(c), strict=True)} for c in plan.chains},
        expected_steps={c.name: _r(float(expected_visits(c).sum())) for c in plan.chains},
        transitions=_row_normalised(trans, plan.bonds),
        engine_calls=total_steps + plan.samples, max_tokens=_token_budget(plan, steps),
        splits={s.spec.name: {"samples": s.spec.samples, "graphs": list(s.spec.graphs), "source": s.spec.source,
                              "questions": s.question_slice[1] - s.question_slice[0]} for s in plan.splits},
        walked=drawn, pair_counts=trans.tolist())


def _quota(plan: Plan, budget: int) -> list[tuple[SplitPlan, int]]:
    """How many walks to draw per split: all of them when the plan fits the budget."""
    if plan.samples <= budget:
        return [(sp, sp.spec.samples) for sp in plan.splits]
    return [(sp, max(1, min(sp.spec.samples, budget * sp.spec.samples // plan.samples))) for sp in plan.splits]


def _row_normalised(trans: npt.NDArray[np.int64], bonds: tuple[str, ...]) -> dict[str, Any]:
    return {"bonds": list(bonds), "matrix": [[_r(x) for x in row] for row in row_normalise(trans)]}


def _length_stats(hist: npt.NDArray[np.int64]) -> dict[str, float]:
    n = int(hist.sum())
    if n == 0:
        return {"mean": 0.0, "p50": 0, "p95": 0, "max": 0, "min": 0, "total": 0}
    values = np.arange(hist.size)
    cdf = np.cumsum(hist) / n
    return {"mean": _r(float((values * hist).sum() / n)), "min": int(values[hist > 0].min()),
            "p50": int(np.searchsorted(cdf, 0.5)), "p95": int(np.searchsorted(cdf, 0.95)),
            "max": int(values[hist > 0].max()), "total": int((values * hist).sum())}


def _token_budget(plan: Plan, counts: npt.NDArray[np.int64]) -> int:
    """Upper bound on generated tokens: per-bond max_tokens times its step count, plus the answers."""
    spec = plan.spec
    base = spec.model.sampling if spec.dataset and spec.dataset.model in spec.models else None
    default = base.max_tokens if base and base.max_tokens else DEFAULT_SAMPLING.max_tokens or 0
    per_bond = [spec.bonds[b].sampling.max_tokens or default for b in plan.bonds]
    answer = spec.answer.sampling.max_tokens or default
    return int((counts * np.array(per_bond, dtype=np.int64)).sum()) + answer * plan.samples


def _r(x: float) -> float:
    return round(float(x), 4)


def transition_shares(stats: PlanStats) -> dict[tuple[str, str], float]:
    """The share of each transition a -> b among all transitions of the walks the statistics drew."""
    bonds = stats.transitions["bonds"]
    total = sum(map(sum, stats.pair_counts))
    if total == 0:
        return {}
    return {(bonds[i], bonds[j]): n / total for i, row in enumerate(stats.pair_counts)
            for j, n in enumerate(row) if n}


def self_loops(stats: PlanStats) -> float:
    """The share of transitions that stay on the same bond (deep -> deep)."""
    return sum(v for (a, b), v in transition_shares(stats).items() if a == b)


def top_transition(stats: PlanStats) -> str:
    """The most frequent transition and its share, e.g. `deep->deep 21%`."""
    shares = transition_shares(stats)
    if not shares:
        return "-"
    (a, b), v = max(shares.items(), key=lambda kv: kv[1])
    return f"{a}->{b} {100 * v:.0f}%"
