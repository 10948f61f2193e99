"""Estimate a behaviour-transition graph from labelled traces, and write it as `.mol` or JSON.

From the bond sequence of every trace this counts: the first bond (start distribution), each
consecutive pair (transitions), the last bond (which becomes the `end` probability of that bond),
the bond shares over all steps (the marginal π) and the number of steps per trace. Rows are
smoothed additively: P(b' | b) = (n(b, b') + α) / (n(b) + α·(K + 1)), where the K + 1 outcomes
are the K bonds and `end`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from molspec.structure.label import BOND_KINDS, BOND_TITLES, BONDS

# The short per-behaviour prompts reported for the paper (notes/mole-syn.md §3), used when a
# written graph declares its own bonds.
PAPER_INSTRUCTIONS: dict[str, str] = {
    "explore": "Please explore a novel reasoning path in the response.",
    "deep": "Please further deepen the reasoning on the response.",
    "reflect": "Please reflect on the response and provide a self-reflection.",
    "normal": "Please conduct normal operation on the response.",
}
_DECIMALS = 3  # probabilities in .mol files: thousandths, each row summing to exactly 1


@dataclass(frozen=True, slots=True)
class LabelledTrace:
    """One trace after segmentation and labelling.

    Attributes:
        id: the trace id.
        bonds: one bond name per step.
        spans: (start, end) offsets of each step in the thinking text (may be empty).
        source: the file or dataset the trace came from.
        teacher_model: the model that wrote it, when known.
    """

    id: str
    bonds: tuple[str, ...]
    spans: tuple[tuple[int, int], ...] = ()
    source: str = ""
    teacher_model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "teacher_model": self.teacher_model,
            "steps": [
                {"bond": bond, "start": span[0], "end": span[1]}
                for bond, span in zip(self.bonds, self.spans or [(-1, -1)] * len(self.bonds), strict=True)
            ],
        }


@dataclass(frozen=True, slots=True)
class StepCounts:
    """Distribution of steps per trace."""

    min: int
    p5: int
    p50: int
    p95: int
    max: int
    mean: float

    @staticmethod
    def of(lengths: Sequence[int]) -> StepCounts:
        if not lengths:
            return StepCounts(0, 0, 0, 0, 0, 0.0)
        arr = np.asarray(lengths)
        p5, p50, p95 = (int(round(float(np.percentile(arr, q)))) for q in (5, 50, 95))
        return StepCounts(int(arr.min()), p5, p50, p95, int(arr.max()), float(arr.mean()))


@dataclass(frozen=True, slots=True)
class StructureGraph:
    """An estimated behaviour-transition graph over a fixed bond order.

    Attributes:
        bonds: bond names, in this order in every table (default: explore, deep, reflect, normal).
        start: P(first bond), one entry per bond.
        transitions: transitions[i][j] = P(next = bonds[j] | current = bonds[i]); with `end[i]` each
            row sums to 1.
        end: end[i] = P(trace ends | current = bonds[i]).
        row_counts: how many steps of each bond were observed (the denominator of its row before
            smoothing); 0 means the row is pure smoothing.
        shares: bond shares over all steps (the marginal π).
        steps: the steps-per-trace distribution.
        n_traces: traces counted.
        teacher: the teacher model(s), when known.
        alpha: the additive smoothing used.
        start_counts / transition_counts / end_counts: the raw counts behind the probabilities.
    """

    bonds: tuple[str, ...]
    start: tuple[float, ...]
    transitions: tuple[tuple[float, ...], ...]
    end: tuple[float, ...]
    row_counts: tuple[int, ...]
    shares: tuple[float, ...]
    steps: StepCounts
    n_traces: int
    teacher: str | None = None
    alpha: float = 0.0
    start_counts: tuple[int, ...] = field(default=(), compare=False)
    transition_counts: tuple[tuple[int, ...], ...] = field(default=(), compare=False)
    end_counts: tuple[int, ...] = field(default=(), compare=False)

    @property
    def n_steps(self) -> int:
        return sum(self.row_counts)

    def matrix(self) -> np.ndarray:
        """The K×K transition matrix (without the end column) as an array."""
        return np.asarray(self.transitions, dtype=float)

    def marginal(self) -> np.ndarray:
        """The bond shares π as an array."""
        return np.asarray(self.shares, dtype=float)

    def to_mol(
        self,
        name: str,
        source_note: str | None = None,
        bonds: str = "declare",
        use_path: str = "bonds/standard.mol",
    ) -> str:
        """The graph as `.mol` text (syntax: docs/internals.md).

        Args:
            name: the graph's name (an identifier).
            source_note: one extra comment line (e.g. the command or files it came from).
            bonds: "declare" writes the four bond declarations (a file that checks on its own);
                "use" writes `use "<use_path>"` instead; "none" writes only the graph, for a spec
                that already imports its bonds.
            use_path: the import path for bonds="use".
        """
        if not name.isidentifier():
            raise ValueError(f"graph name must be an identifier, got {name!r}")
        if bonds not in ("declare", "use", "none"):
            raise ValueError(f"bonds must be 'declare', 'use' or 'none', got {bonds!r}")
        lines = ["molspec 1", ""]
        lines += self._header(source_note)
        if bonds == "use":
            lines += ["", f'use "{use_path}"']
        elif bonds == "declare":
            lines += [""] + [_bond_declaration(b) for b in self.bonds]
        lines += ["", *self._graph_block(name)]
        return "\n".join(lines) + "\n"

    def _header(self, source_note: str | None) -> list[str]:
        teacher = self.teacher or "an unrecorded teacher"
        s = self.steps
        lines = [
            f"# extracted from {self.n_traces:,} traces of {teacher} ({self.n_steps:,} steps)",
            f"# steps per trace: min {s.min}, p5 {s.p5}, median {s.p50}, p95 {s.p95}, max {s.max}",
            "# bond shares: " + ", ".join(f"{b} {p:.3f}" for b, p in zip(self.bonds, self.shares, strict=True)),
            f"# smoothing: additive, alpha = {self.alpha:g}",
        ]
        if source_note:
            lines.append(f"# {source_note}")
        return lines

    def _graph_block(self, name: str) -> list[str]:
        width = max(len(b) for b in (*self.bonds, "start"))
        lines = [f"graph {name} {{"]
        start = _round_row(list(zip(self.bonds, self.start, strict=True)))
        lines.append(f"  {'start':<{width}} -> {_edges(start, keep_zero=False)}")
        for i, bond in enumerate(self.bonds):
            pairs = list(zip(self.bonds, self.transitions[i], strict=True)) + [("end", self.end[i])]
            row = _edges(_round_row(pairs), keep_zero=True)
            lines.append(f"  {bond:<{width}} -> {row}   # n={self.row_counts[i]}")
        lo, hi = max(self.steps.p5, 1), max(self.steps.p95, self.steps.p5, 1)
        lines += [f"  steps = {lo}..{hi}", "}"]
        return lines

    def to_json(self) -> str:
        """`to_dict()` as JSON text."""
        return json.dumps(self.to_dict(), indent=2)

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON types (the manifest's `graphs` entry plus counts)."""
        return {
            "bonds": list(self.bonds),
            "start": list(self.start),
            "transitions": [list(r) for r in self.transitions],
            "end": list(self.end),
            "row_counts": list(self.row_counts),
            "shares": list(self.shares),
            "steps": {
                "min": self.steps.min,
                "p5": self.steps.p5,
                "p50": self.steps.p50,
                "p95": self.steps.p95,
                "max": self.steps.max,
                "mean": self.steps.mean,
            },
            "n_traces": self.n_traces,
            "n_steps": self.n_steps,
            "teacher": self.teacher,
            "alpha": self.alpha,
            "counts": {
                "start": list(self.start_counts),
                "transitions": [list(r) for r in self.transition_counts],
                "end": list(self.end_counts),
            },
        }


