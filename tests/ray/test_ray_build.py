"""`molspec build --executor ray` on a local Ray runtime: same dataset as a local build, faults, resume."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import molspec
from molspec.cli import main
from molspec.pipeline import build, build_ray
from molspec.runtime.build import BuildOptions
from molspec.runtime.cache import CACHE_DIR, CACHE_FILE
from molspec.runtime.ray_executor import ReplicaStatus, local_output, plan_resources, shards
from molspec.runtime.store import StoreError
from tests.ray.conftest import CPUS_PER_REPLICA, journal, openai_spec, rows
from tests.runtime.conftest import write_spec
from tests.support.openai_server import DEFAULT_MODEL, LoopbackOpenAIServer

pytest.importorskip("ray")


def _ray(doc: molspec.Document, out: Path, **kw: Any) -> Any:
    kw.setdefault("replicas", 2)
    return build_ray(doc, BuildOptions(out=out, **kw.pop("opts", {})), cpus_per_replica=CPUS_PER_REPLICA, **kw)


def test_echo_on_two_replicas_equals_the_local_build(ray_runtime: Any, tmp_path: Path) -> None:
    doc = molspec.load(write_spec(tmp_path / "spec", samples=60, steps="2..5"))
    local = build(doc, BuildOptions(out=tmp_path / "local"))
    seen: list[list[ReplicaStatus]] = []
    res = _ray(doc, tmp_path / "ray", shard_size=7, on_replicas=seen.append)
    assert (res.done, res.failed, res.steps, res.tokens) == (local.done, local.failed, local.steps, local.tokens)
    assert rows(tmp_path / "ray") == rows(tmp_path / "local")  # ids, walks, text, metadata: every column
    a, b = (json.loads((tmp_path / d / "molspec.json").read_text()) for d in ("local", "ray"))
    for key in ("summary", "splits", "planned", "realised", "engine", "metadata", "files"):
        assert a[key] == b[key], key
    assert sorted(journal(tmp_path / "ray")) == ["replica-0-0", "replica-1-0"]
    assert sorted(i for ix in journal(tmp_path / "ray").values() for i in ix) == list(range(60))
    assert {s.state for s in seen[-1]} == {"idle"} and sum(s.progress.done for s in seen[-1]) == 60


def test_resume_skips_what_a_local_build_finished(ray_runtime: Any, tmp_path: Path) -> None:
    doc = molspec.load(write_spec(tmp_path / "spec", samples=30))
    out = tmp_path / "out"
    build(doc, BuildOptions(out=out, limit=12))
    res = _ray(doc, out, replicas=1)
    assert (res.resumed, res.done) == (12, 30)
    assert [r["sample_index"] for r in rows(out)] == list(range(30))
    assert sorted(i for w, ix in journal(out).items() if w != "local" for i in ix) == list(range(12, 30))
    again = _ray(doc, out, replicas=1)  # nothing left: no replica starts, the dataset is rewritten as it was
    assert (again.resumed, again.done, again.steps) == (30, 30, 0)


def test_replicas_share_the_step_cache_with_local_builds(ray_runtime: Any, tmp_path: Path) -> None:
    """Each replica appends to its own cache file and reads every one: a --fresh rebuild, local or on Ray,
    generates nothing; --no-cache writes no cache."""
    from tests.runtime.varianttools import Counting

    doc = molspec.load(write_spec(tmp_path / "spec", samples=24))
    out = tmp_path / "out"
    first = _ray(doc, out, shard_size=4)
    meta = out / ".molspec"
    assert first.cache is not None and (first.cache.hits, first.cache.entries) == (0, first.cache.misses)
    assert first.cache.misses > first.done  # every bond step and every answer
    assert sorted(p.name for p in (meta / CACHE_DIR).iterdir()) == ["replica-0-0.jsonl", "replica-1-0.jsonl"]
    assert not (meta / CACHE_FILE).exists()  # the main file is the local builds'
    before = rows(out)
    echo = Counting()
    local = build(doc, BuildOptions(out=out, fresh=True), engine=echo)
    assert echo.requests == [] and local.cache is not None and local.cache.hits == first.cache.misses
    assert rows(out) == before
    again = _ray(doc, out, opts={"fresh": True})
    assert again.cache is not None and (again.cache.hits, again.cache.misses) == (first.cache.misses, 0)
    assert rows(out) == before
    plain = _ray(doc, tmp_path / "plain", replicas=1, opts={"cache": False})
    assert plain.cache is None and not (tmp_path / "plain" / ".molspec" / CACHE_DIR).exists()


@pytest.mark.parametrize("restart", [True, False], ids=["replaced", "slot-given-up"])
def test_a_replica_killed_mid_run_loses_and_duplicates_nothing(ray_runtime: Any, tmp_path: Path,
                                                               restart: bool) -> None:
    ray = ray_runtime
    with LoopbackOpenAIServer(delay_s=0.05) as server:
        doc = molspec.load(openai_spec(tmp_path / "spec", server.base_url, DEFAULT_MODEL, samples=40))
        killed: list[int] = []
        last: list[list[ReplicaStatus]] = []

        def kill_once(statuses: list[ReplicaStatus]) -> None:
            last[:] = [[replace(s) for s in statuses]]
            if not killed and statuses[0].progress.done >= 3 and statuses[0].state == "running":
                killed.append(sum(s.progress.done for s in statuses))
                ray.kill(ray.get_actor(statuses[0].name))  # SIGKILL of the actor process, mid-round
        res = _ray(doc, tmp_path / "ray", shard_size=3, max_restarts=1 if restart else 0,
                   opts={"window": 3}, on_replicas=kill_once)
        server.set(delay_s=0.0)
        local = build(doc, BuildOptions(out=tmp_path / "local", window=3))
    assert killed and killed[0] < 40, "the build ended before the kill"
    assert (res.done, res.failed) == (40, 0) and local.done == 40
    assert rows(tmp_path / "ray") == rows(tmp_path / "local")  # deterministic server: the same text
    every = sorted(i for ix in journal(tmp_path / "ray").values() for i in ix)
    assert every == list(range(40))  # journalled exactly once: only unjournalled samples were handed out again
    first, second = last[0]
    assert (first.attempt, first.state) == ((1, "idle") if restart else (1, "failed"))
    assert (second.attempt, second.state) == (0, "idle")


def test_one_bad_sample_fails_only_itself(ray_runtime: Any, tmp_path: Path) -> None:
    with LoopbackOpenAIServer() as server:
        doc = molspec.load(openai_spec(tmp_path / "spec", server.base_url, DEFAULT_MODEL, samples=12))
        server.fail_next(1, status=400)  # a client error is not retried: exactly one request fails
        first = _ray(doc, tmp_path / "out", replicas=1)
        assert (first.done, first.failed) == (11, 1) and "400" in first.errors[0]
        second = _ray(doc, tmp_path / "out", replicas=1)  # resume retries the failed sample
    assert (second.resumed, second.done, second.failed) == (11, 12, 0)


def test_an_engine_that_cannot_start_fails_the_build_with_its_message(ray_runtime: Any, tmp_path: Path) -> None:
    from molspec.engines import EngineError

    with LoopbackOpenAIServer() as server:
        doc = molspec.load(openai_spec(tmp_path / "spec", server.base_url, "no-such-model", samples=4))
        with pytest.raises(EngineError, match="replica 0 .*no-such-model"):
            _ray(doc, tmp_path / "out", replicas=1)


def test_cli_executor_ray(ray_runtime: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path / "spec", samples=20)
    out = tmp_path / "out"
    argv = ["build", str(spec), "--out", str(out), "--executor", "ray", "--replicas", "1", "--shard-size", "5"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out) and "replica 0" in captured.err and "20 done of 20" in captured.err
    assert [r["sample_index"] for r in rows(out)] == list(range(20))
    assert list(journal(out)) == ["replica-0-0"]


def test_output_urls_other_than_file_are_refused(tmp_path: Path) -> None:
    assert local_output(Path(f"file://{tmp_path}/x")) == tmp_path / "x"
    with pytest.raises(StoreError, match="s3://bucket/x: URLs are not supported yet"):
        local_output(Path("s3://bucket/x"))


def test_replicas_and_gpus_follow_the_engine_and_the_cluster() -> None:
    from molspec.engines import EngineError

    assert plan_resources("vllm", {"tensor_parallel_size": 2}, {"GPU": 8}, None, None) == (4, 2.0)
    assert plan_resources("vllm", {}, {"CPU": 2}, None, None) == (1, 0.0)
    assert plan_resources("echo", {}, {"GPU": 8}, 3, None) == (3, 0.0)
    with pytest.raises(EngineError, match="--gpus-per-replica 2"):
        plan_resources("vllm", {"tensor_parallel_size": 2}, {"GPU": 8}, None, 1)
    assert shards([1, 2, 3, 5, 8], 2) == [(0, (1, 2)), (1, (3, 5)), (2, (8,))]
