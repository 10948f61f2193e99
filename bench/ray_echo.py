"""Benchmark: the same echo build locally, on Ray with 1 replica, and on Ray with 2 replicas.

The workload is bench/build_echo.py's (S samples x T steps plus one answer step each, parquet written).
Ray starts once (`ray.init`, timed apart); each build then pays its own actor start-up, which is what a
user pays per `molspec build --executor ray` on a running cluster. Runs are interleaved; the best run
(least disturbed by other load) is compared, the median shown. CPU seconds (this process plus the
replicas' own `run`; Ray's raylet and GCS not counted) are steadier than wall time on a busy machine.

    .venv/bin/python bench/ray_echo.py [--samples 4000] [--steps 16] [--repeats 3] [--cpus 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ray  # noqa: E402
from build_echo import _write  # noqa: E402  (the same spec and questions as the local benchmark)

import molspec  # noqa: E402
from molspec.pipeline import (
    build,  # noqa: E402
    build_ray,  # noqa: E402
)
from molspec.runtime.build import BuildOptions, BuildResult  # noqa: E402
from molspec.runtime.ray_executor import ReplicaStatus  # noqa: E402


def _timed(fn: Callable[..., BuildResult], out: Path) -> tuple[float, float, BuildResult]:
    """Wall seconds, CPU seconds (this process + the replicas' `run`), the result."""
    seen: list[list[ReplicaStatus]] = []
    t, c = time.perf_counter(), time.process_time()
    res = fn(out, seen.append)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return wall, cpu + sum(s.cpu_s for s in seen[-1]) if seen else cpu, res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=4000)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cpus", type=int, default=2, help="CPUs given to the local Ray runtime")
    args = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    t = time.perf_counter()
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - t
    cpus = args.cpus / 2  # two replicas fill the runtime; one replica gets the same share
    with tempfile.TemporaryDirectory() as tmp:
        doc = molspec.load(_write(Path(tmp), args.samples, args.steps))
        runs: dict[str, Callable[..., BuildResult]] = {
            "local (molspec build)": lambda out, _cb: build(doc, BuildOptions(out=out)),
            "Ray, 1 replica": lambda out, cb: build_ray(doc, BuildOptions(out=out), replicas=1,
                                                        cpus_per_replica=cpus, on_replicas=cb),
            "Ray, 2 replicas": lambda out, cb: build_ray(doc, BuildOptions(out=out), replicas=2,
                                                         cpus_per_replica=cpus, on_replicas=cb),
            "local, 10 samples": lambda out, _cb: build(doc, BuildOptions(out=out, limit=10)),
            "Ray, 1 replica, 10 samples": lambda out, cb: build_ray(
                doc, BuildOptions(out=out, limit=10), replicas=1, cpus_per_replica=cpus, on_replicas=cb),
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        steps = 0
        for r in range(args.repeats):
            for k, (name, fn) in enumerate(runs.items()):
                wall, cpu_s, res = _timed(fn, Path(tmp) / f"out-{r}-{k}")
                times[name].append(wall)
                cpu[name].append(cpu_s)
                steps = max(steps, res.steps)
    ray.shutdown()
    best = {name: min(ts) for name, ts in times.items()}  # least disturbed by other load on the machine
    base = best["local (molspec build)"]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python "
          f"{platform.python_version()}, ray {ray.__version__}, load average {os.getloadavg()[0]:.1f}")
    print(f"ray.init(num_cpus={args.cpus}): {init_s:.1f} s (once, not in the rows below)")
    print(f"| what ({args.samples:,} samples x {args.steps} steps + answers) | best s | median s | runs | steps/s "
          "| vs local | CPU s (median) | CPU vs local |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    cpu_base = statistics.median(cpu["local (molspec build)"])
    for name, b in best.items():
        rate = f"{steps / b:,.0f}" if "10 samples" not in name else "-"
        runs_s = ", ".join(f"{t:.2f}" for t in times[name])
        c = statistics.median(cpu[name])
        print(f"| {name} | {b:.2f} | {statistics.median(times[name]):.2f} | {runs_s} | {rate} | {b / base:.2f}x "
              f"| {c:.2f} | {c / cpu_base:.2f}x |")
    fixed = best["Ray, 1 replica, 10 samples"] - best["local, 10 samples"]
    marginal = (best["Ray, 1 replica"] - best["Ray, 1 replica, 10 samples"]) / (base - best["local, 10 samples"])
    print(f"Ray 1 replica vs local (best runs): {best['Ray, 1 replica'] / base - 1:+.1%} in all; a fixed "
          f"{fixed:.2f} s per build (actor start-up, engine start, handshake), then {marginal - 1:+.1%} per sample")
    print(f"Ray 2 replicas vs 1 (best runs): {best['Ray, 1 replica'] / best['Ray, 2 replicas']:.2f}x as fast")
    med_cpu = {name: statistics.median(cs) for name, cs in cpu.items()}
    print(f"CPU seconds, Ray 1 replica vs local: {med_cpu['Ray, 1 replica'] / cpu_base - 1:+.1%} in all; "
          f"{med_cpu['Ray, 1 replica, 10 samples'] - med_cpu['local, 10 samples']:.2f} s fixed per build")

if __name__ == "__main__":
    main()
