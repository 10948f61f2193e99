"""The stages composed: spec → BuildPlan → build → card (→ push). The CLI and the Python API both call these.

    Document ──build_plan──▶ BuildPlan ──runtime.build──▶ BuildResult + molspec.json ──write_card──▶ README.md

A spec with variants builds each selected variant that way into `out/<variant>/` (runtime.variants), then
variants.json and the group card.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from molspec.api import Document, dataset_questions
from molspec.engines import Engine
from molspec.plan.compile import compile_plan
from molspec.provenance import GitInfo, git_info
from molspec.runtime.build import BuildOptions, BuildPlan, BuildResult
from molspec.runtime.runconfig import Progress
from molspec.sources import Question
from molspec.spec import Spec

if TYPE_CHECKING:
    from molspec.runtime.variants import BuildElsewhere, VariantsResult


def build_plan(doc: Document) -> BuildPlan:
    """Compile a checked spec into what a build runs: the plan, the questions it draws, their hash, git info.

    Raises:
        MolspecError: the spec has errors, or a source cannot be read.
    """
    spec = doc.raise_for_errors()
    return plan_for(spec, dataset_questions(spec), git_info([Path(f) for f in spec.files]))


def plan_for(spec: Spec, questions: dict[str, list[Question]], git: GitInfo) -> BuildPlan:
    """The BuildPlan of one spec (or one variant) over questions already read."""
    plan = compile_plan(spec, {k: len(v) for k, v in questions.items()})
    return BuildPlan(spec, plan, questions, data_sha256(questions), git)


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
    """Compile, build (or resume) and write the card; returns the build's summary.

    A spec with variants builds every variant (or those in `opts.variants`) under `opts.out` and returns a
    `VariantsResult` (see `build_variants`).

    Raises:
        MolspecError: the spec has errors, a source cannot be read, `opts.variants` names no variant of it
            (MOL809).
        StoreError: the output folder cannot be used. EngineError: the engine cannot start or dies.
    """
    from molspec.runtime.build import build as run_build

    spec = doc.raise_for_errors()
    if spec.variants or opts.variants:
        return build_variants(doc, opts, engine=engine, on_round=on_round)
    return run_build(build_plan(doc), opts, engine=engine, on_round=on_round, on_done=write_card_of)


def build_variants(doc: Document, opts: BuildOptions, engine: Engine | None = None,
                   on_round: Callable[[Progress, int], None] | None = None,
                   elsewhere: BuildElsewhere | None = None) -> VariantsResult:
    """Build the spec's variants (all, or `opts.variants`) into `opts.out/<variant>/`, then variants.json
    and the group card; they share one step cache and their engines (`elsewhere`: see
    runtime.variants.build_variants)."""
    from molspec.runtime.variants import build_variants as run_variants

    spec = doc.raise_for_errors()
    for name in opts.variants:
        doc.variant(name)  # MOL809 for a name the spec does not declare
    chosen = {n: v for n, v in spec.variants.items() if not opts.variants or n in opts.variants}  # in spec order
    questions = dataset_questions(spec)
    git = git_info([Path(f) for f in spec.files])
    plans = {name: plan_for(v, questions, git) for name, v in chosen.items()}
    return run_variants(spec, plans, opts, engine=engine, on_round=on_round, on_done=write_card_of,
                        on_group_done=write_group_card_of, elsewhere=elsewhere)


def build_ray(doc: Document, opts: BuildOptions, **kwargs: object) -> BuildResult | VariantsResult:
    """As `build`, with the engine replicas on a Ray cluster (see runtime.ray_executor.build_ray). A spec with
    variants builds them one after another, each on fresh replicas, all through the group's step cache."""
    from molspec.runtime.ray_executor import build_ray as run_ray
    from molspec.runtime.ray_executor import ray_session

    spec = doc.raise_for_errors()
    if not (spec.variants or opts.variants):
        return run_ray(build_plan(doc), opts, on_done=write_card_of, **kwargs)  # type: ignore[arg-type]

    def on_ray(bp: BuildPlan, sub: BuildOptions, cache_file: Path) -> BuildResult:
        return run_ray(bp, sub, on_done=write_card_of, cache_file=cache_file, **kwargs)  # type: ignore[arg-type]

    address = kwargs.get("address")
    with ray_session(address if isinstance(address, str) else None):  # one runtime for every variant
        return build_variants(doc, opts, elsewhere=on_ray)


def write_card_of(out: Path) -> None:
    """Render the dataset card and its picture (atomically; unchanged bytes are not rewritten).

    Runs at the end of every build, under its lock, also one with nothing left to do: that repairs a card
    lost to an interrupt."""
    from molspec.publish.card import write_card

    write_card(out)


def write_group_card_of(group: Path) -> None:
    """The variant group's card (README.md with one config per variant), where the card writer has one."""
    from molspec.publish import card

    write_group_card: Callable[[Path], None] | None = getattr(card, "write_group_card", None)
    if write_group_card is not None:
        write_group_card(group)
