"""Anything with a structure -> StructureGraph: a spec's graph, a built dataset, or teacher traces.

`molspec compare A B` and `molspec analyze` accept all three:
    spec.mol            the spec's graph (spec.mol:NAME when it has several)
    out/build/          a build directory: the walks its rows realised
    traces.jsonl        teacher traces (segmented and labelled with the cue labeler)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from molspec.graphmath import Chain, chain, expected_visits, stationary
from molspec.spec import Spec
from molspec.structure.estimate import GraphCounter, StepCounts, StructureGraph
from molspec.structure.rows import build_error, open_build, read_rows


def from_chain(c: Chain) -> StructureGraph:
    """A spec graph as a StructureGraph (shares: the expected bond shares of its finite walks)."""
    visits = expected_visits(c)
    pi = visits / visits.sum() if visits.sum() > 0 else stationary(c)
    lo, hi = c.min_steps, c.max_steps
    return StructureGraph(bonds=c.bonds, start=tuple(map(float, c.start)),
                          transitions=tuple(tuple(map(float, row)) for row in c.trans), end=tuple(map(float, c.end)),
                          row_counts=tuple(0 for _ in c.bonds), shares=tuple(map(float, pi)),
                          steps=StepCounts.of([lo, hi]), n_traces=0, teacher=f"graph {c.name}")


def spec_graphs(spec: Spec) -> dict[str, StructureGraph]:
    return {name: from_chain(chain(g, list(spec.bonds))) for name, g in spec.graphs.items()}


def from_walks(walks: Iterable[Sequence[str]], bonds: Sequence[str]) -> StructureGraph:
    counter = GraphCounter(tuple(bonds))
    for w in walks:
        counter.add(w)
    return counter.graph()


def conditional(g: StructureGraph) -> StructureGraph:
    """P(next bond | bond, the walk goes on): rows renormalised without `end`, as the paper estimates P(b'|b)
    between consecutive steps. Walks cut by a step limit and graphs with end weights become comparable."""
    import dataclasses

    m = g.matrix()
    rows = m.sum(axis=1, keepdims=True)
    norm = np.where(rows > 0, m / np.where(rows > 0, rows, 1), 0.0)
    return dataclasses.replace(g, transitions=tuple(tuple(map(float, r)) for r in norm))


def load_graph(arg: str) -> tuple[str, StructureGraph]:
    """Resolve a `compare` argument to (display name, graph), transitions conditional on continuing.

    Raises:
        MolspecError: the argument names nothing readable, or a spec with several graphs and no `:NAME`.
    """
    path_text, _, name = arg.partition(":") if not Path(arg).exists() else (arg, "", "")
    path = Path(path_text)
    if path.is_dir():
        m = open_build(path)
        order = list(dict.fromkeys(b for g in m.graphs.values() for b in g.bonds))
        return f"{arg} (built)", conditional(from_walks((r.bonds for r in read_rows(path, m)), order))
    if path.suffix == ".mol":
        shown, g = _spec_graph(path, name, arg)
        return shown, conditional(g)
    from molspec.structure.extract import extract

    return f"{arg} (traces)", conditional(extract([path], keep_labels=False).graph)


def load_spec(path: Path) -> Spec:
    """Parse and check a spec file (checked as `molspec check` does; structure does not import the api).

    Raises:
        MolspecError: the spec cannot be read or has errors.
    """
    from molspec.check import check_program
    from molspec.diagnostics import MolspecError
    from molspec.lang.imports import load_program

    program = load_program(path)
    spec, diagnostics = check_program(program)
    if spec is None or any(d.is_error for d in diagnostics):
        raise MolspecError(diagnostics, program.sources)
    return spec


def _spec_graph(path: Path, name: str, arg: str) -> tuple[str, StructureGraph]:
    graphs = spec_graphs(load_spec(path))
    if name:
        if name not in graphs:
            raise build_error(arg, f"{path} has no graph '{name}'", f"graphs there: {', '.join(graphs)}")
        return arg, graphs[name]
    if len(graphs) != 1:
        raise build_error(arg, f"{path} has {len(graphs)} graphs", f"name one: {path}:{next(iter(graphs), 'NAME')}")
    only = next(iter(graphs))
    return f"{path}:{only}", graphs[only]


def aligned_matrix(g: StructureGraph, bonds: Sequence[str]) -> np.ndarray:
    idx = {b: i for i, b in enumerate(g.bonds)}
    m = np.zeros((len(bonds), len(bonds)))
    src = g.matrix()
    for i, a in enumerate(bonds):
        for j, b in enumerate(bonds):
            if a in idx and b in idx:
                m[i, j] = src[idx[a], idx[b]]
    return m
