"""Spec -> Plan: every sample index gets a split, a graph, a question and a bond walk.

The plan is a pure function of (spec, seed): `Plan.walks(a, b)` for any range gives the same rows
on any machine, so a build can be sharded, resumed or rerun without storing the plan.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from molspec.diagnostics import Diagnostic, Label, MolspecError, Span
from molspec.graphmath import Chain, chain
from molspec.plan.sampler import CHUNK, Tables, draws_per_sample, grid, tables, unit, walk
from molspec.spec import Spec, SplitSpec

_QUESTION_KEY = 0x9E3779B97F4A7C15  # a distinct Philox key for the question permutation


@dataclass(frozen=True)
class SplitPlan:
    """A split's slice of the plan: global sample indices offset .. offset + samples."""

    spec: SplitSpec
    offset: int
    graph_ids: tuple[int, ...]  # indexes into Plan.graphs
    question_slice: tuple[int, int]  # the range of the source's permuted questions this split uses


@dataclass(frozen=True)
class Walks:
    """The plan rows of a range of samples (column arrays, one row per sample).

    Attributes:
        index: global sample index (int64).
        split: index into Plan.splits (int16).
        graph: index into Plan.graphs (int16).
        question: row of the split's source (int64).
        bonds: bond ids, padded with -1 (int8, shape (n, Plan.max_steps)).
        lengths: number of bond steps (int16).
    """

    index: npt.NDArray[np.int64]
    split: npt.NDArray[np.int16]
    graph: npt.NDArray[np.int16]
    question: npt.NDArray[np.int64]
    bonds: npt.NDArray[np.int8]
    lengths: npt.NDArray[np.int16]

    def __len__(self) -> int:
        return int(self.index.shape[0])


