"""`molspec build`: a compiled plan run on an engine into a resumable Hugging Face dataset directory.

    BuildPlan ──scheduler(engine)──▶ journal (Row | Failure, durable) ──finalize──▶ data/*.parquet + Manifest

The caller (api / cli) compiles the spec into a `BuildPlan` first and writes the card afterwards; this
module knows neither the language front end nor publishing.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from molspec.engines import Engine, create, default_window
from molspec.plan.compile import Plan
from molspec.provenance import GitInfo
from molspec.records import (
    MANIFEST,
    BuildMetadata,
    CacheInfo,
    Failure,
    FidelityInfo,
    Manifest,
    Row,
    SamplingInfo,
    VariantInfo,
    read_manifest,
)
from molspec.runtime.cache import CACHE_FILE, StepCache, cached, engine_identity
from molspec.runtime.fidelity import fidelity_info
from molspec.runtime.fs import write_json_atomic
from molspec.runtime.journal import Scan
from molspec.runtime.manifest import manifest
from molspec.runtime.runconfig import Job, Progress, RunConfig
from molspec.runtime.scheduler import run
from molspec.runtime.spec_copy import copy_spec
from molspec.runtime.store import BuildKey, Store
from molspec.sources import Question
from molspec.spec import Spec
from molspec.version import __version__


@dataclass(frozen=True)
class BuildPlan:
    """Everything a build needs from the front end: the spec, its compiled plan and the questions it uses.

    Attributes:
        data_sha256: hash of the questions the plan draws from (part of the build's identity).
        git: the spec files' git commit and dirtiness.
    """

    spec: Spec
    plan: Plan
    questions: dict[str, list[Question]]
    data_sha256: str
    git: GitInfo


@dataclass
class BuildOptions:
    """What `molspec build` was asked to do.

    Attributes:
        out: the dataset directory.
        limit: build only the first N samples of the plan (resume later for the rest).
        engine, model: override the spec's model block.
        fresh: discard an existing build in `out` (only the files molspec wrote there).
        window: samples in flight (default per engine).
        command: the command line recorded in the card.
        cache: answer requests from the step cache (.molspec/cache.jsonl) and store new completions there.
        variant: which variant of its spec this build is (set by a variant build; recorded in the manifest).
        variants: a variant build builds only these variants (empty: all of them).
    """

    out: Path
    limit: int | None = None
    engine: str | None = None
    model: str | None = None
    fresh: bool = False
    window: int | None = None
    gate: bool | None = None  # override the spec's `fidelity.gate` (part of the build's identity)
    command: str = ""
    cache: bool = True
    variant: VariantInfo | None = None
    variants: tuple[str, ...] = ()


@dataclass
class BuildResult:
    """The summary a build prints."""

    out: Path
    planned: int
    target: int
    resumed: int
    done: int
    failed: int
    kept: int
    steps: int
    tokens: int
    wall_s: float
    accuracy: float | None
    generate_s: float = 0.0  # of wall_s, the time in the scheduler and engine (engine start excluded)
    rejected: int = 0  # damaged journal records set aside (their samples were redone)
    fidelity: FidelityInfo | None = None
    cache: CacheInfo | None = None  # this run's requests answered from the step cache / generated
    errors: list[str] = field(default_factory=list)
    files: dict[str, list[str]] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s if self.wall_s > 0 else 0.0


@dataclass(frozen=True)
class Prepared:
    """A BuildPlan with its engine resolved (the spec's model block, or the command line's override)."""

    bp: BuildPlan
    engine: str
    model: str
    options: dict[str, Any]

    @property
    def spec(self) -> Spec:
        return self.bp.spec

    @property
    def plan(self) -> Plan:
        return self.bp.plan

    def key(self) -> BuildKey:
        from molspec.structure.label import labeler_identity  # the labelers load only when a build runs

        gate = self.spec.fidelity
        return BuildKey(self.spec.sha256(), self.bp.data_sha256, self.plan.seed, self.plan.samples, self.engine,
                        self.model, labeler_identity(gate.labeler) if gate.gate else "")


def prepare(bp: BuildPlan, opts: BuildOptions) -> Prepared:
    if opts.gate is not None and opts.gate != bp.spec.fidelity.gate:
        fidelity = bp.spec.fidelity.model_copy(update={"gate": opts.gate})
        bp = replace(bp, spec=bp.spec.model_copy(update={"fidelity": fidelity}))
    m = bp.spec.model
    engine = opts.engine or m.engine
    options = dict(m.options) if engine == m.engine else {}  # another engine's options would not apply
    if m.chat_template and engine == m.engine:
        options.setdefault("chat_template", m.chat_template)
    return Prepared(bp, engine, opts.model or m.model, options)


def jobs(p: Prepared, indices: list[int]) -> Iterator[Job]:
    """Jobs for the given plan indices, in order, reading walks chunk by chunk."""
    if not indices:
        return
    wanted = np.asarray(indices, dtype=np.int64)
    for w in p.plan.iter_walks(int(wanted.min()), int(wanted.max()) + 1):
        for r in np.flatnonzero(np.isin(w.index, wanted)):
            sp = p.plan.splits[int(w.split[r])]
            yield Job(index=int(w.index[r]), split=sp.spec.name, graph=p.plan.graphs[int(w.graph[r])],
                      bonds=tuple(p.plan.bond_names(w.bonds[r], int(w.lengths[r]))),
                      question=p.bp.questions[sp.spec.source][int(w.question[r])])


# runs the samples left to do; returns the step cache's counts (None: no cache)
Generate = Callable[["Prepared", Store, list[int], Progress], CacheInfo | None]
EngineFor = Callable[["Prepared"], Engine]  # a started engine for a build, owned (and closed) by the caller


def build(bp: BuildPlan, opts: BuildOptions, engine: Engine | None = None,
          on_round: Callable[[Progress, int], None] | None = None,
          on_done: Callable[[Path], None] | None = None, generate: Generate | None = None,
          cache: StepCache | None = None, engine_for: EngineFor | None = None) -> BuildResult:
    """Run (or resume) a build; returns its summary. The engine is created only if work remains.

    `on_done(out)` runs once the dataset and manifest are written, while the build still holds the
    directory's lock (the caller writes the card there, so no other build can interleave with it).
    `generate` runs the samples left to do: by default the engine in this process; the Ray executor passes
    its replicas, and everything else (lock, journal checks, finalize) is this same function.
    Requests go through the step cache: `cache` (a variant group's, owned by the caller) or, unless
    `opts.cache` is off, the build directory's own `.molspec/cache.jsonl`. `engine_for` hands out an engine
    the caller shares between builds (a variant group); without it and `engine`, the build starts its own.

    Raises:
        StoreError: `out` is not molspec's, is locked by another build, or holds another build.
        EngineError: the engine cannot start or dies.
    """
    started = time.perf_counter()
    p = prepare(bp, opts)
    store = Store(opts.out)
    store.open(p.key(), fresh=opts.fresh)
    try:
        target = min(opts.limit or p.plan.samples, p.plan.samples)
        scan = validated_scan(p, store)
        todo = [i for i in range(target) if i not in scan.done]
        prog = Progress()
        info: CacheInfo | None = None
        if todo and generate is not None:
            info = generate(p, store, todo, prog)
        elif todo:
            info = _generate(p, opts, store, todo, prog, _Engines(engine, engine_for, cache), on_round)
        if not todo and unchanged(opts.out, target, sum(i < target for i in scan.done)):
            result = replace(from_manifest(opts.out, p, resumed=len(scan.done), wall_s=time.perf_counter() - started),
                             rejected=len(scan.rejected))
        else:
            with _no_cyclic_gc():
                result = finalize(p, store, opts, target, len(scan.done), prog, time.perf_counter() - started,
                                  rejected=len(scan.rejected), cache=info)
        if on_done is not None:
            with _no_cyclic_gc():
                on_done(opts.out)
        return result
    finally:
        store.close()


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Reading the journal back and writing shards and the card make thousands of acyclic rows at once; the
    cyclic collector would walk them again and again (half of finalize's time at 5,000 rows). Reference
    counting still frees them; collection resumes afterwards."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass(frozen=True)
class _Engines:
    """Where a build's engine and step cache come from (given by the caller, or the build's own)."""

    engine: Engine | None
    engine_for: EngineFor | None
    cache: StepCache | None


def _generate(p: Prepared, opts: BuildOptions, store: Store, todo: list[int], prog: Progress, src: _Engines,
              on_round: Callable[[Progress, int], None] | None) -> CacheInfo | None:
    """Run the samples left to do on the engine, through the step cache; returns the cache's counts."""
    own_cache = StepCache.open(store.meta / CACHE_FILE) if src.cache is None and opts.cache else None
    step_cache = src.cache or own_cache
    given = src.engine or (src.engine_for(p) if src.engine_for else None)
    eng = given or create(p.engine, p.model, p.options, p.plan.seed)
    front = cached(eng, step_cache, engine_identity(p.engine, p.model, p.options, p.plan.seed)) if step_cache \
        else None
    try:
        cfg = run_config(p, opts, eng.describe())
        t = time.perf_counter()
        run(p.spec, front or eng, jobs(p, todo), cfg, store.append, prog,
            on_round=(lambda pr: on_round(pr, len(todo))) if on_round else None)
        prog.generate_s = time.perf_counter() - t
    finally:
        store.close_journal()
        try:
            if front is not None:
                front.close()
            if own_cache is not None:
                own_cache.close()
        finally:
            if given is None:
                eng.close()
    return front.info() if front is not None else None


def run_config(p: Prepared, opts: BuildOptions, engine_info: dict[str, Any]) -> RunConfig:
    from molspec.structure.label import get_labeler  # the labelers load only when a build runs

    gate = p.spec.fidelity
    return RunConfig(window=opts.window or default_window(p.engine), seed=p.plan.seed,
                     base=p.spec.model.sampling, metadata=build_metadata(p, engine_info), gate=gate,
                     labeler=get_labeler(gate.labeler) if gate.gate else None)  # gate off: no labels, no cost


def validated_scan(p: Prepared, store: Store) -> Scan:
    """The journal, each record checked against the plan; refused records are set aside (and redone)."""
    scan = store.scan()
    indices = sorted({ln.entry.index for ln in scan.accepted() if ln.entry is not None})
    expected = {j.index: j for j in jobs(p, [i for i in indices if 0 <= i < p.plan.samples])}
    for ln in scan.accepted():
        assert ln.entry is not None
        body = ln.entry.row or ln.entry.failure
        assert body is not None
        ln.reason = _mismatch(body, expected.get(ln.entry.index))
    store.set_aside(scan.rejected)
    return scan


def _mismatch(rec: Row | Failure, job: Job | None) -> str | None:
    """Why a journalled record is not the plan's sample at its index (None when it is)."""
    if job is None:
        return "sample_index outside the plan"
    if (rec.split, rec.graph, tuple(rec.bonds), rec.question_id) != (job.split, job.graph, job.bonds,
                                                                      job.question.id):
        return "does not match the plan's sample at this index (split, graph, bonds or question)"
    if isinstance(rec, Row) and ([s.bond for s in rec.steps] != list(job.bonds)
                                 or (rec.id, rec.question, rec.gold)
                                 != (f"{job.split}-{job.index:06d}", job.question.question, job.question.gold)):
        return "its steps or question do not match the plan's sample"
    return None


def unchanged(out: Path, target: int, done: int) -> bool:
    """Nothing new to write: the finished dataset on disk already holds exactly these samples.

    Rewriting it would change only timestamps, and a second `--push` would then see a different build."""
    try:
        m = read_manifest(out)
    except Exception:  # noqa: BLE001  (any unreadable manifest means: finalize again)
        return False
    return m.summary.target == target and m.summary.done == done and all(
        _parquet_whole(out / f) for files in m.files.values() for f in files)


def _parquet_whole(path: Path) -> bool:
    """A shard that is there and ends as parquet does (a damaged one makes finalize write it again)."""
    try:
        with path.open("rb") as fh:
            fh.seek(-4, 2)
            return fh.read(4) == b"PAR1"
    except OSError:
        return False


def from_manifest(out: Path, p: Prepared, resumed: int, wall_s: float) -> BuildResult:
    m = read_manifest(out)
    s = m.summary
    return BuildResult(out=out, planned=p.plan.samples, target=s.target, resumed=resumed, done=s.done,
                       failed=s.failed, kept=s.kept, steps=0, tokens=0, wall_s=wall_s, accuracy=s.accuracy,
                       errors=[f.error for f in m.failures][:20], files=m.files, fidelity=m.fidelity)


def build_metadata(p: Prepared, engine_info: dict[str, Any]) -> BuildMetadata:
    m = p.spec.model
    return BuildMetadata(
        engine=p.engine, model=p.model, engine_info=engine_info, sampling=SamplingInfo(**m.sampling.model_dump()),
        per_bond={b.name: SamplingInfo(**b.sampling.model_dump()) for b in p.spec.bonds.values()
                  if b.sampling.model_dump(exclude_none=True)},
        spec_sha256=p.spec.sha256(), spec_git_commit=p.bp.git.commit, spec_git_dirty=p.bp.git.dirty,
        data_sha256=p.bp.data_sha256, molspec_version=__version__, seed=p.plan.seed)


def finalize(p: Prepared, store: Store, opts: BuildOptions, target: int, resumed: int, prog: Progress,
             wall_s: float, rejected: int = 0, cache: CacheInfo | None = None) -> BuildResult:
    """Write the dataset, the spec copy and, last, the manifest (its presence marks a finished finalize)."""
    scan = validated_scan(p, store)
    done = {i: r for i, r in scan.done.items() if i < target}
    failed = {i: f for i, f in scan.failed.items() if i < target}
    rows = [done[i] for i in sorted(done)]
    kept = [r for r in rows if p.spec.answer.keep == "all" or r.correct is not False]
    by_split: dict[str, list[Row]] = {s.spec.name: [] for s in p.plan.splits}
    for r in kept:
        by_split[r.split].append(r)
    files = store.write_dataset(by_split, p.spec.output.shard_rows)
    copy = copy_spec(p.spec, p.bp.questions, store)
    graded = [r.correct for r in rows if r.correct is not None]
    result = BuildResult(out=opts.out, planned=p.plan.samples, target=target, resumed=resumed, done=len(rows),
                         failed=len(failed), kept=len(kept), steps=prog.steps, tokens=prog.tokens,
                         wall_s=wall_s, accuracy=sum(graded) / len(graded) if graded else None, rejected=rejected,
                         fidelity=fidelity_info(rows, p.spec), cache=cache,
                         errors=[f.error for f in failed.values()][:20], files=files, generate_s=prog.generate_s)
    m: Manifest = manifest(p, opts.command, result, rows, failed, copy, variant=opts.variant)
    store.own([MANIFEST])
    write_json_atomic(opts.out / MANIFEST, m.model_dump(mode="json"))
    return result


