"""The Manifest (molspec.json) of a finished build: spec, data, engine, plan, what was realised, summary."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from molspec.plan.stats import plan_stats
from molspec.records import (
    AnswerInfo,
    BuildMetadata,
    DataInfo,
    DatasetInfo,
    EngineInfo,
    Failure,
    FailureInfo,
    GraphInfo,
    Manifest,
    ManifestSampling,
    OutputInfo,
    PlannedInfo,
    Row,
    SamplingInfo,
    SpecInfo,
    SplitInfo,
    Summary,
    VariantInfo,
)
from molspec.runtime.realised import realised_stats
from molspec.runtime.spec_copy import SpecCopy
from molspec.version import __version__

if TYPE_CHECKING:
    from molspec.runtime.build import BuildResult, Prepared

MAX_FAILURES = 1000  # failures listed in the manifest (the summary counts all)


def manifest(p: Prepared, command: str, res: BuildResult, rows: list[Row], failed: dict[int, Failure],
             copy: SpecCopy, variant: VariantInfo | None = None) -> Manifest:
    spec, plan = p.spec, p.plan
    assert spec.dataset is not None
    meta = BuildMetadata.model_validate_json(rows[0].metadata) if rows else None
    return Manifest(
        molspec_version=__version__,
        variant=variant,
        spec=SpecInfo(path=spec.path, sha256=spec.sha256(), git_commit=p.bp.git.commit, git_dirty=p.bp.git.dirty,
                      files=copy.files, main=copy.main, self_contained=copy.self_contained, note=copy.note),
        dataset=DatasetInfo(name=spec.dataset.name, license=spec.dataset.license, seed=plan.seed,
                            description=spec.dataset.description, language=list(spec.dataset.language)),
        engine=EngineInfo(engine=p.engine, model=p.model, options=p.options),
        data=DataInfo(sha256=p.bp.data_sha256, sources={k: len(v) for k, v in p.bp.questions.items()}),
        metadata=meta,
        sampling=ManifestSampling(**spec.model.sampling.model_dump(), per_bond={
            b.name: SamplingInfo(**b.sampling.model_dump()) for b in spec.bonds.values()}),
        answer=AnswerInfo(verify=spec.answer.verify, keep=spec.answer.keep),
        output=OutputInfo(hub=spec.output.hub, private=spec.output.private),
        splits={s.spec.name: SplitInfo(samples=s.spec.samples, graphs=list(s.spec.graphs),
                                       done=sum(r.split == s.spec.name for r in rows),
                                       failed=sum(f.split == s.spec.name for f in failed.values()))
                for s in plan.splits},
        bonds={name: b.kind for name, b in spec.bonds.items()},
        graphs={c.name: GraphInfo(bonds=list(c.bonds), start=c.start.tolist(), transitions=c.trans.tolist(),
                                  end=c.end.tolist(), steps=(c.min_steps, c.max_steps)) for c in plan.chains},
        planned=PlannedInfo.model_validate(plan_stats(plan).to_json()),
        realised=realised_stats(rows, plan.bonds),
        fidelity=res.fidelity,
        cache=res.cache,
        failures=[FailureInfo(sample_index=i, error=f.error) for i, f in sorted(failed.items())][:MAX_FAILURES],
        summary=Summary(planned=res.planned, target=res.target, done=res.done, failed=res.failed, kept=res.kept,
                        accuracy=res.accuracy, rejected=res.rejected),
        files=res.files,
        command=command,
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        wall_s=round(res.wall_s, 3),
    )
