"""`drop NAME` in a variant: the bond leaves the spec, its row and every edge into it leave each graph, and
each probability row that lost weight is rescaled to its old sum (energy rows and `normalize = true` graphs
rescale themselves). A drop that leaves a graph unable to start, a bond unreachable or a walk unable to go
on or to end is an error at the `drop`.
"""

from __future__ import annotations

from molspec.diagnostics import Diagnostic, Label
from molspec.graphmath import Chain, can_end, chain, reachable
from molspec.lang import ast
from molspec.spec import GraphSpec, RowSpec, Spec

# Graph findings that a drop's own diagnostic already explains (unreachable, dead end, never ends).
QUIETED = ("MOL206", "MOL207", "MOL210")


def apply_drops(spec: Spec, drops: list[ast.Drop]) -> tuple[Spec, list[Diagnostic]]:
    """The spec without the dropped bonds, and the errors of drops that break a graph."""
    if not drops:
        return spec, []
    names = {d.name.name for d in drops}
    declared = list(spec.bonds)
    kept = [b for b in declared if b not in names]
    graphs: dict[str, GraphSpec] = {}
    diags: list[Diagnostic] = []
    for name, g in spec.graphs.items():
        graphs[name] = drop_from_graph(g, names)
        blame = [d for d in drops if _mentions(g, d.name.name)]
        if blame and g.valid:
            diags += _broken(g, graphs[name], declared, kept, blame, names)
    bonds = {n: b for n, b in spec.bonds.items() if n not in names}
    return spec.model_copy(update={"bonds": bonds, "graphs": graphs}), diags


def drop_from_graph(g: GraphSpec, names: set[str]) -> GraphSpec:
    rows = tuple(_drop_from_row(r, g, names) for r in g.rows if r.source not in names)
    return g.model_copy(update={"rows": rows})


def _drop_from_row(row: RowSpec, g: GraphSpec, names: set[str]) -> RowSpec:
    kept = tuple(e for e in row.edges if e.target not in names)
    if len(kept) == len(row.edges):
        return row
    before, after = sum(e.weight for e in row.edges), sum(e.weight for e in kept)
    if g.mode == "probability" and not g.normalize and after > 0:
        scale = before / after
        kept = tuple(e.model_copy(update={"weight": e.weight * scale}) for e in kept)
    return row.model_copy(update={"edges": kept})


def _mentions(g: GraphSpec, bond: str) -> bool:
    return any(r.source == bond or any(e.target == bond for e in r.edges) for r in g.rows)


def _broken(before: GraphSpec, after: GraphSpec, declared: list[str], kept: list[str],
            blame: list[ast.Drop], dropped: set[str]) -> list[Diagnostic]:
    """The drop errors of one graph, at the first drop that touches it (naming every such drop)."""
    drop = blame[0]
    name = _listed([d.name.name for d in blame])
    verb = "is" if len(blame) == 1 else "are"
    start = next((r for r in after.rows if r.source == "start"), None)
    if start is not None and not start.edges:
        return [_error(drop, f"walks of graph '{after.name}' cannot start once {name} {verb} dropped",
                       "every edge of its start row leads to a dropped bond", start)]
    c0, c1 = chain(before, declared), chain(after, kept)
    r0, r1 = _names(c0, reachable(c0)), _names(c1, reachable(c1))
    out = [_error(drop, f"dropping {name} leaves '{b}' unreachable in graph '{after.name}'",
                  f"'{b}' was reached only through {name}", _row(after, b))
           for b in sorted(r0 - r1 - dropped)]
    out += [_error(drop, f"walks that reach '{b}' have nowhere to go once {name} {verb} dropped in graph "
                   f"'{after.name}'", "every edge of this row leads to a dropped bond", _row(after, b))
            for b in sorted((_stuck(c1) - _stuck(c0)) & r1)]
    if c1.uses_end:
        ends0 = _names(c0, can_end(c0))
        out += [_error(drop, f"walks that reach '{b}' can never end once {name} {verb} dropped in graph "
                       f"'{after.name}'", f"'{b}' could end only through {name}", _row(after, b))
                for b in sorted((r1 & ends0) - _names(c1, can_end(c1)) - _stuck(c1))]
    return out


def _listed(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _names(c: Chain, idx: set[int]) -> set[str]:
    return {c.bonds[i] for i in idx}


def _stuck(c: Chain) -> set[str]:
    return {b for i, b in enumerate(c.bonds) if c.trans[i].sum() == 0 and c.end[i] == 0}


def _row(g: GraphSpec, bond: str) -> RowSpec | None:
    return next((r for r in g.rows if r.source == bond), None)


def _error(drop: ast.Drop, message: str, why: str, row: RowSpec | None) -> Diagnostic:
    secondary = (Label(row.span, why),) if row is not None and row.span is not None else ()
    return Diagnostic("MOL805", message, Label(drop.sp, "dropped here"), secondary=secondary,
                      help="drop the bonds that depend on it too, or replace the graph in the variant "
                           "(`graph NAME { ... }`) with rows that still lead everywhere")
