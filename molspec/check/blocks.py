"""The schema of every `{ ... }` block, derived from the spec models (`molspec.spec`).

Each key names the model field its value goes to; kinds, bounds, choices, defaults and help texts
live on the fields. Only what the language adds is written here: which fields a block exposes, how a
key is spelled where it differs from the field, and keys that name other items (`ref`, `refs`).
"""

from __future__ import annotations

from molspec.check import schema as S
from molspec.spec import (
    AnswerSpec,
    BondSpec,
    DatasetSpec,
    FidelitySpec,
    GraphSpec,
    ModelSpec,
    OutputSpec,
    Sampling,
    SourceSpec,
    SplitSpec,
)

SOURCE_FORMATS = ("jsonl", "parquet", "csv", "hub")
TEMPLATE_NAMES = ("step", "answer", "system", "reply")

_SAMPLING_KEYS = S.keys_of(Sampling, "temperature", "top_p", "max_tokens")
BOND = S.Schema("a bond", (*S.keys_of(BondSpec, "instruct", "title", "template", "lead", optional=("title",)),
                           *_SAMPLING_KEYS))
MODEL = S.Schema("a model", (*S.keys_of(ModelSpec, "engine", "model", "chat_template", spelled={"model": "name"}),
                             *_SAMPLING_KEYS), sections=("options",))
_SPLIT_KEYS = S.keys_of(SplitSpec, "samples", "graphs", "source", "allow_mixing", spelled={"graphs": "graph"},
                        kinds={"graphs": "refs", "source": "ref"}, optional=("graphs", "source"))
DATASET = S.Schema("the dataset", (*_SPLIT_KEYS, *S.keys_of(DatasetSpec, "seed", "license", "description",
                                                            "language", "model", kinds={"model": "ref"},
                                                            optional=("model",))), sections=("split",))
SPLIT = S.Schema("a split", _SPLIT_KEYS)
GRAPH = S.Schema("a graph", (S.Key("steps", "range", doc="length bounds, e.g. steps = 8..40"),
                             *S.keys_of(GraphSpec, "normalize", "temperature")))
COLUMNS = S.Schema("a source", S.keys_of(SourceSpec, "question", "gold", "id", "limit"))
HUB_ARGS = S.Schema("hub(...)", S.keys_of(SourceSpec, "config", "split"))
ANSWER = S.Schema("the answer step", (*S.keys_of(AnswerSpec, "instruct", "verify", "keep"), *_SAMPLING_KEYS))
OUTPUT = S.Schema("the output", S.keys_of(OutputSpec, "format", "think", "hub", "private", "shard_rows"))
FIDELITY = S.Schema("the fidelity gate", S.keys_of(FidelitySpec, "gate", "labeler", "retries",
                                                              "retry_temperature", "min_fit"))


def call_schema(fmt: str) -> S.Schema:
    """The keyword arguments of a source call: only `hub(...)` takes any."""
    return HUB_ARGS if fmt == "hub" else S.Schema(f"{fmt}(...)", ())
