"""`molspec build --executor ray`: one build spread over engine replicas on a Ray cluster.

    driver: prepare ─ open the store ─ cut the remaining samples into shards ─▶ coordinator (queue, leases)
    replica k (a Ray actor that owns an engine): pulls shards into the wavefront scheduler's window,
        journals rows to <out>/.molspec/journal/replica-<k>-<attempt>.jsonl, reports progress
    driver: watches the replicas; a dead one's leased shards go back to the queue (minus the samples
        already journalled) and a fresh actor takes its slot; at the end `finalize` writes the dataset
        exactly as a local build does.

The journal is the source of truth: a sample counts as done once a line for it is on disk, and the store
reads every writer's lines once, so a retried shard never duplicates a row. The output directory must be
visible at the same path on every node (a shared filesystem); see docs/ray.md.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from molspec.engines import ENGINES, EngineError, default_window
from molspec.records import CacheInfo
from molspec.runtime.build import BuildOptions, BuildPlan, BuildResult, Prepared, build, run_config
from molspec.runtime.cache import CACHE_FILE, StepCache
from molspec.runtime.ray_actors import Coordinator, Replica, ReplicaStatus, Shard
from molspec.runtime.runconfig import Progress, RunConfig
from molspec.runtime.store import Store, StoreError

MISSING_RAY = ("the ray executor needs Ray: pip install 'molspec[ray]' (core Ray; not the ray[llm] extra, "
               "which pins an old vLLM)")
# Not secrets: variables that tell an engine where to look. Secrets (API keys, HF_TOKEN) belong in the
# environment of every `ray start` (see docs/ray.md), not in a runtime_env that the dashboard shows.
FORWARDED_ENV = ("OPENAI_BASE_URL", "HF_ENDPOINT", "HF_HUB_OFFLINE", "HF_HUB_DISABLE_XET")
REPORT_EVERY_S = 0.5
FENCE_S = 30.0  # how long to wait for a dead replica's process to exit before reading its journal


def build_ray(bp: BuildPlan, opts: BuildOptions, replicas: int | None = None, address: str | None = None,
              shard_size: int | None = None, gpus_per_replica: float | None = None, *,
              cpus_per_replica: float = 1.0, max_restarts: int = 3,
              on_round: Callable[[Progress, int], None] | None = None,
              on_replicas: Callable[[list[ReplicaStatus]], None] | None = None,
              on_done: Callable[[Path], None] | None = None, cache_file: Path | None = None) -> BuildResult:
    """Run (or resume) a build on Ray; the result and the dataset are those of a local `build`.

    Args:
        replicas: engine replicas (default: as many as the cluster's GPUs allow, else 1).
        address: Ray address ("auto", "ray://host:10001", "host:6379"); default: RAY_ADDRESS, a cluster
            started on this machine, or a new local one.
        shard_size: samples handed out at a time (default: about 8 shards per replica, at most a window).
        gpus_per_replica: GPUs per replica (default: tensor_parallel_size x pipeline_parallel_size for vllm
            on a cluster with GPUs, else 0).
        max_restarts: how often a replica slot may lose its actor (crash, kill, engine error, node loss) and
            get a fresh one before the slot is given up.
        cache_file: the step cache's main file (a variant group's); default the build's own
            `.molspec/cache.jsonl`. Unused with `opts.cache` off.

    Raises:
        MolspecError, StoreError, EngineError: as `build`; EngineError also when Ray is missing or every
        replica has failed (what was journalled stays: rerun to resume).
    """
    opts = replace(opts, out=local_output(opts.out))

    def on_replicas_of_ray(p: Prepared, store: Store, todo: list[int], prog: Progress) -> CacheInfo | None:
        with ray_session(address) as ray:
            steps = (cache_file or store.meta / CACHE_FILE).resolve() if opts.cache else None
            driver = _Driver(ray, p, opts, store, todo, replicas, shard_size, gpus_per_replica, cpus_per_replica,
                             max_restarts, steps)
            driver.run(prog, on_round, on_replicas)
            return driver.cache_info()

    return build(bp, opts, on_done=on_done, generate=on_replicas_of_ray)


@contextmanager
def ray_session(address: str | None) -> Iterator[Any]:
    """The ray module, connected: to the runtime this process already joined, else to `address` (joined here
    and left at the end)."""
    ray = import_ray()
    ours = not ray.is_initialized()
    if ours:
        ray.init(address=address)
    try:
        yield ray
    finally:
        if ours:
            ray.shutdown()


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise EngineError(MISSING_RAY) from exc
    return ray


def local_output(out: Path) -> Path:
    """The build directory as an absolute local path; file:// is accepted, other URLs are refused.

    Raises:
        StoreError: `out` is an fsspec URL other than file:// (s3://, gs://, memory://...).
    """
    text = str(out)
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):/", text)  # Path() folds "s3://b" into "s3:/b"
    if m and m.group(1).lower() == "file":
        return Path(text[len("file:"):]).resolve()
    if m:
        raise StoreError(f"build output {text.replace(':/', '://', 1)}: URLs are not supported yet. A Ray build "
                         "journals into a directory that every node sees at the same path: use a shared "
                         "filesystem (NFS, Lustre, a FUSE mount that supports appends), then `molspec push`.")
    return out.resolve()


def shards(indices: list[int], size: int) -> list[Shard]:
    """Consecutive runs of `size` indices, numbered from 0."""
    return [(k, tuple(indices[a:a + size])) for k, a in enumerate(range(0, len(indices), size))]


def plan_resources(engine: str, options: dict[str, Any], cluster: dict[str, float], replicas: int | None,
                   gpus: float | None) -> tuple[int, float]:
    """(replicas, GPUs per replica) from what was asked, the engine's parallelism and the cluster.

    Raises:
        EngineError: a vllm replica would get fewer GPUs than its tensor x pipeline parallelism needs.
    """
    parallel = int(options.get("tensor_parallel_size", 1)) * int(options.get("pipeline_parallel_size", 1))
    have = float(cluster.get("GPU", 0))
    if gpus is None:
        gpus = float(parallel) if have and ENGINES[engine].uses_gpu else 0.0  # parallel is 1 but for vllm
    if engine == "vllm" and parallel > 1 and gpus < parallel:
        raise EngineError(f"tensor_parallel_size x pipeline_parallel_size is {parallel} in the model's options, "
                          f"but each replica gets {gpus:g} GPUs: pass --gpus-per-replica {parallel}")
    if replicas is None:
        replicas = max(1, int(have // gpus)) if gpus else 1
    return replicas, gpus


# ---------------------------------------------------------------- the driver

@dataclass
class _Slot:
    status: ReplicaStatus
    actor: Any = None
    ref: Any = None
    past: Progress = field(default_factory=Progress)  # counters of earlier attempts
    past_cpu_s: float = 0.0
    past_cache: tuple[int, int] = (0, 0)  # step cache hits and misses of earlier attempts

    @property
    def token(self) -> str:
        return f"{self.status.slot}-{self.status.attempt}"


class _Driver:
    """Starts the actors, keeps every live replica busy, turns deaths into requeues, aggregates progress."""

    def __init__(self, ray: Any, p: Prepared, opts: BuildOptions, store: Store, todo: list[int],
                 replicas: int | None, shard_size: int | None, gpus: float | None, cpus: float,
                 max_restarts: int, cache_file: Path | None) -> None:
        self.ray, self.p, self.opts = ray, p, opts
        self.cache_file = cache_file
        self.store = store
        self.total = len(todo)
        self.max_restarts = max_restarts
        self.last_error = ""
        self.counters: dict[str, dict[str, Any]] = {}  # the coordinator's latest counters per replica token
        cluster = ray.cluster_resources()
        n, gpus = plan_resources(p.engine, p.options, cluster, replicas, gpus)
        _warn_if_short(cluster, n, cpus, gpus)
        self.window = min(opts.window or default_window(p.engine), math.ceil(len(todo) / n))
        size = shard_size or max(1, min(self.window, math.ceil(len(todo) / (8 * n))))
        self.coord = ray.remote(Coordinator).options(num_cpus=0).remote(shards(todo, size))
        self.prepared = ray.put(p)  # once into the object store; every run call reads it from there
        env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        # Ray itself never restarts a replica (max_restarts=0): the driver replaces a dead one, so that the
        # old process is surely gone (no late journal lines) before its samples are handed out again.
        self.actor_options = {"num_cpus": cpus, "num_gpus": gpus, "max_restarts": 0, "max_task_retries": 0,
                              **({"runtime_env": {"env_vars": env}} if env else {})}
        self.build_id = uuid.uuid4().hex[:8]
        self.slots = [_Slot(ReplicaStatus(k, "")) for k in range(n)]
        for s in self.slots:
            self._spawn(s)

    def _spawn(self, s: _Slot) -> None:
        s.status.name = f"molspec-{self.build_id}-replica-{s.status.slot}-{s.status.attempt}"
        cls = self.ray.remote(Replica).options(name=s.status.name, **self.actor_options)
        s.actor = cls.remote(self.p.engine, self.p.model, self.p.options, self.p.plan.seed)

    def run(self, prog: Progress, on_round: Callable[[Progress, int], None] | None,
            on_replicas: Callable[[list[ReplicaStatus]], None] | None) -> None:
        try:
            self.cfg = self._start()
            for s in self.slots:
                self._launch(s)
            self._loop(prog, on_round, on_replicas)
        finally:
            for s in self.slots:
                self.ray.kill(s.actor, no_restart=True)
            self.ray.kill(self.coord, no_restart=True)

    def _start(self) -> RunConfig:
        """Wait for every engine; fail early (with the engine's own message) if one cannot start."""
        marker = self.opts.out / ".molspec" / f"ray-{uuid.uuid4().hex[:8]}"
        marker.touch()
        try:
            infos = self.ray.get([s.actor.ready.remote(str(marker)) for s in self.slots])
        except self.ray.exceptions.RayActorError as exc:
            raise EngineError(f"a replica died while starting its engine: {_first_line(exc)}") from exc
        finally:
            marker.unlink(missing_ok=True)
        for s, info in zip(self.slots, infos, strict=True):
            where = f"replica {s.status.slot} (node {info['node']})"
            if info["error"]:
                raise EngineError(f"{where}: {info['error']}")
            if not info["sees_output"]:
                raise StoreError(f"{where} cannot see {self.opts.out}: a Ray build needs an output directory that "
                                 "every node sees at the same path (a shared filesystem)")
            s.status.node, s.status.pid = info["node"], info["pid"]
        # The same row metadata as a local build: the replica's engine description, the driver's git info.
        return replace(run_config(self.p, self.opts, infos[0]["engine"]), window=self.window)

    def _launch(self, s: _Slot) -> None:
        if s.status.state != "restarting":
            s.status.state = "running"
        cache = str(self.cache_file) if self.cache_file else None
        s.ref = s.actor.run.remote(self.prepared, self.coord, s.token, str(self.opts.out), self.cfg, cache)

    def _loop(self, prog: Progress, on_round: Callable[[Progress, int], None] | None,
              on_replicas: Callable[[list[ReplicaStatus]], None] | None) -> None:
        while True:
            running = {s.ref: s for s in self.slots if s.ref is not None}
            if running:
                ready, _ = self.ray.wait(list(running), num_returns=1, timeout=REPORT_EVERY_S)
                if ready:
                    ready, _ = self.ray.wait(list(running), num_returns=len(running), timeout=0)
                for ref in ready:
                    self._finished(running[ref])
            snap = self.ray.get(self.coord.snapshot.remote())
            self._aggregate(prog, snap["counters"])
            if on_replicas is not None:
                on_replicas([s.status for s in self.slots])
            if on_round is not None:
                on_round(prog, self.total)
            if any(s.ref is not None for s in self.slots):
                continue
            if snap["queued"] == 0 and snap["leased"] == 0:
                return
            live = [s for s in self.slots if s.status.state != "failed"]
            if not live:
                raise EngineError(f"every replica failed ({self.max_restarts} restarts each; last: {self.last_error}); "
                                  "the samples journalled so far are kept: rerun the same command to resume")
            for s in live:  # shards came back after these replicas had found the queue empty
                self._launch(s)

    def _finished(self, s: _Slot) -> None:
        ref, s.ref = s.ref, None
        try:
            self.ray.get(ref)
        except self.ray.exceptions.RayActorError as exc:
            self._died(s, _first_line(exc))
            return
        except self.ray.exceptions.RayTaskError as exc:
            if not isinstance(exc.cause, EngineError):
                raise  # a molspec bug, not a replica fault: every replica would hit it
            self._died(s, exc.cause.message)
            return
        s.status.state = "idle"

    def _died(self, s: _Slot, reason: str) -> None:
        """Put a dead replica's unjournalled samples back in the queue; replace it or give its slot up."""
        self.last_error = reason
        self.ray.kill(s.actor, no_restart=True)  # an engine error leaves the process alive: end it
        leased = self.ray.get(self.coord.release.remote(s.token))
        last = self.ray.get(self.coord.snapshot.remote())["counters"].get(s.token, {})
        if last:  # Ray reports a death before the process is gone: let it finish dying, then read
            self._wait_gone(last["node_id"], last["pid"])
        done = self.store.scan().done  # what the replica made durable; the rest goes back in the queue
        back = [(sid, tuple(i for i in ix if i not in done)) for sid, ix in leased]
        self.ray.get(self.coord.requeue.remote([(sid, ix) for sid, ix in back if ix]))
        for idle in (o for o in self.slots if o.ref is None and o.status.state == "idle"):
            self._launch(idle)  # it found the queue empty before; now there is work again
        s.past, s.past_cpu_s = _add(s.past, last), s.past_cpu_s + float(last.get("cpu_s", 0.0))
        s.past_cache = (s.past_cache[0] + int(last.get("cache_hits", 0)),
                        s.past_cache[1] + int(last.get("cache_misses", 0)))
        s.status.attempt += 1
        if s.status.attempt > self.max_restarts:
            s.status.state = "failed"
            return
        s.status.state = "restarting"
        self._spawn(s)
        self._launch(s)

    def _wait_gone(self, node_id: str, pid: int) -> None:
        """Wait (on the replica's node) until process `pid` has exited; a dead node has no processes left."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        if node_id == self.ray.get_runtime_context().get_node_id():
            wait_gone(pid, FENCE_S)
            return
        task = self.ray.remote(wait_gone).options(
            num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False))
        try:
            self.ray.get(task.remote(pid, FENCE_S), timeout=FENCE_S + 30)
        except self.ray.exceptions.RayError:
            pass  # the node is gone (or unreachable): so is the process; the store's dedupe covers the rest

    def cache_info(self) -> CacheInfo | None:
        """The step cache's counts over every replica and attempt (None: the build ran without the cache)."""
        if self.cache_file is None:
            return None
        hits = sum(s.past_cache[0] + int(self.counters.get(s.token, {}).get("cache_hits", 0)) for s in self.slots)
        misses = sum(s.past_cache[1] + int(self.counters.get(s.token, {}).get("cache_misses", 0)) for s in self.slots)
        cache = StepCache.open(self.cache_file)  # every replica's file, as the next build reads them
        try:
            return CacheInfo(hits=hits, misses=misses, entries=cache.entries)
        finally:
            cache.close()

    def _aggregate(self, prog: Progress, counters: dict[str, dict[str, Any]]) -> None:
        self.counters = counters
        totals = Progress()
        for s in self.slots:
            now = counters.get(s.token, {})
            s.status.progress = _add(s.past, now)
            s.status.progress.started = prog.started
            s.status.cpu_s = s.past_cpu_s + float(now.get("cpu_s", 0.0))
            if now and s.status.state == "restarting":
                s.status.state, s.status.node, s.status.pid = "running", now["node"], now["pid"]
            totals = _add(totals, vars(s.status.progress))
        prog.done, prog.failed, prog.steps = totals.done, totals.failed, totals.steps
        prog.tokens, prog.requests = totals.tokens, totals.requests


def wait_gone(pid: int, timeout_s: float) -> bool:
    """Poll until process `pid` no longer exists (True) or `timeout_s` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # it exists, under another user
        time.sleep(0.02)
    return False


def _warn_if_short(cluster: dict[str, float], n: int, cpus: float, gpus: float) -> None:
    need = {"CPU": n * cpus, "GPU": n * gpus}
    short = [f"{need[k]:g} {k}s (the cluster has {cluster.get(k, 0):g})" for k in need
             if need[k] > cluster.get(k, 0)]
    if short:
        print(f"molspec: {n} replicas need {' and '.join(short)}; replicas wait until Ray can place them "
              "(an autoscaler may add nodes), or pass fewer --replicas", file=sys.stderr)


def _first_line(exc: BaseException) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def _add(p: Progress, c: dict[str, Any]) -> Progress:
    return Progress(done=p.done + int(c.get("done", 0)), failed=p.failed + int(c.get("failed", 0)),
                    steps=p.steps + int(c.get("steps", 0)), tokens=p.tokens + int(c.get("tokens", 0)),
                    requests=p.requests + int(c.get("requests", 0)), started=p.started)
