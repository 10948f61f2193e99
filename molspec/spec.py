"""The checked spec: what a .mol program means, with names resolved and defaults filled in.

`molspec.check.lower` builds it from the syntax trees of a file and its imports; `molspec.plan`
compiles it; the runtime executes it. Spans stay attached (outside equality) so that later stages can
still point at the line that caused a problem.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from molspec.diagnostics import Span
from molspec.engines.registry import DEFAULT_ENGINE

BondKind = Literal["covalent", "hydrogen", "vdw", "plain"]
BOND_KINDS: dict[str, str] = {
    "covalent": "deep reasoning: A therefore B therefore C",
    "hydrogen": "self-reflection: folds back to check an earlier step",
    "vdw": "self-exploration: tries a new angle",
    "plain": "normal operation: a routine step",
}
RESERVED = ("start", "end", "answer")


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    span: Span | None = Field(default=None, exclude=True, repr=False)


class Sampling(Model):
    """Decoding settings; per-bond overrides leave unset fields as None."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None

    def over(self, base: Sampling) -> Sampling:
        """These settings, falling back to `base` where unset."""
        return Sampling(temperature=base.temperature if self.temperature is None else self.temperature,
                        top_p=base.top_p if self.top_p is None else self.top_p,
                        max_tokens=base.max_tokens if self.max_tokens is None else self.max_tokens)


class BondSpec(Model):
    name: str
    kind: BondKind
    title: str
    instruct: str
    template: str | None = None
    sampling: Sampling = Sampling()
    template_span: Span | None = Field(default=None, exclude=True, repr=False)


class EdgeSpec(Model):
    target: str
    weight: float


class RowSpec(Model):
    source: str  # a bond name or "start"
    edges: tuple[EdgeSpec, ...]
    complete: bool = Field(default=True, exclude=True)  # False when some edge was dropped as invalid


class GraphSpec(Model):
    """A transition graph as written. `plan.matrix` turns it into probability arrays.

    Attributes:
        mode: "probability" (rows are probabilities) or "energy" (rows are energies E, turned into
            probabilities p ∝ exp(-E / temperature)).
        normalize: divide each row by its sum instead of requiring it to sum to 1.
        min_steps, max_steps: length bounds of a walk (bond steps, answer not counted).
    """

    name: str
    mode: Literal["probability", "energy"] = "probability"
    temperature: float = 1.0
    normalize: bool = False
    rows: tuple[RowSpec, ...]
    min_steps: int = 1
    max_steps: int = 64
    has_steps: bool = False
    steps_span: Span | None = Field(default=None, exclude=True, repr=False)  # the `steps = ..` value
    valid: bool = Field(default=True, exclude=True, repr=False)  # False: its header is wrong (reported)


class SourceSpec(Model):
    """Where questions come from. `path` is absolute for files; `repo` is a Hub dataset id."""

    name: str
    format: Literal["jsonl", "parquet", "csv", "hub"]
    path: str | None = None  # as written, relative to the spec file that declares it
    base: str = Field(default=".", exclude=True, repr=False)  # that file's folder (not hashed)
    repo: str | None = None
    config: str | None = None
    split: str = "train"
    question: str = "question"
    gold: str | None = "gold"
    id: str | None = None
    limit: int | None = None

    @property
    def location(self) -> str:
        """The absolute file path, or the Hub id."""
        if self.format == "hub":
            return str(self.repo)
        return str((Path(self.base) / str(self.path)).resolve())


class ModelSpec(Model):
    name: str
    engine: str = DEFAULT_ENGINE
    model: str
    sampling: Sampling = Sampling(temperature=0.7, top_p=1.0, max_tokens=384)
    options: dict[str, Any] = Field(default_factory=dict)
    chat_template: str | None = None


class SplitSpec(Model):
    name: str
    samples: int
    graphs: tuple[str, ...]
    source: str
    allow_mixing: bool = False


class DatasetSpec(Model):
    name: str
    seed: int = 0
    license: str | None = None
    description: str | None = None
    language: tuple[str, ...] = ("en",)
    model: str
    splits: tuple[SplitSpec, ...]

    @property
    def samples(self) -> int:
        return sum(s.samples for s in self.splits)


class AnswerSpec(Model):
    instruct: str = "Now state the final answer. Put it in \\boxed{}."
    verify: Literal["math", "exact", "none"] = "math"
    keep: Literal["all", "correct"] = "all"
    sampling: Sampling = Sampling()


class OutputSpec(Model):
    format: Literal["messages"] = "messages"
    think: bool = True
    hub: str | None = None
    private: bool = False
    shard_rows: int = 10_000


class FidelitySpec(Model):
    """The fidelity gate (docs/fidelity.md): label each generated step and ask again when it misses its bond.

    Attributes:
        gate: re-ask steps that miss their bond or fail hygiene (cut, echo, duplicate, empty); off keeps the
            first attempt (still trimmed, labelled and flagged).
        labeler: the CPU labeler that labels each step (see `molspec.structure.label.get_labeler`).
        retries: extra attempts per step at most.
    """

    gate: bool = True
    labeler: str = "learned"
    retries: int = 2


class Templates(Model):
    """Jinja templates (sandboxed, strict). `step` renders the user turn of every bond step,
    `answer` the final answer turn, `system` an optional system message."""

    step: str
    answer: str
    system: str | None = None
    spans: dict[str, Span] = Field(default_factory=dict, exclude=True, repr=False)


class Spec(Model):
    """A whole, checked .mol program (the file plus its imports)."""

    version: int = 1
    path: str = Field(exclude=True)
    dataset: DatasetSpec | None
    sources: dict[str, SourceSpec]
    models: dict[str, ModelSpec]
    bonds: dict[str, BondSpec]
    graphs: dict[str, GraphSpec]
    templates: Templates
    answer: AnswerSpec = AnswerSpec()
    output: OutputSpec = OutputSpec()
    fidelity: FidelitySpec = FidelitySpec()
    files: dict[str, str] = Field(default_factory=dict, exclude=True, repr=False)

    @property
    def model(self) -> ModelSpec:
        assert self.dataset is not None
        return self.models[self.dataset.model]

    def sha256(self) -> str:
        """Content hash of the meaning of the spec (formatting and comments do not change it)."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()
