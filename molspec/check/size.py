"""Check of the plan's size: a dataset of tens of millions of samples is allowed, but said out loud."""

from __future__ import annotations

from molspec.diagnostics import Diagnostic, Label, Severity
from molspec.spec import Spec

LARGE_PLAN = 10_000_000  # samples from which `check` warns
WALK_ROW_BYTES = 22  # per sample in `plan.compile.Walks`: index, split, graph, question, length (+1 per step)


def check_size(spec: Spec) -> list[Diagnostic]:
    d = spec.dataset
    if d is None or d.span is None:
        return []
    total = sum(s.samples for s in d.splits)
    if total < LARGE_PLAN:
        return []
    steps = max((spec.graphs[g].max_steps for s in d.splits for g in s.graphs if g in spec.graphs), default=1)
    size = total * (WALK_ROW_BYTES + steps)
    return [Diagnostic("MOL610", f"the plan has {total:,} samples: {human_bytes(size)} as a table of walks in "
                       "memory", Label(d.span, "a very large dataset"), severity=Severity.WARNING,
                       help="`plan` estimates its statistics from a sample of walks and `build --limit N` "
                            "builds the first N, but a whole build makes one row per sample")]


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1000
    return f"{size:,.1f} PB"  # pragma: no cover  (the loop returns at TB)