def _bond_declaration(bond: str) -> str:
    kind, title = BOND_KINDS.get(bond, "plain"), BOND_TITLES.get(bond, bond)
    instruct = PAPER_INSTRUCTIONS.get(bond, f"Carry out a {bond} step.")
    return f'bond {bond} : {kind} "{title}" {{ instruct = "{instruct}" }}'


def _round_row(pairs: list[tuple[str, float]]) -> list[tuple[str, int]]:
    """Probabilities in thousandths that sum to exactly 1000: the largest entry absorbs the rounding."""
    scale = 10**_DECIMALS
    total = sum(p for _, p in pairs)
    if total <= 0:
        raise ValueError("a row has no probability mass")
    units = [(name, int(round(p / total * scale))) for name, p in pairs]
    largest = max(range(len(units)), key=lambda i: (units[i][1], -i))
    name, value = units[largest]
    units[largest] = (name, value + scale - sum(u for _, u in units))
    return units


def _edges(units: list[tuple[str, int]], keep_zero: bool) -> str:
    ordered = sorted(units, key=lambda u: -u[1])  # largest first, as people read rows; stable on ties
    shown = [u for u in ordered if keep_zero or u[1] > 0]
    return " | ".join(f"{name} {_fmt(value)}" for name, value in shown)


def _fmt(units: int) -> str:
    """Thousandths as a decimal with at least two places: 450 -> 0.45, 125 -> 0.125, 1000 -> 1.00."""
    whole, frac = divmod(units, 10**_DECIMALS)
    return f"{whole}.{f'{frac:0{_DECIMALS}d}'.rstrip('0').ljust(2, '0')}"


