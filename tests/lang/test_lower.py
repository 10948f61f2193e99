"""Lowering: the `fidelity` block, block schemas derived from the spec models, one table of defaults,
engine options checked by the engine's options model."""

from __future__ import annotations

import subprocess
import sys
from ast import literal_eval
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from molspec.api import load
from molspec.check import blocks
from molspec.check import schema as S
from molspec.diagnostics import Diagnostic
from molspec.engines.registry import DEFAULT_ENGINE, ENGINE_NAMES
from molspec.lang import ast
from molspec.lang.build import parse_file
from molspec.lang.fmt import format_text
from molspec.spec import DEFAULT_SAMPLES, DEFAULT_SAMPLING, FIDELITY_LABELERS, FidelitySpec, SourceSpec, Spec

HEAD = """molspec 1
bond deep : covalent "Deep" { instruct = "Go deeper." }
graph g { start -> deep 1.0  deep -> deep 0.5 | end 0.5  steps = 1..64 }
source q = hub("openai/gsm8k")
"""


def lowered(tmp_path: Path, text: str, name: str = "spec.mol") -> tuple[Spec, list[Diagnostic]]:
    path = tmp_path / name
    path.write_text(HEAD + text, encoding="utf-8")
    doc = load(path)
    assert doc.spec is not None
    return doc.spec, doc.check()


def codes(diags: list[Diagnostic]) -> list[str]:
    return [d.code for d in diags]


# ---------------------------------------------------------------- fidelity

def test_fidelity_block_lowers_to_the_spec(tmp_path: Path) -> None:
    spec, diags = lowered(tmp_path, 'model m { name = "x" }\ndataset "a/b" { }\n'
                                    'fidelity { gate = false  labeler = "cue"  retries = 1  min_fit = 0.6 }\n')
    assert codes(diags) == []
    assert spec.fidelity.model_dump() == FidelitySpec(gate=False, labeler="cue", retries=1, min_fit=0.6).model_dump()


def test_fidelity_defaults_come_from_the_model(tmp_path: Path) -> None:
    spec, _ = lowered(tmp_path, 'model m { name = "x" }\ndataset "a/b" { }\nfidelity { retries = 0 }\n')
    assert spec.fidelity.model_dump() == FidelitySpec(retries=0).model_dump()
    assert (spec.fidelity.gate, spec.fidelity.labeler) == (True, "learned-causal")
    absent, _ = lowered(tmp_path, 'model m { name = "x" }\ndataset "a/b" { }\n', "absent.mol")
    assert absent.fidelity == FidelitySpec()


@pytest.mark.parametrize(("body", "code"), [('labeler = "llm"', "MOL116"), ("retries = 6", "MOL108"),
                                            ("retries = -1", "MOL108"), ('gate = "no"', "MOL103"),
                                            ("retries = 1.5", "MOL103"), ("labeller = \"cue\"", "MOL101"),
                                            ("min_fit = 1.5", "MOL108"), ('min_fit = "high"', "MOL103")])
def test_fidelity_wrong_values(tmp_path: Path, body: str, code: str) -> None:
    spec, diags = lowered(tmp_path, 'model m { name = "x" }\ndataset "a/b" { }\nfidelity { ' + body + " }\n")
    assert codes(diags) == [code]
    assert spec.fidelity.model_dump() == FidelitySpec().model_dump(), "a refused value falls back to the default"


def test_fidelity_is_main_spec_only(tmp_path: Path) -> None:
    (tmp_path / "shared.mol").write_text("molspec 1\nfidelity { gate = false }\n", encoding="utf-8")
    spec, diags = lowered(tmp_path, 'use "shared.mol"\nmodel m { name = "x" }\ndataset "a/b" { }\n')
    assert codes(diags) == ["MOL504"]
    assert spec.fidelity.gate is True


def test_fidelity_labelers_are_the_cpu_labelers() -> None:
    from molspec.structure.label import LABELERS  # the test may load the labelers; `check` must not

    # The gate reads each step before the next exists; `learned-lm` adds the bidirectional `learned`, so it is
    # not offered to the gate (`learned-lm-causal` is; docs/structure.md, "The `learned-lm` labeler").
    assert set(FIDELITY_LABELERS) == set(LABELERS) - {"llm", "learned-lm"}
    assert blocks.FIDELITY.key("labeler") is not None
    assert blocks.FIDELITY.key("labeler").choices == FIDELITY_LABELERS  # type: ignore[union-attr]


def test_fidelity_formats_round_trip() -> None:
    text = "molspec 1\nfidelity {\n  gate = false   # off\n  labeler = \"cue\"\n}\n"
    out = format_text(text)
    assert out == "molspec 1\n\nfidelity {\n  gate = false  # off\n  labeler = \"cue\"\n}\n"
    assert parse_file(out) == parse_file(text)
    assert format_text("molspec 1\nfidelity{retries=1}") == "molspec 1\n\nfidelity { retries = 1 }\n"


# ---------------------------------------------------------------- schemas and defaults

def test_block_keys_follow_the_model_fields() -> None:
    schemas = [v for v in vars(blocks).values() if isinstance(v, S.Schema)]
    assert len(schemas) >= 10
    for schema in schemas:
        for key in (k for k in schema.keys if k.owner is not None):
            info = key.owner.model_fields[key.attr]  # type: ignore[union-attr]
            assert key.doc == (info.description or ""), (schema.what, key.name)
            assert not key.required or info.is_required(), (schema.what, key.name)


