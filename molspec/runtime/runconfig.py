"""What one run of the scheduler is given and what it reports: the samples to generate (`Job`), how to run them
(`RunConfig`: batch window, sampling, seeds, row metadata, the fidelity gate and its labeler), and the counters
the CLI shows while it runs (`Progress`)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from molspec.records import BuildMetadata
from molspec.sources import Question
from molspec.spec import DEFAULT_SAMPLING, FidelitySpec, Sampling
from molspec.structure.label import Labeler, StepLabeler, step_labeler


@dataclass(frozen=True, slots=True)
class Job:
    """One sample to generate: its place in the plan and its question."""

    index: int
    split: str
    graph: str
    bonds: tuple[str, ...]
    question: Question


@dataclass
class Progress:
    """Counters the CLI shows while a build runs."""

    done: int = 0
    failed: int = 0
    steps: int = 0
    tokens: int = 0
    requests: int = 0
    retries: int = 0  # steps asked again by the fidelity gate
    started: float = field(default_factory=time.perf_counter)
    generate_s: float = 0.0


@dataclass
class RunConfig:
    """How to run: batch window, sampling, seeds, and the row metadata.

    Attributes:
        window: samples in flight (the engine's batch size).
        seed: the plan seed; per-request seeds derive from (seed, sample, step).
        base: the model's sampling settings.
        metadata: the build metadata stored (as JSON) in every row.
        gate: the fidelity gate's settings; labeler: labels each step (None: steps are not labelled).
    """

    window: int
    seed: int
    base: Sampling
    metadata: BuildMetadata
    gate: FidelitySpec = field(default_factory=FidelitySpec)
    labeler: Labeler | None = None
    metadata_json: str = ""
    stepwise: bool = True  # a labeler that can keep each walk reads one new step at a time (False: re-read walks)
    _settled: dict[tuple[float | None, float | None, int | None], tuple[int, float, float]] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    _stepper: tuple[Labeler | None, StepLabeler | None] = field(default=(None, None), init=False, repr=False,
                                                               compare=False)

    def __post_init__(self) -> None:
        self.metadata_json = json.dumps(self.metadata.model_dump(mode="json"), sort_keys=True)

    @property
    def stepper(self) -> StepLabeler | None:
        """`labeler`, when it reads one new step at a time (`label.step_labeler`) and `stepwise` lets it."""
        if self.stepwise and self._stepper[0] is not self.labeler:
            self._stepper = (self.labeler, step_labeler(self.labeler))
        return self._stepper[1] if self.stepwise else None

    def sampling(self, own: Sampling) -> tuple[int, float, float]:
        """(max_tokens, temperature, top_p) of a step with settings `own`: they fall back to the model's (`base`),
        then to the one defaults table. Kept per distinct `own`: a build asks this for every request."""
        key = (own.temperature, own.top_p, own.max_tokens)
        if key not in self._settled:
            full = own.over(self.base).over(DEFAULT_SAMPLING)
            assert full.max_tokens is not None and full.temperature is not None and full.top_p is not None
            self._settled[key] = (full.max_tokens, full.temperature, full.top_p)
        return self._settled[key]
