"""The stages composed: spec → BuildPlan → build → card (→ push). The CLI and the Python API both call these.

    Document ──build_plan──▶ BuildPlan ──runtime.build──▶ BuildResult + molspec.json ──write_card──▶ README.md
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from molspec.api import Document, dataset_questions
from molspec.engines import Engine
from molspec.plan.compile import compile_plan
from molspec.provenance import git_info
from molspec.runtime.build import BuildOptions, BuildPlan, BuildResult
from molspec.runtime.scheduler import Progress
from molspec.sources import Question


def build_plan(doc: Document) -> BuildPlan:
    """Compile a checked spec into what a build runs: the plan, the questions it draws, their hash, git info.

    Raises:
        MolspecError: the spec has errors, or a source cannot be read.
    """
    spec = doc.raise_for_errors()
    questions = dataset_questions(spec)
    plan = compile_plan(spec, {k: len(v) for k, v in questions.items()})
    return BuildPlan(spec, plan, questions, data_sha256(questions), git_info([Path(f) for f in spec.files]))


def data_sha256(questions: dict[str, list[Question]]) -> str:
    """A hash of exactly the questions a plan draws from (ids, text, gold; by source name)."""
    h = hashlib.sha256()
    for name in sorted(questions):
        h.update(f"source {len(name)}:{name} {len(questions[name])}\n".encode())
        for q in questions[name]:
            for part in (q.id, q.question, "\0" if q.gold is None else q.gold):
                b = part.encode("utf-8", errors="surrogatepass")
                h.update(len(b).to_bytes(8, "little") + b)
    return h.hexdigest()


def build(doc: Document, opts: BuildOptions, engine: Engine | None = None,
          on_round: Callable[[Progress, int], None] | None = None) -> BuildResult:
    """Compile, build (or resume) and write the card; returns the build's summary."""
    from molspec.runtime.build import build as run_build

    return run_build(build_plan(doc), opts, engine=engine, on_round=on_round, on_done=write_card_of)


def build_ray(doc: Document, opts: BuildOptions, **kwargs: object) -> BuildResult:
    """As `build`, with the engine replicas on a Ray cluster (see runtime.ray_executor.build_ray)."""
    from molspec.runtime.ray_executor import build_ray as run_ray

    return run_ray(build_plan(doc), opts, on_done=write_card_of, **kwargs)  # type: ignore[arg-type]


def write_card_of(out: Path) -> None:
    """Render the dataset card and its picture (atomically; unchanged bytes are not rewritten).

    Runs at the end of every build, under its lock, also one with nothing left to do: that repairs a card
    lost to an interrupt."""
    from molspec.publish.card import write_card

    write_card(out)