def answer_body(text: str) -> ast.Block:
    item = parse_file(text).items[0]
    assert isinstance(item, ast.Answer)
    return item.body


def test_a_field_constraint_is_the_check() -> None:
    class Demo(BaseModel):
        mode: Literal["fast", "slow"] = Field(default="fast", description="how")
        n: int = Field(default=3, ge=2, le=4, description="how many")
        share: float | None = Field(default=None, gt=0, le=1)

    schema = S.Schema("a demo", S.keys_of(Demo, "mode", "n", "share"))
    assert [(k.kind, k.lo, k.hi, k.lo_open, k.choices) for k in schema.keys] == [
        ("str", None, None, False, ("fast", "slow")), ("int", 2, 4, False, ()), ("float", 0, 1, True, ())]
    block = answer_body('answer { mode = "fats"  n = 5  share = 0 }')
    diags: list[Diagnostic] = []
    vals = S.read_block(block, schema, diags, block.sp)
    assert [d.code for d in diags] == ["MOL116", "MOL108", "MOL108"]
    assert diags[1].help == "n must be >= 2 and <= 4" and diags[2].help == "share must be > 0 and <= 1"
    assert Demo(**vals.of(Demo)) == Demo()
    ok = answer_body('answer { mode = "slow"  n = 4  share = 1 }')
    assert Demo(**S.read_block(ok, schema, diags, ok.sp).of(Demo)) == Demo(mode="slow", n=4, share=1.0)


def test_defaults_come_from_one_table(tmp_path: Path) -> None:
    spec, diags = lowered(tmp_path, 'model m { name = "x"  top_p = 0.9 }\ndataset "a/b" { }\n'
                                    "answer { max_tokens = 64 }\n")
    assert codes(diags) == []
    assert spec.model.engine == DEFAULT_ENGINE
    assert spec.model.sampling.model_dump() == {**DEFAULT_SAMPLING.model_dump(), "top_p": 0.9}
    assert spec.dataset is not None and spec.dataset.samples == DEFAULT_SAMPLES
    assert spec.answer.sampling.max_tokens == 64 and spec.answer.verify == "math"
    assert spec.sources["q"].split == "train" and spec.sources["q"].question == "question"
    assert (spec.graphs["g"].min_steps, spec.graphs["g"].max_steps, spec.graphs["g"].temperature) == (1, 64, 1.0)


def test_engine_names_come_from_the_registry(tmp_path: Path) -> None:
    _, diags = lowered(tmp_path, 'model m { engine = "vlm"  name = "x" }\ndataset "a/b" { }\n')
    assert codes(diags) == ["MOL114"] and diags[0].help == "did you mean 'vllm'?"
    _, diags = lowered(tmp_path, 'model m { engine = "gpt"  name = "x" }\ndataset "a/b" { }\n', "other.mol")
    assert diags[0].help == "engines: " + ", ".join(ENGINE_NAMES)


def test_checking_loads_no_labeler_and_no_engine() -> None:
    """The fidelity labeler choices and the engine options models are known without importing either."""
    code = "import sys, molspec.check, molspec.check.lower; print(sorted(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(literal_eval(out))
    assert "molspec.engines.registry" in loaded
    heavy = {"molspec.structure", "molspec.structure.label", "molspec.engines.vllm", "molspec.engines.openai",
             "molspec.engines.transformers", "torch", "vllm", "httpx"}
    assert loaded & heavy == set()


# ---------------------------------------------------------------- engine options

@pytest.mark.parametrize(("model", "line"), [
    ('engine = "openai"  options { concurrency = 0 }', "must be >= 1"),
    ('engine = "openai"  options { concurrency = "8" }', "is not valid"),
    ('engine = "openai"  options { base_url = "http://a"  base_urls = ["http://b"] }', "not both"),
    ('engine = "openai"  options { timeout = 3 }', "unknown option 'timeout'"),
    ("options { gpu_memory_utilization = 1.5 }", "must be <= 1"),
    ('engine = "transformers"  options { batch_size = 2.5 }', "is not valid"),
])
def test_engine_options_are_checked(tmp_path: Path, model: str, line: str) -> None:
    spec, diags = lowered(tmp_path, f'model m {{ name = "x"  {model} }}\ndataset "a/b" {{ }}\n')
    assert codes(diags) == ["MOL122"]
    assert line in diags[0].message
    assert diags[0].span.line == 5


@pytest.mark.parametrize("model", [
    'engine = "echo"  options { anything = [1, 2]  nested { a = 1 } }',
    'engine = "openai"  options { base_url = "http://h:1/v1"  concurrency = 4  backoff_s = 1  extra_body { a = 1 } }',
    'options { tensor_parallel_size = 2  enforce_eager = true }',
    'engine = "transformers"  options { batch_size = 4.0  trust_remote_code = true }',
])
def test_valid_engine_options_pass_through(tmp_path: Path, model: str) -> None:
    spec, diags = lowered(tmp_path, f'model m {{ name = "x"  {model} }}\ndataset "a/b" {{ }}\n')
    assert codes(diags) == []
    assert spec.model.options  # kept as written, for the engine


# ---------------------------------------------------------------- sources

def test_source_location_survives_a_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    source = SourceSpec(name="q", format="jsonl", path="a/q.jsonl", base=str(tmp_path))
    assert source.location == str(tmp_path / "a" / "q.jsonl")
    plain = SourceSpec(name="q", format="jsonl", path="q.jsonl", base=str(tmp_path))
    assert plain.location == str((tmp_path / "q.jsonl").resolve())
