"""The typed records that flow between the back-half stages: one dataset row, one journal entry, one manifest.

    scheduler ──Row / Failure──▶ store (journal) ──Row──▶ data/*.parquet ──Manifest──▶ card, hub, analyze

Every stage reads and writes these models; nothing reads a row or a manifest as a dict by string keys.
The arrow schema of the parquet files and the Hugging Face `Features` are derived from `Row` once, here.
This module imports nothing from molspec's stages.
"""

from __future__ import annotations

import hashlib
import json
import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from molspec.diagnostics import PlainError

MANIFEST = "molspec.json"
VARIANTS_MANIFEST = "variants.json"  # the top of a variant build: one build directory per variant below it


class Record(BaseModel):
    """Base of every record: unknown fields are an error (a damaged or foreign record is refused)."""

    model_config = ConfigDict(extra="forbid")


class ArrowType:
    """Annotation marker: store this field with the given arrow type instead of the default one."""

    def __init__(self, type_: pa.DataType) -> None:
        self.type = type_


Int32 = Annotated[int, ArrowType(pa.int32())]


# --------------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------------


class Step(Record):
    """One generated step of a walk."""

    bond: str = Field(description="the bond the step was asked for")
    text: str = Field(description="the generated text")
    n_tokens: Int32 = Field(description="tokens the engine generated for the kept attempt")
    finish_reason: str = Field(description="why generation stopped: stop, length")
    label: str | None = Field(default=None, description="the bond the fidelity labeler reads in the text")
    attempts: Int32 = Field(default=1, description="generations of this step (1: the first was kept)")
    retries: list[str] = Field(default_factory=list, description="why each retry happened: empty, cut, echo, "
                               "duplicate, restart, label:<bond>, unsure")
    repair: str | None = Field(default=None, description="trimmed: cut back to its last complete sentence; "
                                                         "unechoed: sentences copying the prompt removed")
    problems: list[str] = Field(default_factory=list, description="what is still wrong with the kept attempt")
    partner: int | None = Field(default=None, description="reflect steps: the earlier step (0-based) re-checked")
    lead: str | None = Field(default=None, description="the words of the bond's `lead` that open the text (the "
                                                      "spec wrote them, the model the rest)")
    fit: float | None = Field(default=None, description="the fidelity labeler's probability that the text does its "
                                                        "bond's kind (a labeler that gives one: learned-causal)")


class Message(Record):
    role: str
    content: str


class Row(Record):
    """One finished sample: a dataset row (the `metadata` column is JSON, the same for every row of a build)."""

    id: str = Field(description="`<split>-<sample index>`; stable across rebuilds of the same spec")
    split: str = Field(description="split name")
    sample_index: int = Field(description="index of the sample in the plan")
    question_id: str = Field(description="id of the seed question in its source")
    question: str = Field(description="the seed question")
    gold: str | None = Field(description="the reference answer (null when the source has none)")
    graph: str = Field(description="the graph (isomer) the walk was drawn from")
    bonds: list[str] = Field(description="the planned walk: bond names in order")
    steps: list[Step] = Field(description="one generated step per bond: {bond, text, n_tokens, finish_reason}")
    thinking: str = Field(description="the steps joined with blank lines")
    answer: str = Field(description="the final answer step")
    correct: bool | None = Field(description="the verifier's verdict against gold (null: not graded)")
    messages: list[Message] = Field(
        description="chat for SFT, {role, content}: the user question; the assistant `<think>…</think>` + answer")
    fidelity: float | None = Field(default=None, description="share of steps whose label is their planned bond")
    metadata: str = Field(description="JSON: model, engine, sampling, spec sha256 and git commit, molspec version, "
                                      "seed")
    answer_tokens: int = Field(default=0, exclude=True, description="journal only: tokens of the answer step")
    answer_finish_reason: str = Field(default="", exclude=True, description="journal only")


class Failure(Record):
    """A sample that failed (engine error, template error): journalled, never in the dataset, retried on resume."""

    split: str
    sample_index: int
    question_id: str
    graph: str
    bonds: list[str]
    error: str


# --------------------------------------------------------------------------------------------------
# The arrow schema and HF features, derived from Row
# --------------------------------------------------------------------------------------------------

