"""`molspec build`: a plan run on an engine into a resumable Hugging Face dataset directory.

    plan ──scheduler(engine)──▶ journal (durable, per sample) ──finalize──▶ data/*.parquet + molspec.json
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from molspec import __version__
from molspec.api import Document, dataset_questions
from molspec.engines import Engine, create
from molspec.plan.compile import Plan, compile_plan
from molspec.plan.stats import plan_stats
from molspec.provenance import GitInfo, git_info
from molspec.runtime.scheduler import Job, Progress, RunConfig, run
from molspec.runtime.store import BuildKey, Store, write_json_atomic
from molspec.sources import Question
from molspec.spec import Spec

DEFAULT_WINDOW = {"echo": 4096, "vllm": 1024, "openai": 256, "transformers": 16}


@dataclass
class BuildOptions:
    """What `molspec build` was asked to do.

    Attributes:
        out: the dataset directory.
        limit: build only the first N samples of the plan (resume later for the rest).
        engine, model: override the spec's model block.
        fresh: discard an existing build in `out`.
        window: samples in flight (default per engine).
        command: the command line recorded in the card.
    """

    out: Path
    limit: int | None = None
    engine: str | None = None
    model: str | None = None
    fresh: bool = False
    window: int | None = None
    command: str = ""


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
    errors: list[str] = field(default_factory=list)
    files: dict[str, list[str]] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s if self.wall_s > 0 else 0.0


@dataclass
class Prepared:
    """Everything resolved before the engine starts."""

    spec: Spec
    plan: Plan
    questions: dict[str, list[Question]]
    engine: str
    model: str
    options: dict[str, Any]
    git: GitInfo


def prepare(doc: Document, opts: BuildOptions) -> Prepared:
    spec = doc.raise_for_errors()
    questions = dataset_questions(spec)
    plan = compile_plan(spec, {k: len(v) for k, v in questions.items()})
    m = spec.model
    engine = opts.engine or m.engine
    options = dict(m.options) if engine == m.engine else {}  # another engine's options would not apply
    if m.chat_template and engine == m.engine:
        options.setdefault("chat_template", m.chat_template)
    git = git_info([Path(f) for f in spec.files])  # the spec and its imports
    return Prepared(spec, plan, questions, engine, opts.model or m.model, options, git)


def jobs(p: Prepared, indices: list[int]) -> Iterator[Job]:
    """Jobs for the given plan indices, in order, reading walks chunk by chunk."""
    if not indices:
        return
    wanted = np.asarray(indices, dtype=np.int64)
    for w in p.plan.iter_walks(int(wanted.min()), int(wanted.max()) + 1):
        keep = np.isin(w.index, wanted)
        for r in np.flatnonzero(keep):
            sp = p.plan.splits[int(w.split[r])]
            yield Job(index=int(w.index[r]), split=sp.spec.name, graph=p.plan.graphs[int(w.graph[r])],
                      bonds=tuple(p.plan.bond_names(w.bonds[r], int(w.lengths[r]))),
                      question=p.questions[sp.spec.source][int(w.question[r])])


def build(doc: Document, opts: BuildOptions, engine: Engine | None = None,
          on_round: Callable[[Progress, int], None] | None = None) -> BuildResult:
    """Run (or resume) a build; returns its summary. The engine is created only if work remains.

    Raises:
        MolspecError: the spec has errors or a source cannot be read.
        StoreError: `out` holds a build of another spec.
        EngineError: the engine cannot start or dies.
    """
    started = time.perf_counter()
    p = prepare(doc, opts)
    store = Store(opts.out)
    key = BuildKey(p.spec.sha256(), p.plan.seed, p.plan.samples, p.engine, p.model)
    finished = store.open(key, fresh=opts.fresh)
    target = min(opts.limit or p.plan.samples, p.plan.samples)
    todo = [i for i in range(target) if i not in finished]
    prog = Progress()
    owned = engine is None and bool(todo)
    if todo:
        eng = engine or create(p.engine, p.model, p.options, p.plan.seed)
        try:
            cfg = RunConfig(window=opts.window or DEFAULT_WINDOW.get(p.engine, 256), seed=p.plan.seed,
                            base=p.spec.model.sampling, metadata=_metadata(p, eng))
            t = time.perf_counter()
            run(p.spec, eng, jobs(p, todo), cfg, store.append, prog,
                on_round=(lambda pr: on_round(pr, len(todo))) if on_round else None)
            prog.generate_s = time.perf_counter() - t
        finally:
            store.close()
            if owned:
                eng.close()
    if not todo and _unchanged(opts.out, target, len(finished)):
        return _from_manifest(opts.out, p, resumed=len(finished), wall_s=time.perf_counter() - started)
    return finalize(p, store, opts, target, len(finished), prog, time.perf_counter() - started)


def _unchanged(out: Path, target: int, done: int) -> bool:
    """Nothing new to write: the finished dataset on disk already holds exactly these samples.

    Rewriting it would change only timestamps, and a second `--push` would then see a different build."""
    try:
        summary = json.loads((out / "molspec.json").read_text())["summary"]
    except (OSError, ValueError, KeyError):
        return False
    return bool(summary.get("target") == target and summary.get("done") == done and (out / "data").is_dir())


def _from_manifest(out: Path, p: Prepared, resumed: int, wall_s: float) -> BuildResult:
    m = json.loads((out / "molspec.json").read_text())
    s = m["summary"]
    return BuildResult(out=out, planned=p.plan.samples, target=s["target"], resumed=resumed, done=s["done"],
                       failed=s["failed"], kept=s["kept"], steps=0, tokens=0, wall_s=wall_s,
                       accuracy=s["accuracy"], errors=[f["error"] for f in m.get("failures", [])][:20],
                       files=m.get("files", {}))


def _metadata(p: Prepared, engine: Engine) -> dict[str, Any]:
    info = p.git
    m = p.spec.model
    return {"engine": p.engine, "model": p.model, "engine_info": engine.describe(),
            "sampling": m.sampling.model_dump(),
            "per_bond": {b.name: b.sampling.model_dump(exclude_none=True) for b in p.spec.bonds.values()
                         if b.sampling.model_dump(exclude_none=True)},
            "spec_sha256": p.spec.sha256(), "spec_git_commit": info.commit, "spec_git_dirty": info.dirty,
            "molspec_version": __version__, "seed": p.plan.seed}


def finalize(p: Prepared, store: Store, opts: BuildOptions, target: int, resumed: int, prog: Progress,
             wall_s: float) -> BuildResult:
    """Write the dataset from the journal, the manifest and the spec files."""
    succeeded, failures = store.scan()
    done = {i: r for i, r in succeeded.items() if i < target}
    failed = {i: r for i, r in failures.items() if i < target}
    rows = [done[i] for i in sorted(done)]
    kept = [r for r in rows if p.spec.answer.keep == "all" or r.get("correct") is not False]
    by_split: dict[str, list[dict[str, Any]]] = {s.spec.name: [] for s in p.plan.splits}
    for r in kept:
        by_split[r["split"]].append(r)
    files = store.write_dataset(by_split, p.spec.output.shard_rows)
    spec_files, main_file = _copy_spec(p.spec, opts.out)
    graded = [r["correct"] for r in rows if r.get("correct") is not None]
    accuracy = sum(graded) / len(graded) if graded else None
    result = BuildResult(out=opts.out, planned=p.plan.samples, target=target, resumed=resumed, done=len(rows),
                         failed=len(failed), kept=len(kept), steps=prog.steps, tokens=prog.tokens,
                         wall_s=wall_s, accuracy=accuracy, errors=[f["error"] for f in failed.values()][:20],
                         files=files, generate_s=prog.generate_s)
    write_json_atomic(opts.out / "molspec.json", _manifest(p, opts, result, rows, failed, spec_files, main_file))
    from molspec.publish.card import write_card  # the dataset card and structure.png, from the manifest

    write_card(opts.out)
    return result


def _copy_spec(spec: Spec, out: Path) -> tuple[list[str], str]:
    """Copy the spec and its imports under out/spec/, keeping their relative layout; return the files and
    the main spec's copy."""
    main = Path(spec.path).resolve()
    base = main.parent
    dest_root = out / "spec"
    shutil.rmtree(dest_root, ignore_errors=True)
    copied = []
    for shown, text in spec.files.items():
        path = Path(shown).resolve()
        try:
            rel = path.relative_to(base)
        except ValueError:
            rel = Path("_imports") / path.name
        dest = dest_root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text, encoding="utf-8")
        copied.append(str(dest.relative_to(out)))
    return sorted(copied), str((dest_root / main.name).relative_to(out))


