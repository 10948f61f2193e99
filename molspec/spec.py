"""The checked spec: what a .mol program means, with names resolved and defaults filled in.

`molspec.check.lower` builds it from the syntax trees of a file and its imports; `molspec.plan`
compiles it; the runtime executes it. Spans stay attached (outside equality) so that later stages can
still point at the line that caused a problem.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, get_args

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
# The CPU labelers a spec may pick for the fidelity gate: `molspec.structure.label.LABELERS` without "llm"
# (which needs an engine). Written out so that checking a spec never imports the labelers; a test keeps
# the two lists equal.
FidelityLabeler = Literal["learned-causal", "learned", "learned-blind", "learned-lm-causal", "cue"]
FIDELITY_LABELERS: tuple[str, ...] = get_args(FidelityLabeler)
# The defaults a spec gets when it leaves a value out live on the fields below (the check schemas, the
# help texts and docs/language.md read them from there); these two are shared by several models.
DEFAULT_SAMPLES = 100


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    span: Span | None = Field(default=None, exclude=True, repr=False)


class Sampling(Model):
    """Decoding settings; per-bond overrides leave unset fields as None."""

    temperature: float | None = Field(default=None, ge=0, le=5, description="sampling temperature; 0 is greedy")
    top_p: float | None = Field(default=None, gt=0, le=1, description="nucleus sampling: the probability mass kept")
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000, description="the most tokens one step may write")

    def over(self, base: Sampling) -> Sampling:
        """These settings, falling back to `base` where unset."""
        return Sampling(temperature=base.temperature if self.temperature is None else self.temperature,
                        top_p=base.top_p if self.top_p is None else self.top_p,
                        max_tokens=base.max_tokens if self.max_tokens is None else self.max_tokens)


DEFAULT_SAMPLING = Sampling(temperature=0.7, top_p=1.0, max_tokens=384)  # a model's, where it sets none


class BondSpec(Model):
    name: str
    kind: BondKind
    title: str = Field(description="a short title; default: the name, capitalised")
    instruct: str = Field(description="the instruction for this behaviour")
    template: str | None = Field(default=None, description="a step template for this bond only")
    lead: str | None = Field(default=None, description="the words each step of this bond starts with (a Jinja "
                             "template); the model continues them and they are part of the step")
    sampling: Sampling = Sampling()
    template_span: Span | None = Field(default=None, exclude=True, repr=False)
    lead_span: Span | None = Field(default=None, exclude=True, repr=False)


class EdgeSpec(Model):
    target: str
    weight: float


class RowSpec(Model):
    source: str  # a bond name or "start"
    edges: tuple[EdgeSpec, ...]
    complete: bool = Field(default=True, exclude=True)  # False when some edge was dropped as invalid


class GraphSpec(Model):
    """A transition graph as written. `graphmath.chain` turns it into probability arrays.

    Attributes:
        mode: "probability" (rows are probabilities) or "energy" (rows are energies E, turned into
            probabilities p ∝ exp(-E / temperature)).
        normalize: divide each row by its sum instead of requiring it to sum to 1.
        min_steps, max_steps: length bounds of a walk (bond steps, answer not counted).
    """

    name: str
    mode: Literal["probability", "energy"] = "probability"
    temperature: float = Field(default=1.0, gt=0, description="energy graphs: p ∝ exp(-E / temperature)")
    normalize: bool = Field(default=False, description="divide each row by its sum")
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
    config: str | None = Field(default=None, description="the Hub dataset's configuration")
    split: str = Field(default="train", description="the Hub dataset's split")
    question: str = Field(default="question", description="the column holding the question")
    gold: str | None = Field(default="gold", description="the column holding the reference answer")
    id: str | None = Field(default=None, description="the column holding a stable question id")
    limit: int | None = Field(default=None, ge=1, description="use the first N questions only")

    @property
    def location(self) -> str:
        """The absolute file path (symbolic links resolved where they can be), or the Hub id."""
        if self.format == "hub":
            return str(self.repo)
        path = Path(self.base) / str(self.path)
        try:
            return str(path.resolve())
        except (RuntimeError, OSError):  # a symlink loop (RuntimeError before Python 3.13), a vanished folder
            return str(path.absolute())


class ModelSpec(Model):
    name: str
    engine: str = Field(default=DEFAULT_ENGINE, description="one of molspec.engines.registry.ENGINE_NAMES")
    model: str = Field(description="a hub id, a local path or builtin:...")
    sampling: Sampling = DEFAULT_SAMPLING
    options: dict[str, Any] = Field(default_factory=dict)
    chat_template: str | None = Field(default=None, description="a Jinja chat template instead of the model's own")


class SplitSpec(Model):
    name: str
    samples: int = Field(default=DEFAULT_SAMPLES, ge=1, le=1_000_000_000, description="how many rows to build")
    graphs: tuple[str, ...] = Field(description="the graphs (isomers) to sample walks from")
    source: str = Field(description="the source of the questions")
    allow_mixing: bool = Field(default=False, description="allow one split to draw from several graphs")


class DatasetSpec(Model):
    name: str
    seed: int = Field(default=0, ge=0, le=2**63 - 1, description="the seed of every random choice of the plan")
    license: str | None = Field(default=None, description="the dataset card's license")
    description: str | None = Field(default=None, description="the dataset card's description")
    language: tuple[str, ...] = Field(default=("en",), description="the dataset card's languages")
    model: str = Field(description="the model that writes the steps")
    splits: tuple[SplitSpec, ...]

    @property
    def samples(self) -> int:
        return sum(s.samples for s in self.splits)


class AnswerSpec(Model):
    instruct: str = Field(default="Now state the final answer. Put it in \\boxed{}.",
                          description="the instruction of the answer turn")
    verify: Literal["math", "exact", "none"] = Field(default="math", description="how the answer is compared with gold")
    keep: Literal["all", "correct"] = Field(default="all", description="keep every row, or verified ones only")
    sampling: Sampling = Sampling()


class OutputSpec(Model):
    format: Literal["messages"] = Field(default="messages", description="the row layout")
    think: bool = Field(default=True, description="wrap the steps in <think> ... </think>")
    hub: str | None = Field(default=None, description="the Hub dataset id to push to")
    private: bool = Field(default=False, description="push as a private dataset")
    shard_rows: int = Field(default=10_000, ge=1, description="rows per parquet shard")


class FidelitySpec(Model):
    """The fidelity gate (docs/fidelity.md): label each generated step and ask again when it misses its bond.

    Attributes:
        gate: re-ask steps that miss their bond or fail hygiene (cut, echo, duplicate, empty, restart); off keeps the
            first attempt (still trimmed, labelled and flagged).
        labeler: the CPU labeler that labels each step (see `molspec.structure.label.get_labeler`); the default,
            learned-causal, reads only the question and the steps before a step, as the gate can (the steps after
            it do not exist yet).
        retries: extra attempts per step at most.
        retry_temperature: the least temperature a retry samples at. A new seed at a low temperature gives a
            small model the same step again; a hotter retry is a different candidate for the gate to choose from.
            A greedy step (temperature 0) is retried greedily: its restated prompt makes the retry differ.
        min_fit: a step the labeler reads as its bond is still asked again when the labeler gives the bond's kind
            less than this probability (a step labeler's reading, as `learned-causal` gives; 0: the label alone
            decides). A label is the likeliest of four; a step it is unsure of is often one people read otherwise.
    """

    gate: bool = Field(default=True, description="re-ask steps that miss their bond (the CLI's --gate/--no-gate wins)")
    labeler: FidelityLabeler = Field(
        default="learned-causal", description="the CPU labeler of each step (learned-causal: reads what precedes it)")
    retries: int = Field(default=2, ge=0, le=5, description="extra attempts per step at most")
    retry_temperature: float = Field(default=0.8, ge=0, le=2,
                                     description="the least temperature of a retry (first attempts keep theirs)")
    min_fit: float = Field(default=0.0, ge=0, le=1,
                           description="the least probability of the bond's kind that passes a step (0: the label)")


class Templates(Model):
    """Jinja templates (sandboxed, strict). `step` renders the user turn of every bond step,
    `answer` the final answer turn, `system` an optional system message, `reply` an optional start of the
    model's reply to every bond step (the reasoning so far, which the model then continues)."""

    step: str
    answer: str
    system: str | None = None
    reply: str | None = None
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
    # Variants (docs/language.md, "variant"): the base spec holds each variant as a whole spec, in spec order;
    # a variant's spec names itself and lists what it changes. Neither is part of `sha256()`: a variant's
    # build identity is its own content, and `group_sha256()` names the whole family.
    variants: dict[str, Spec] = Field(default_factory=dict, exclude=True, repr=False)
    variant: str | None = Field(default=None, exclude=True, repr=False)
    changes: tuple[str, ...] = Field(default=(), exclude=True, repr=False)
    variant_title: str | None = Field(default=None, exclude=True, repr=False)  # `variant NAME "title" { }`
    variant_span: Span | None = Field(default=None, exclude=True, repr=False)

    @property
    def model(self) -> ModelSpec:
        assert self.dataset is not None
        return self.models[self.dataset.model]

    def sha256(self) -> str:
        """Content hash of the meaning of the spec (formatting and comments do not change it)."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def group_sha256(self) -> str:
        """Hash of the base spec and every variant (name and content): what a variant build publishes as."""
        parts = [self.sha256()] + [f"{name}={v.sha256()}" for name, v in self.variants.items()]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()