_SCALARS: dict[Any, pa.DataType] = {str: pa.string(), int: pa.int64(), bool: pa.bool_(), float: pa.float64()}


def _arrow(annotation: Any) -> pa.DataType:
    if get_origin(annotation) is Annotated:
        base, *extra = get_args(annotation)
        marker = next((e for e in extra if isinstance(e, ArrowType)), None)
        return marker.type if marker else _arrow(base)
    if get_origin(annotation) in (Union, types.UnionType):
        (inner,) = [a for a in get_args(annotation) if a is not type(None)]
        return _arrow(inner)
    if get_origin(annotation) is list:
        return pa.list_(_arrow(get_args(annotation)[0]))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return pa.struct(_fields(annotation))
    return _SCALARS[annotation]


def _fields(model: type[BaseModel]) -> list[pa.Field]:
    return [pa.field(name, _arrow(f.metadata and Annotated[(f.annotation, *f.metadata)] or f.annotation))
            for name, f in model.model_fields.items() if not f.exclude]


def arrow_schema() -> pa.Schema:
    """The parquet schema of a dataset row."""
    return pa.schema(_fields(Row))


SCHEMA = arrow_schema()


def features() -> Any:
    """The Hugging Face `datasets.Features` of a dataset row (imported lazily: datasets is slow to import)."""
    from datasets import Features

    return Features.from_arrow_schema(SCHEMA)


def column_docs() -> dict[str, str]:
    """Column name -> description, for the dataset card."""
    return {name: f.description or "" for name, f in Row.model_fields.items() if not f.exclude}


def row_dicts(rows: list[Row]) -> list[dict[str, Any]]:
    """Rows as the plain dicts pyarrow writes (journal-only fields dropped)."""
    return [r.model_dump() for r in rows]


