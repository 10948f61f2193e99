"""The Ray actors of `--executor ray`: the shard coordinator and the engine replicas.

A replica owns one engine and runs the ordinary wavefront scheduler over shards it pulls from the
coordinator; every row is journalled (fsynced) before its shard is reported finished, so the driver can
re-queue exactly the samples a dead replica had not written. The driver is molspec/runtime/ray_executor.py.
"""

from __future__ import annotations

import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from molspec.engines import Engine, EngineError, create
from molspec.records import Failure, Row
from molspec.runtime.build import Prepared, jobs
from molspec.runtime.cache import CachedEngine, StepCache, cached, engine_identity
from molspec.runtime.runconfig import Job, Progress, RunConfig
from molspec.runtime.scheduler import run
from molspec.runtime.store import Store

REPORT_EVERY_S = 0.5
Shard = tuple[int, tuple[int, ...]]  # (shard id, sample indices)


@dataclass
class ReplicaStatus:
    """What the driver knows about one replica slot (for progress displays and tests).

    Attributes:
        slot: the replica number k; attempt: restarts so far (the journal writer is replica-<k>-<attempt>).
        state: starting, running, idle, restarting or failed.
        name: the Ray actor name (`ray.get_actor(name)`); node, pid: where the current attempt runs.
        progress: samples journalled (done, failed), steps and tokens generated, over all attempts.
        cpu_s: CPU seconds the replica processes spent in `run`, over all attempts.
    """

    slot: int
    name: str
    attempt: int = 0
    state: str = "starting"
    node: str = ""
    pid: int = 0
    progress: Progress = field(default_factory=Progress)
    cpu_s: float = 0.0


class Coordinator:
    """The shard queue and who holds what (a Ray actor; every call is quick)."""

    def __init__(self, queue: list[Shard]) -> None:
        self.queue: deque[Shard] = deque(queue)
        self.leases: dict[str, dict[int, tuple[int, ...]]] = {}
        self.released: set[str] = set()
        self.counters: dict[str, dict[str, Any]] = {}

    def next_shard(self, token: str) -> Shard | None:
        if token in self.released or not self.queue:
            return None  # a replica declared dead gets nothing more, even if it still runs
        sid, indices = self.queue.popleft()
        self.leases.setdefault(token, {})[sid] = indices
        return sid, indices

    def report(self, token: str, counters: dict[str, Any], completed: list[int]) -> None:
        self.counters[token] = counters
        for sid in completed:
            self.leases.get(token, {}).pop(sid, None)

    def release(self, token: str) -> list[Shard]:
        """Forget a dead replica's leases and return them."""
        self.released.add(token)
        return list(self.leases.pop(token, {}).items())

    def requeue(self, items: list[Shard]) -> None:
        self.queue.extendleft(reversed(items))

    def snapshot(self) -> dict[str, Any]:
        return {"queued": len(self.queue), "leased": sum(len(v) for v in self.leases.values()),
                "counters": dict(self.counters)}


class Replica:
    """One engine and the wavefront scheduler (a Ray actor). The engine starts with the actor."""

    def __init__(self, engine: str, model: str, options: dict[str, Any], seed: int) -> None:
        self.engine: Engine | None = None
        self.error: str | None = None
        try:
            self.engine = create(engine, model, options, seed)
        except EngineError as err:
            self.error = err.message

    def ready(self, marker: str) -> dict[str, Any]:
        """Whether the engine started, what it is, where this process runs, and whether it sees the output."""
        return {"error": self.error, "engine": self.engine.describe() if self.engine else None,
                "pid": os.getpid(), "node": socket.gethostname(), "sees_output": Path(marker).exists()}

    def run(self, p: Prepared, coordinator: Any, token: str, out: str, cfg: RunConfig,
            cache: str | None = None) -> dict[str, Any]:
        """Pull shards until the queue is empty; every finished row is journalled before it is reported.

        With `cache` (the step cache's main file: the build's, or its variant group's), requests go through
        the step cache: this replica reads every cache file there and appends to its own
        (`cache/replica-<token>.jsonl` beside the main file)."""
        if self.engine is None:
            raise EngineError(self.error or "the engine did not start")
        tally = _Tally(coordinator, token)
        tally.report(final=True)  # the driver learns this process's pid before any journal line is written
        store = Store(Path(out), writer=f"replica-{token}", build=p.key().digest())
        steps = StepCache.open(Path(cache), writer=f"replica-{token}") if cache else None
        engine: Engine = self.engine
        if steps is not None:
            tally.cache = cached(engine, steps, engine_identity(p.engine, p.model, p.options, p.plan.seed))
            engine = tally.cache
        try:
            run(p.spec, engine, tally.jobs(p), cfg, tally.emitter(store), tally.progress,
                on_round=lambda _p: tally.report())
        finally:
            try:
                if steps is not None:
                    steps.close()
            finally:
                store.close()
        tally.report(final=True)
        return tally.counters()


class _Tally:
    """A replica's side of the bookkeeping: which shard each live sample came from, and its counters."""

    def __init__(self, coordinator: Any, token: str) -> None:
        self.coord, self.token = coordinator, token
        self.progress = Progress()
        self.owner: dict[int, int] = {}
        self.left: dict[int, int] = {}
        self.completed: list[int] = []
        self.done = self.failed = 0
        self.cache: CachedEngine | None = None
        self.last = 0.0
        self.cpu0 = time.process_time()

    def jobs(self, p: Prepared) -> Iterator[Job]:
        import ray

        while (shard := ray.get(self.coord.next_shard.remote(self.token))) is not None:
            sid, indices = shard
            self.left[sid] = len(indices)
            self.owner.update(dict.fromkeys(indices, sid))
            yield from jobs(p, list(indices))

    def emitter(self, store: Store) -> Callable[[list[Row | Failure]], None]:
        def emit(rows: list[Row | Failure]) -> None:
            store.append(rows)  # durable first: a lease is released only for journalled samples
            for r in rows:
                self.failed += isinstance(r, Failure)
                sid = self.owner.pop(r.sample_index)
                self.left[sid] -= 1
                if not self.left[sid]:
                    del self.left[sid]
                    self.completed.append(sid)
            self.done += sum(isinstance(r, Row) for r in rows)
        return emit

    def counters(self) -> dict[str, Any]:
        import ray

        pr = self.progress
        return {"done": self.done, "failed": self.failed, "steps": pr.steps, "tokens": pr.tokens,
                "requests": pr.requests, "cache_hits": self.cache.hits if self.cache else 0,
                "cache_misses": self.cache.misses if self.cache else 0, "pid": os.getpid(),
                "node": socket.gethostname(),
                "node_id": ray.get_runtime_context().get_node_id(), "cpu_s": time.process_time() - self.cpu0}

    def report(self, final: bool = False) -> None:
        now = time.perf_counter()
        if not final and now - self.last < REPORT_EVERY_S:
            return
        self.last = now
        ref = self.coord.report.remote(self.token, self.counters(), self.completed)
        self.completed = []
        if final:
            import ray

            ray.get(ref)
