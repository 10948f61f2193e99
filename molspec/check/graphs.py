"""Checks of transition graphs: rows sum to 1, a start, no dead ends, reachable bonds, a way to stop."""

from __future__ import annotations

from molspec.check.schema import warn
from molspec.diagnostics import Diagnostic, Label, Span
from molspec.graphmath import Chain, can_end, chain, reachable, row_weights
from molspec.spec import GraphSpec, Spec

TOLERANCE = 1e-6
MAX_STEPS = 4096


def check_graphs(spec: Spec) -> list[Diagnostic]:
    diags: list[Diagnostic] = []
    for g in spec.graphs.values():
        if not g.valid:
            continue
        diags += _sums(g)
        c = chain(g, list(spec.bonds))
        start = _start(g)
        diags += start
        diags += _lengths(g, c)
        diags += _flow(g, c, has_start=not start)
    return diags


def _span(g: GraphSpec) -> Span:
    assert g.span is not None
    return g.span


def _sums(g: GraphSpec) -> list[Diagnostic]:
    if g.mode == "energy" or g.normalize:
        return []
    out = []
    for row in g.rows:
        total = sum(row_weights(row, g).values())
        if row.edges and row.complete and abs(total - 1.0) > TOLERANCE:
            assert row.span is not None
            gap = 1.0 - total
            out.append(Diagnostic(
                "MOL201", f"the row of '{row.source}' sums to {total:.6g}, not 1",
                Label(row.span, f"sums to {total:.6g}"),
                help=(f"{'add' if gap > 0 else 'remove'} {abs(gap):.6g} somewhere in the row, "
                      "or set `normalize = true` in the graph to rescale every row")))
    return out


def _start(g: GraphSpec) -> list[Diagnostic]:
    start = next((r for r in g.rows if r.source == "start"), None)
    if start is None:
        return [Diagnostic("MOL205", f"graph '{g.name}' has no start row", Label(_span(g)),
                           help="add a row such as `start -> explore 1.0` "
                                "(Mole-Syn starts walks in exploration)")]
    end = next((e for e in start.edges if e.target == "end"), None)
    if end is not None:
        span = end.span or start.span
        assert span is not None
        return [Diagnostic("MOL211", "a walk cannot end before its first step", Label(span, "in the start row"),
                           help="remove `end` from the start row; use `steps = LO..HI` to allow short walks")]
    return []


def _lengths(g: GraphSpec, c: Chain) -> list[Diagnostic]:
    span = g.steps_span or _span(g)
    if g.min_steps < 1 or g.min_steps > g.max_steps:
        fix = (f"write the smaller bound first: `steps = {g.max_steps}..{g.min_steps}`"
               if g.max_steps >= 1 and g.min_steps > g.max_steps else "steps = LO..HI needs 1 <= LO <= HI")
        return [Diagnostic("MOL208", f"impossible length bounds {g.min_steps}..{g.max_steps}", Label(span),
                           help=fix)]
    if g.max_steps > MAX_STEPS:
        return [Diagnostic("MOL208", f"{g.max_steps} steps is beyond the limit of {MAX_STEPS}", Label(span),
                           help="long CoT traces have tens of steps; lower the upper bound")]
    if not g.has_steps and not c.uses_end:
        return [Diagnostic("MOL209", f"graph '{g.name}' has no rule for when a walk stops", Label(span),
                           help="add `steps = 8..40`, or `end` weights to rows (or both)")]
    if c.uses_end and g.has_steps is False:
        return [warn("MOL212", f"walks of '{g.name}' stop only through `end`; they are cut at {g.max_steps} "
                     "steps", span, help="add `steps = LO..HI` to bound the length explicitly")]
    return []


def _flow(g: GraphSpec, c: Chain, has_start: bool) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    reach = reachable(c)
    row_span = {r.source: r.span for r in g.rows}
    for i, bond in enumerate(c.bonds):
        span = row_span.get(bond) or _span(g)
        moves = c.trans[i].sum() > 0
        if i not in reach:
            if has_start:  # without a start row nothing is reachable; MOL205 says so once
                out.append(warn("MOL206", f"bond '{bond}' can never be reached in graph '{g.name}'", span,
                                help="give it a positive weight in some row that a walk can reach"))
        elif not moves and c.end[i] == 0:
            out.append(_dead_end(g, bond, row_span.get(bond)))
        elif not moves and g.min_steps > 1 and c.uses_end:
            out.append(Diagnostic("MOL208", f"'{bond}' can only end the walk, but walks need {g.min_steps} "
                                  "steps", Label(span),
                                  help=f"let '{bond}' continue to another bond, or lower the minimum"))
    if c.uses_end:
        out += _never_ending(g, c, reach, row_span)
    return out


def _dead_end(g: GraphSpec, bond: str, row: Span | None) -> Diagnostic:
    """MOL207 at the bond's row, or (no row) at the first edge that leads into it."""
    into = next((e.span for r in g.rows for e in r.edges if e.target == bond and e.span is not None), None)
    span = row or into or _span(g)
    label = "no way out of this bond" if row else f"'{bond}' has no row in graph '{g.name}'"
    return Diagnostic("MOL207", f"walks that reach '{bond}' have nowhere to go", Label(span, label),
                      help=f"add a row `{bond} -> ...` (with `end` to stop there)")


def _never_ending(g: GraphSpec, c: Chain, reach: set[int], row_span: dict[str, Span | None]) -> list[Diagnostic]:
    out = []
    for i in sorted(reach - can_end(c)):
        bond = c.bonds[i]
        if c.trans[i].sum() > 0:
            out.append(warn("MOL210", f"walks that reach '{bond}' can never end", row_span.get(bond) or _span(g),
                            help="give some bond on its cycle an `end` weight; until then those walks "
                                 f"stop only at the step limit ({g.max_steps})"))
    return out