@dataclass
class Plan:
    """A compiled spec, ready to produce walks.

    Attributes:
        spec: the checked spec.
        seed: the plan seed (the dataset's unless overridden).
        bonds: global bond names; bond id i is bonds[i].
        graphs: graph names, and `chains` their arrays.
        splits: split slices in spec order.
        n_questions: rows per source.
    """

    spec: Spec
    seed: int
    bonds: tuple[str, ...]
    graphs: tuple[str, ...]
    chains: tuple[Chain, ...]
    splits: tuple[SplitPlan, ...]
    n_questions: dict[str, int]
    _tables: tuple[Tables, ...] = field(default=(), repr=False)

    @property
    def samples(self) -> int:
        return sum(s.spec.samples for s in self.splits)

    @property
    def max_steps(self) -> int:
        return max((c.max_steps for c in self.chains), default=1)

    @property
    def draws(self) -> int:
        return draws_per_sample(self.max_steps)

    def walks(self, start: int = 0, stop: int | None = None) -> Walks:
        """Rows start..stop of the plan (stop defaults to the end)."""
        stop = self.samples if stop is None else min(stop, self.samples)
        out = _empty(self.max_steps, max(stop - start, 0))
        at = 0
        for part in self.iter_walks(start, stop):  # filled in place: peak memory is the plan plus one chunk
            for f in Walks.__dataclass_fields__:
                getattr(out, f)[at:at + len(part)] = getattr(part, f)
            at += len(part)
        return out

    def iter_walks(self, start: int, stop: int, chunk: int = CHUNK) -> Iterator[Walks]:
        """Rows start..stop in chunks (bounded memory for millions of samples)."""
        for si, sp in enumerate(self.splits):
            lo, hi = max(start, sp.offset), min(stop, sp.offset + sp.spec.samples)
            for a in range(lo, hi, chunk):
                yield self._chunk(si, sp, a, min(a + chunk, hi))

    def _chunk(self, si: int, sp: SplitPlan, a: int, b: int) -> Walks:
        draws = grid(self.seed, a, b, self.draws)
        n = b - a
        gids = np.array(sp.graph_ids, dtype=np.int16)
        if len(gids) == 1:
            pick = np.full(n, gids[0], dtype=np.int16)
            bonds, lengths = walk(self._tables[int(gids[0])], draws, self.max_steps)
        else:  # a mixed split: draw 0 picks each sample's graph
            pick = gids[np.minimum((unit(draws[:, 0]) * len(gids)).astype(np.int64), len(gids) - 1)]
            bonds = np.full((n, self.max_steps), -1, dtype=np.int8)
            lengths = np.zeros(n, dtype=np.int16)
            for g in np.unique(pick):
                rows = np.flatnonzero(pick == g)
                bonds[rows], lengths[rows] = walk(self._tables[int(g)], draws[rows], self.max_steps)
        index = np.arange(a, b, dtype=np.int64)
        return Walks(index, np.full(n, si, dtype=np.int16), pick, self._questions(sp, index - sp.offset),
                     bonds, lengths)

    def _questions(self, sp: SplitPlan, local: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        q_lo, q_hi = sp.question_slice
        perm = _permutation(self.seed, self.n_questions[sp.spec.source])
        return perm[q_lo + local % (q_hi - q_lo)]

    def bond_names(self, row: npt.NDArray[np.int8], length: int) -> list[str]:
        return [self.bonds[int(b)] for b in row[:length]]


def _empty(width: int, n: int = 0) -> Walks:
    return Walks(np.zeros(n, np.int64), np.zeros(n, np.int16), np.zeros(n, np.int16), np.zeros(n, np.int64),
                 np.full((n, width), -1, np.int8), np.zeros(n, np.int16))


_PERM_CACHE: dict[tuple[int, int], npt.NDArray[np.int64]] = {}


def _permutation(seed: int, n: int) -> npt.NDArray[np.int64]:
    key = (seed, n)
    if key not in _PERM_CACHE:
        gen = np.random.Generator(np.random.Philox(key=[seed, _QUESTION_KEY]))
        _PERM_CACHE[key] = gen.permutation(n).astype(np.int64)
    return _PERM_CACHE[key]


def compile_plan(spec: Spec, n_questions: dict[str, int], seed: int | None = None,
                 samples: int | None = None) -> Plan:
    """Build the plan of a checked spec.

    Args:
        spec: a spec with a dataset and no errors.
        n_questions: rows per source name (from `molspec.sources.load_questions`).
        seed: overrides the dataset seed.
        samples: overrides the total sample count (split sizes are scaled, each at least 1).

    Raises:
        MolspecError: the spec has nothing to build, or a split's source has too few questions.
    """
    if spec.dataset is None:
        span = Span(spec.path, 0, 0, 1, 1)
        raise MolspecError([Diagnostic("MOL603", "nothing to build: the spec has no `dataset` block",
                                       Label(span), help='add `dataset "ns/name" { samples = 100 }`')],
                           spec.files)
    bond_names = tuple(spec.bonds)
    if len(bond_names) > 127:
        raise MolspecError([Diagnostic("MOL121", "more than 127 bonds", Label(spec.dataset.span or
                                       Span(spec.path, 0, 0, 1, 1)))], spec.files)
    bond_ids = {b: i for i, b in enumerate(bond_names)}
    graph_names = tuple(spec.graphs)
    chains = tuple(chain(spec.graphs[g], bond_names) for g in graph_names)
    split_specs = _scaled(spec.dataset.splits, samples)
    splits = _split_plans(split_specs, graph_names, n_questions)
    return Plan(spec=spec, seed=spec.dataset.seed if seed is None else seed, bonds=bond_names,
                graphs=graph_names, chains=chains, splits=splits, n_questions=dict(n_questions),
                _tables=tuple(tables(c, bond_ids) for c in chains))


def _scaled(splits: tuple[SplitSpec, ...], samples: int | None) -> list[SplitSpec]:
    if samples is None:
        return list(splits)
    total = sum(s.samples for s in splits)
    sizes = [max(1, round(s.samples * samples / total)) for s in splits]
    sizes[-1] = max(1, samples - sum(sizes[:-1])) if len(sizes) > 1 else samples
    return [s.model_copy(update={"samples": n}) for s, n in zip(splits, sizes, strict=True)]


def _split_plans(splits: list[SplitSpec], graphs: tuple[str, ...], n_questions: dict[str, int]
                 ) -> tuple[SplitPlan, ...]:
    """Slices of the plan; splits that share a source get disjoint slices of its questions (no leakage)."""
    by_source: dict[str, list[SplitSpec]] = {}
    for s in splits:
        by_source.setdefault(s.source, []).append(s)
    qslice: dict[str, tuple[int, int]] = {}
    for source, group in by_source.items():
        q = n_questions[source]
        total = sum(s.samples for s in group)
        lo = 0
        for i, s in enumerate(group):
            hi = q if i == len(group) - 1 else lo + max(1, q * s.samples // total)
            qslice[s.name] = (lo, max(hi, lo + 1))
            lo = hi
    out, offset = [], 0
    for s in splits:
        out.append(SplitPlan(s, offset, tuple(graphs.index(g) for g in s.graphs), qslice[s.name]))
        offset += s.samples
    return tuple(out)