# ---------------------------------------------------------------------------------------------


@dataclass
class GraphCounter:
    """Accumulates counts trace by trace (constant memory however many traces stream through).

    Attributes:
        bonds: the bond order; a label outside it raises ValueError.
    """

    bonds: tuple[str, ...] = BONDS
    start: np.ndarray = field(init=False)
    pairs: np.ndarray = field(init=False)
    ends: np.ndarray = field(init=False)
    lengths: list[int] = field(default_factory=list)
    teachers: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        k = len(self.bonds)
        self._index = {b: i for i, b in enumerate(self.bonds)}
        self.start = np.zeros(k, dtype=np.int64)
        self.pairs = np.zeros((k, k), dtype=np.int64)
        self.ends = np.zeros(k, dtype=np.int64)

    def add(self, bonds: Sequence[str], teacher: str | None = None) -> None:
        """Count one trace's bond sequence (an empty trace is ignored)."""
        if not bonds:
            return
        try:
            idx = np.fromiter((self._index[b] for b in bonds), dtype=np.int64, count=len(bonds))
        except KeyError as exc:
            raise ValueError(f"unknown bond {exc.args[0]!r}; expected one of {', '.join(self.bonds)}") from None
        self.start[idx[0]] += 1
        self.ends[idx[-1]] += 1
        np.add.at(self.pairs, (idx[:-1], idx[1:]), 1)
        self.lengths.append(len(bonds))
        if teacher:
            self.teachers.add(teacher)

    def graph(self, alpha: float = 0.0) -> StructureGraph:
        """The smoothed graph of everything counted so far."""
        if alpha < 0 or not math.isfinite(alpha):
            raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
        k = len(self.bonds)
        outcomes = np.concatenate([self.pairs, self.ends[:, None]], axis=1).astype(float)  # K x (K+1)
        row_counts = outcomes.sum(axis=1)
        smoothed = outcomes + alpha
        denom = smoothed.sum(axis=1, keepdims=True)
        # A bond never seen with alpha = 0 has no evidence at all: spread it uniformly.
        probs = np.divide(smoothed, denom, out=np.full_like(smoothed, 1.0 / (k + 1)), where=denom > 0)
        start = self.start + alpha
        start_p = start / start.sum() if start.sum() > 0 else np.full(k, 1.0 / k)
        total_steps = row_counts.sum()
        shares = row_counts / total_steps if total_steps else np.zeros(k)
        return StructureGraph(
            bonds=self.bonds,
            start=tuple(float(x) for x in start_p),
            transitions=tuple(tuple(float(x) for x in row[:k]) for row in probs),
            end=tuple(float(x) for x in probs[:, k]),
            row_counts=tuple(int(x) for x in row_counts),
            shares=tuple(float(x) for x in shares),
            steps=StepCounts.of(self.lengths),
            n_traces=len(self.lengths),
            teacher=", ".join(sorted(self.teachers)) or None,
            alpha=alpha,
            start_counts=tuple(int(x) for x in self.start),
            transition_counts=tuple(tuple(int(x) for x in row) for row in self.pairs),
            end_counts=tuple(int(x) for x in self.ends),
        )


def estimate(
    traces: Iterable[LabelledTrace | Sequence[str]], alpha: float = 0.0, bonds: tuple[str, ...] = BONDS
) -> StructureGraph:
    """The graph of labelled traces (LabelledTrace records or plain bond sequences).

    Args:
        traces: streamed once.
        alpha: additive smoothing per outcome (0 = maximum likelihood).
        bonds: the bond order of the tables.
    """
    counter = GraphCounter(bonds)
    for trace in traces:
        if isinstance(trace, LabelledTrace):
            counter.add(trace.bonds, trace.teacher_model)
        else:
            counter.add(trace)
    return counter.graph(alpha)


def labels_to_json(traces: Iterable[LabelledTrace]) -> str:
    """Per-trace labels as JSON lines: {"id", "source", "teacher_model", "steps": [{bond, start, end}]}."""
    return "".join(json.dumps(t.to_dict(), ensure_ascii=False) + "\n" for t in traces)
