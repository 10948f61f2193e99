"""Synthetic `molspec build` output directories (docs/internals.md layout and row schema) for push tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from datasets import Features

from molspec.records import (
    AnswerInfo,
    DataInfo,
    DatasetInfo,
    Distribution,
    EngineInfo,
    GraphInfo,
    Manifest,
    ManifestSampling,
    OutputInfo,
    PlannedInfo,
    RealisedInfo,
    SpecInfo,
    SplitInfo,
    Summary,
    TokenDistribution,
    Transitions,
)

STEP = pa.struct(
    [("bond", pa.string()), ("text", pa.string()), ("n_tokens", pa.int32()), ("finish_reason", pa.string())]
)
MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
ROW_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("split", pa.string()),
        ("sample_index", pa.int64()),
        ("question", pa.string()),
        ("gold", pa.string()),
        ("graph", pa.string()),
        ("bonds", pa.list_(pa.string())),
        ("steps", pa.list_(STEP)),
        ("thinking", pa.string()),
        ("answer", pa.string()),
        ("correct", pa.bool_()),
        ("messages", pa.list_(MESSAGE)),
        ("error", pa.string()),
        ("metadata", pa.string()),
    ]
)
SPEC_PATH = "examples/quickstart.mol"
GIT_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def make_row(split: str, index: int, variant: str) -> dict[str, Any]:
    """One sample; `variant` changes the generated text, as a rebuild with another spec would."""
    bonds = ["explore", "deep", "reflect", "normal"][: 2 + index % 3]
    steps: list[dict[str, Any]] = [
        {
            "bond": b,
            "text": f"{variant} {b} step {i} of sample {index}",
            "n_tokens": 7 + i,
            "finish_reason": "stop",
        }
        for i, b in enumerate(bonds)
    ]
    thinking = "\n\n".join(str(s["text"]) for s in steps)
    answer = f"\\boxed{{{index * 2}}}"
    question = f"What is {index} + {index}?"
    return {
        "id": f"{split}-{index:06d}",
        "split": split,
        "sample_index": index,
        "question": question,
        "gold": str(index * 2) if index % 4 else None,
        "graph": "qwq",
        "bonds": bonds,
        "steps": steps,
        "thinking": thinking,
        "answer": answer,
        "correct": True if index % 4 else None,
        "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": f"<think>\n{thinking}\n</think>\n\n{answer}"},
        ],
        "error": None,
        "metadata": json.dumps({"engine": "echo", "model": "echo", "seed": 7, "variant": variant}),
    }


def make_build(
    out: Path,
    variant: str = "a",
    splits: dict[str, int] | None = None,
    shards: int = 1,
    extra_column: bool = False,
    spec_text: str | None = None,
    card_features: bool = True,
) -> Path:
    """Write a build dir and return it; the spec text (so its sha256 and default tag) follows `variant`."""
    splits = splits or {"train": 6, "test": 3}
    spec_text = spec_text or f'molspec 1\n# variant {variant}\ndataset "acme/demo" {{ samples = 6 }}\n'
    schema = _write_data(out, variant, splits, shards, extra_column)
    _write_spec(out, spec_text)
    _write_manifest(out, spec_text, splits)
    _write_card(out, splits, schema if card_features else None)
    (out / "structure.png").write_bytes(b"\x89PNG\r\n\x1a\n" + variant.encode() * 64)
    # Working state that must never be uploaded.
    (out / ".molspec").mkdir(exist_ok=True)
    (out / ".molspec" / "journal-00000.jsonl").write_text('{"sample": 0}\n')
    owned = ["data/", "spec/", "README.md", "molspec.json", "structure.png"]  # what molspec build records
    (out / ".molspec" / "owned.json").write_text(json.dumps(owned))
    return out


def rows_of(out: Path, split: str) -> list[dict[str, Any]]:
    """The rows of a split as written (all shards, in order)."""
    tables = [pq.read_table(p) for p in sorted((out / "data").glob(f"{split}-*.parquet"))]
    return [row for table in tables for row in table.to_pylist()]


def spec_sha(out: Path) -> str:
    return str(json.loads((out / "molspec.json").read_text())["spec"]["sha256"])


def _write_data(out: Path, variant: str, splits: dict[str, int], shards: int, extra: bool) -> pa.Schema:
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    for old in data.glob("*.parquet"):
        old.unlink()
    schema = ROW_SCHEMA.append(pa.field("difficulty", pa.int64())) if extra else ROW_SCHEMA
    for split, count in splits.items():
        rows = [make_row(split, i, variant) | ({"difficulty": i % 3} if extra else {}) for i in range(count)]
        per = -(-count // shards)
        for shard in range(shards):
            table = pa.Table.from_pylist(rows[shard * per : (shard + 1) * per], schema=schema)
            pq.write_table(table, data / f"{split}-{shard:05d}-of-{shards:05d}.parquet")
    return schema


def _write_spec(out: Path, spec_text: str) -> None:
    path = out / "spec" / SPEC_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec_text)


def _write_manifest(out: Path, spec_text: str, splits: dict[str, int]) -> None:
    bonds = ["explore", "deep", "reflect", "normal"]
    square = [[0.25] * 4 for _ in bonds]
    planned = PlannedInfo(samples=sum(splits.values()), seed=7, steps={"mean": 3.0},
                          bond_shares={b: 0.25 for b in bonds},
                          stationary={"qwq": {b: 0.25 for b in bonds}}, expected_steps={"qwq": 3.0},
                          transitions=Transitions(bonds=bonds, matrix=square), engine_calls=36, max_tokens=1000,
                          splits={})
    dist = Distribution(mean=3.0, p50=3, p95=4, max=4, total=27)
    manifest = Manifest(
        molspec_version="0.1.0",
        spec=SpecInfo(path=SPEC_PATH, sha256=hashlib.sha256(spec_text.encode()).hexdigest(), git_commit=GIT_COMMIT,
                      git_dirty=False, files=[f"spec/{SPEC_PATH}"], main=f"spec/{SPEC_PATH}"),
        dataset=DatasetInfo(name="acme/demo", license="mit", seed=7, description=None, language=[]),
        engine=EngineInfo(engine="echo", model="echo", options={}),
        data=DataInfo(sha256="0" * 64, sources={"questions": 9}),
        metadata=None,
        sampling=ManifestSampling(temperature=0.7, top_p=1.0, max_tokens=64, per_bond={}),
        answer=AnswerInfo(verify="math", keep="all"),
        output=OutputInfo(hub=None, private=False),
        splits={s: SplitInfo(samples=n, graphs=["qwq"], done=n, failed=0) for s, n in splits.items()},
        graphs={"qwq": GraphInfo(bonds=bonds, start=[1.0, 0, 0, 0], transitions=square, end=[0.0] * 4,
                                 steps=(2, 4))},
        planned=planned,
        realised=RealisedInfo(samples=sum(splits.values()), bond_shares={b: 0.25 for b in bonds},
                              transitions=Transitions(bonds=bonds, matrix=square), steps=dist,
                              tokens={b: TokenDistribution(**dist.model_dump(), cut_by_max_tokens=0) for b in bonds},
                              accuracy=None, graded=0),
        failures=[],
        summary=Summary(planned=9, target=9, done=9, failed=0, kept=9, accuracy=None),
        files={},
        command=f"molspec build {SPEC_PATH} --out {out}",
        created="2026-11-29T12:00:00Z",
        wall_s=1.0,
    )
    (out / "molspec.json").write_text(manifest.model_dump_json(indent=2))


def _write_card(out: Path, splits: dict[str, int], schema: pa.Schema | None) -> None:
    meta: dict[str, Any] = {
        "license": "mit",
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"data/{s}-*"} for s in splits],
            }
        ],
    }
    if schema is not None:
        features = Features.from_arrow_schema(schema)._to_yaml_list()
        meta["dataset_info"] = {"config_name": "default", "features": features}
    front = yaml.safe_dump(meta, sort_keys=False)
    (out / "README.md").write_text(f"---\n{front}---\n\n# acme/demo\n\nBuilt by molspec from `{SPEC_PATH}`.\n")