def _manifest(p: Prepared, opts: BuildOptions, res: BuildResult, rows: list[dict[str, Any]],
              failed: dict[int, dict[str, Any]], spec_files: list[str], main_file: str) -> dict[str, Any]:
    from molspec.runtime.realised import realised_stats

    spec = p.spec
    assert spec.dataset is not None
    meta = rows[0]["metadata"] if rows else None
    stats = plan_stats(p.plan)
    info = p.git
    return {
        "molspec_version": __version__,
        "spec": {"path": spec.path, "sha256": spec.sha256(), "git_commit": info.commit, "git_dirty": info.dirty,
                 "files": spec_files, "main": main_file},
        "dataset": {"name": spec.dataset.name, "license": spec.dataset.license, "seed": p.plan.seed,
                    "description": spec.dataset.description, "language": list(spec.dataset.language)},
        "engine": {"engine": p.engine, "model": p.model, "options": p.options},
        "metadata": meta,
        "sampling": {**spec.model.sampling.model_dump(), "per_bond": {
            b.name: b.sampling.model_dump(exclude_none=True) for b in spec.bonds.values()}},
        "answer": {"verify": spec.answer.verify, "keep": spec.answer.keep},
        "output": {"hub": spec.output.hub, "private": spec.output.private},
        "splits": {s.spec.name: {"samples": s.spec.samples, "graphs": list(s.spec.graphs),
                                 "done": sum(r["split"] == s.spec.name for r in rows),
                                 "failed": sum(f["split"] == s.spec.name for f in failed.values())}
                   for s in p.plan.splits},
        "graphs": {c.name: {"bonds": list(c.bonds), "start": c.start.tolist(), "transitions": c.trans.tolist(),
                            "end": c.end.tolist(), "steps": [c.min_steps, c.max_steps]} for c in p.plan.chains},
        "planned": stats.to_json(),
        "realised": realised_stats(rows, p.plan.bonds),
        "failures": [{"sample_index": i, "error": f["error"]} for i, f in sorted(failed.items())][:1000],
        "summary": {"planned": res.planned, "target": res.target, "done": res.done, "failed": res.failed,
                    "kept": res.kept, "accuracy": res.accuracy},
        "files": res.files,
        "command": opts.command,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_s": round(res.wall_s, 3),
    }
