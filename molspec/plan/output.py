"""Plan output: the human summary of `molspec plan` and the walk file of `--out`."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from molspec.atomic import atomic_path
from molspec.plan.compile import Plan, Walks
from molspec.plan.pairing import Pairing
from molspec.plan.stats import PlanStats, self_loops, top_transition


def print_stats(path: str, plan: Plan, stats: PlanStats, out: str | None = None,
                console: Console | None = None) -> None:
    con = console or Console(highlight=False, soft_wrap=True)
    s = stats.steps
    con.print(f"[bold]plan of {path}[/bold]  (seed {stats.seed})")
    for name, sp in stats.splits.items():
        con.print(f"  split {name:<12} {sp['samples']:>10,} samples   graphs {', '.join(sp['graphs'])}   "
                  f"source {sp['source']} ({sp['questions']:,} questions)")
    con.print(f"  samples        {stats.samples:>10,}")
    if stats.estimated:
        con.print(f"  (the statistics below are estimated from {stats.walked:,} walks, drawn in proportion "
                  "from every split)")
    con.print(f"  steps          mean {s['mean']:.1f}  p50 {s['p50']}  p95 {s['p95']}  max {s['max']}"
              f"   ({s['total']:,} bond steps)")
    expected = ", ".join(f"{g} {n:.1f}" for g, n in stats.expected_steps.items())
    con.print(f"  expected steps {expected}   (mean walk length the graph implies)")
    con.print(f"  engine calls   {stats.engine_calls:>10,}   (bond steps + one answer per sample)")
    con.print(f"  token budget   {stats.max_tokens:>10,}   (upper bound from max_tokens)")
    con.print(_share_table(plan, stats))
    if out:
        con.print(f"walks written to {out}")


def _share_table(plan: Plan, stats: PlanStats) -> Table:
    t = Table(box=None, padding=(0, 2), show_edge=False)
    t.add_column("bond")
    t.add_column("kind")
    t.add_column("planned", justify="right")
    for g in stats.stationary:
        t.add_column(f"stationary ({g})", justify="right")
    for b in plan.bonds:
        row = [b, plan.spec.bonds[b].kind, _pct(stats.bond_shares.get(b))]
        row += [_pct(stats.stationary[g].get(b)) for g in stats.stationary]
        t.add_row(*row)
    return t


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def write_walks(plan: Plan, out: Path) -> None:
    """Write every walk (id, split, graph, question index, bonds) to parquet or jsonl, atomically."""
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".jsonl"):
        from molspec.diagnostics import Diagnostic, Label, MolspecError, Span

        raise MolspecError([Diagnostic("MOL014", f"cannot write walks to {out}: use .parquet or .jsonl",
                                       Label(Span(str(out), 0, 0, 1, 1)))])
    with atomic_path(out) as tmp:
        if suffix == ".parquet":
            _write_parquet(plan, tmp)
        else:
            _write_jsonl(plan, tmp)


def _table(plan: Plan, w: Walks) -> pa.Table:
    names = [plan.bond_names(row, int(n)) for row, n in zip(w.bonds, w.lengths, strict=True)]
    split_names = [plan.splits[int(s)].spec.name for s in w.split]
    return pa.table({
        "id": [f"{sp}-{int(i):06d}" for sp, i in zip(split_names, w.index, strict=True)],
        "split": split_names, "sample_index": w.index, "graph": [plan.graphs[int(g)] for g in w.graph],
        "question_index": w.question, "n_steps": w.lengths.astype("int32"), "bonds": names,
    })


def _write_parquet(plan: Plan, tmp: Path) -> None:
    writer: pq.ParquetWriter | None = None
    try:
        for w in plan.iter_walks(0, plan.samples):
            table = _table(plan, w)
            writer = writer or pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def _write_jsonl(plan: Plan, tmp: Path) -> None:
    with tmp.open("w", encoding="utf-8") as fh:
        for w in plan.iter_walks(0, plan.samples):
            for row in _table(plan, w).to_pylist():
                fh.write(json.dumps(row) + "\n")


def print_variant_stats(path: str, plans: dict[str, Plan], stats: dict[str, PlanStats], pairing: Pairing,
                        console: Console | None = None) -> None:
    """The statistics of every variant side by side, and the pairing in words."""
    con = console or Console(highlight=False, soft_wrap=True)
    first = next(iter(stats.values()))
    con.print(f"[bold]plan of {path}[/bold]  (seed {first.seed}, {len(plans)} variants)")
    for name, sp in first.splits.items():
        con.print(f"  split {name:<12} {sp['samples']:>10,} samples   source {sp['source']} "
                  f"({sp['questions']:,} questions)")
    con.print(f"  {pairing.sentence()}", markup=False)
    if first.estimated:
        con.print(f"  (estimated from {first.walked:,} walks per variant)")
    con.print(variant_table(plans, stats), markup=False)


def variant_table(plans: dict[str, Plan], stats: dict[str, PlanStats]) -> str:
    """The side-by-side table as plain text (a column per variant, never wrapped)."""
    both = [(p, stats[n]) for n, p in plans.items()]
    rows = [["", *plans],
            ["changes", *[", ".join(p.spec.changes) or "-" for p, _ in both]],
            ["graphs", *[", ".join(p.graphs) for p, _ in both]],
            ["mean steps", *[f"{s.steps['mean']:.2f}" for _, s in both]],
            ["p50 / p95 / max", *[f"{s.steps['p50']} / {s.steps['p95']} / {s.steps['max']}" for _, s in both]]]
    for b in dict.fromkeys(b for p in plans.values() for b in p.bonds):
        rows.append([f"share {b}", *[_pct(s.bond_shares.get(b)) if b in p.bonds else "dropped" for p, s in both]])
    rows += [["self-loops", *[_pct(self_loops(s)) for _, s in both]],
             ["top transition", *[top_transition(s) for _, s in both]],
             ["engine calls", *[f"{s.engine_calls:,}" for _, s in both]],
             ["token budget", *[f"{s.max_tokens:,}" for _, s in both]]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                       for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
                     for r in rows)