def rows_digest(rows: list[Row]) -> str:
    """A short content hash of rows (names a parquet shard by its content)."""
    text = json.dumps(row_dicts(rows), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


# --------------------------------------------------------------------------------------------------
# Build metadata (the `metadata` column) and the manifest (molspec.json)
# --------------------------------------------------------------------------------------------------


class SamplingInfo(Record):
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None


class BuildMetadata(Record):
    """What made every row of a build; stored as JSON in each row's `metadata` column."""

    engine: str
    model: str
    engine_info: dict[str, Any]
    sampling: SamplingInfo
    per_bond: dict[str, SamplingInfo]
    spec_sha256: str
    spec_git_commit: str | None
    spec_git_dirty: bool
    data_sha256: str
    molspec_version: str
    seed: int


class SpecInfo(Record):
    path: str
    sha256: str
    git_commit: str | None
    git_dirty: bool
    files: list[str] = Field(description="the spec, its imports and its local sources, copied under spec/")
    main: str = Field(description="the copied main spec, relative to the build directory")
    self_contained: bool = True
    note: str | None = None


class DatasetInfo(Record):
    name: str
    license: str | None
    seed: int
    description: str | None
    language: list[str]


class EngineInfo(Record):
    engine: str
    model: str
    options: dict[str, Any]


class DataInfo(Record):
    """The seed questions the plan used: their hash is part of the build's identity."""

    sha256: str
    sources: dict[str, int] = Field(description="source name -> questions read")


class ManifestSampling(SamplingInfo):
    per_bond: dict[str, SamplingInfo]


class AnswerInfo(Record):
    verify: str
    keep: str


class OutputInfo(Record):
    hub: str | None
    private: bool


class SplitInfo(Record):
    samples: int
    graphs: list[str]
    done: int
    failed: int


class GraphInfo(Record):
    bonds: list[str]
    start: list[float]
    transitions: list[list[float]]
    end: list[float]
    steps: tuple[int, int]


class Transitions(Record):
    bonds: list[str]
    matrix: list[list[float]]


class PlannedInfo(Record):
    """The plan's statistics (what `molspec plan` prints)."""

    samples: int
    seed: int
    steps: dict[str, float]
    bond_shares: dict[str, float]
    stationary: dict[str, dict[str, float]]
    expected_steps: dict[str, float]
    transitions: Transitions
    engine_calls: int
    max_tokens: int
    splits: dict[str, dict[str, Any]]


class Distribution(Record):
    mean: float
    p50: int
    p95: int
    max: int
    total: int


class TokenDistribution(Distribution):
    cut_by_max_tokens: int


class RealisedInfo(Record):
    """The structure the rows actually have (planned walks, token use)."""

    samples: int
    bond_shares: dict[str, float]
    transitions: Transitions
    steps: Distribution
    tokens: dict[str, TokenDistribution]
    accuracy: float | None
    graded: int


class FidelityInfo(Record):
    """How well the text of the steps does what their bonds ask (labels from the build's fidelity labeler)."""

    labeler: str | None
    gate: bool
    overall: float | None
    per_bond: dict[str, float]
    labelled: int
    retries: int = Field(description="steps asked again")
    reasons: dict[str, int] = Field(description="why steps were asked again: empty, cut, echo, duplicate, restart, "
                                             "label, unsure")
    problems: dict[str, int] = Field(description="kept steps that still have a problem, by problem")
    repaired: int = Field(description="kept steps trimmed back to their last complete sentence")


class FailureInfo(Record):
    sample_index: int
    error: str


class Summary(Record):
    planned: int
    target: int
    done: int
    failed: int
    kept: int
    accuracy: float | None
    rejected: int = Field(default=0, description="damaged journal records set aside and redone")


class VariantInfo(Record):
    """Which variant of a spec a build is (absent for a spec without variants)."""

    name: str = Field(description="the variant's name: the dataset config it becomes")
    changes: list[str] = Field(description="what it changes in the base spec, e.g. 'graph quick', 'drop reflect'")
    group_sha256: str = Field(description="the whole spec's hash (base and every variant): names the group")


class Manifest(Record):
    """molspec.json: everything about a finished build that the card, push and analyze need."""

    molspec_version: str
    variant: VariantInfo | None = None
    spec: SpecInfo
    dataset: DatasetInfo
    engine: EngineInfo
    data: DataInfo
    metadata: BuildMetadata | None
    sampling: ManifestSampling
    answer: AnswerInfo
    output: OutputInfo
    splits: dict[str, SplitInfo]
    bonds: dict[str, str] = Field(default_factory=dict, description="bond name -> kind (covalent, hydrogen, ...)")
    graphs: dict[str, GraphInfo]
    planned: PlannedInfo
    realised: RealisedInfo
    fidelity: FidelityInfo | None = None
    cache: CacheInfo | None = Field(default=None, description="this run's step cache use (differs run to run)")
    failures: list[FailureInfo]
    summary: Summary
    files: dict[str, list[str]]
    command: str
    created: str
    wall_s: float


class ManifestError(PlainError):
    """A build directory's molspec.json is missing or unreadable (`message` says which and what to do)."""

    code = "MOL701"


def read_manifest(build_dir: Path) -> Manifest:
    """A build's molspec.json.

    Raises:
        ManifestError: it is missing, unreadable or not a manifest of this molspec version's shape.
    """
    path = Path(build_dir) / MANIFEST
    if not path.is_file() and (Path(build_dir) / VARIANTS_MANIFEST).is_file():
        names = sorted(p.parent.name for p in Path(build_dir).glob(f"*/{MANIFEST}"))
        one = Path(build_dir) / (names[0] if names else "NAME")
        raise ManifestError(f"{build_dir} is a variant build: each variant is a build directory inside it "
                            f"({', '.join(names) or 'none finished yet'}). Give one, e.g. {one}; "
                            f"`molspec compare {build_dir}` compares them all.")
    if not path.is_file():
        raise ManifestError(f"{build_dir} is not a molspec build directory: {MANIFEST} is missing. "
                            f"Build it first with `molspec build SPEC --out {build_dir}`.")
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except (OSError, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ManifestError(f"cannot read {path}: {first}. Rebuild the dataset to regenerate it.") from None


# --------------------------------------------------------------------------------------------------
# The step cache's counts (a build's and a variant group's; variants.json's records: variant_records.py)
# --------------------------------------------------------------------------------------------------


class CacheInfo(Record):
    """The content-addressed step cache of a build (runtime/cache.py)."""

    hits: int = Field(description="requests answered from the cache in this run")
    misses: int = Field(description="requests the engine generated in this run")
    entries: int = Field(description="completions stored in the cache")
