"""Benchmark: compiling and sampling 1,000,000 walks of up to 64 steps.

The floor is numpy alone drawing the same number of uniform variates as the plan consumes
(samples x draws per sample), float64 from `np.random.default_rng()`, in the same run; best of 3 each.
Memory: the tracemalloc peak of materialising the whole plan (`Plan.walks()`), against the size of
its int8 bond matrix.

    .venv/bin/python bench/plan.py [--samples 1000000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import molspec
from molspec.plan.compile import Plan

HEAD = """\
molspec 1
dataset "bench/plan" {{ samples = {samples}  seed = 1 }}
source questions = jsonl("questions.jsonl")
model synth {{ engine = "echo"  name = "none" }}
bond explore : vdw "Self-exploration" {{ instruct = "Explore another way." }}
bond deep : covalent "Deep reasoning" {{ instruct = "Go one step deeper." }}
bond reflect : hydrogen "Self-reflection" {{ instruct = "Check an earlier step." }}
bond normal : plain "Normal operation" {{ instruct = "Do the next routine step." }}
"""
GRAPHS = {
    "uniform length (steps = 8..64)": """\
graph g {
  start   -> explore 1.0
  explore -> deep 0.50 | normal 0.25 | reflect 0.15 | explore 0.10
  deep    -> deep 0.45 | reflect 0.25 | normal 0.20 | explore 0.10
  reflect -> deep 0.40 | normal 0.30 | explore 0.20 | reflect 0.10
  normal  -> deep 0.50 | normal 0.25 | reflect 0.15 | explore 0.10
  steps = 8..64
}
""",
    "end weights (steps = 8..64)": """\
graph g {
  start   -> explore 0.7 | normal 0.3
  explore -> deep 0.50 | normal 0.25 | reflect 0.15 | explore 0.08 | end 0.02
  deep    -> deep 0.45 | reflect 0.23 | normal 0.20 | explore 0.08 | end 0.04
  reflect -> deep 0.40 | normal 0.28 | explore 0.20 | reflect 0.08 | end 0.04
  normal  -> deep 0.50 | normal 0.23 | reflect 0.15 | explore 0.08 | end 0.04
  steps = 8..64
}
""",
}


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, float]:
    """Least wall-clock and least CPU seconds over `repeat` runs (the machine may be shared)."""
    wall, cpu = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def write_spec(folder: Path, graph: str, samples: int) -> Path:
    (folder / "questions.jsonl").write_text("".join(json.dumps({"question": f"q{i}"}) + "\n" for i in range(100)))
    path = folder / "bench.mol"
    path.write_text(HEAD.format(samples=samples) + graph)
    return path


def compile_and_sample(path: Path) -> Plan:
    """What `molspec plan` does before printing: load, check, compile, and draw every walk."""
    plan = molspec.load(path).compile()
    for _ in plan.iter_walks(0, plan.samples):
        pass
    return plan


def peak_memory(path: Path) -> tuple[int, int]:
    """(tracemalloc peak while materialising every walk, bytes of the plan's int8 bond matrix)."""
    plan = molspec.load(path).compile()
    tracemalloc.start()
    walks = plan.walks()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, walks.bonds.nbytes


def run_case(name: str, graph: str, samples: int, repeat: int, folder: Path) -> dict[str, Any]:
    path = write_spec(folder, graph, samples)
    plan = compile_and_sample(path)  # warm-up: imports, grammar, caches
    n = plan.samples * plan.draws
    t_plan, c_plan = best_of(repeat, lambda: compile_and_sample(path))
    t_floor, c_floor = best_of(repeat, lambda: np.random.default_rng().random(n))
    peak, plan_bytes = peak_memory(path)
    return {"graph": name, "samples": plan.samples, "max_steps": plan.max_steps, "uniforms": n,
            "plan_s": round(t_plan, 3), "numpy_s": round(t_floor, 3), "ratio": round(t_plan / t_floor, 2),
            "plan_cpu_s": round(c_plan, 3), "numpy_cpu_s": round(c_floor, 3),
            "cpu_ratio": round(c_plan / c_floor, 2), "peak_mb": round(peak / 2**20, 1),
            "plan_mb": round(plan_bytes / 2**20, 1), "peak_over_plan": round(peak / plan_bytes, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_case(name, graph, args.samples, args.repeat, Path(tmp)) for name, graph in GRAPHS.items()]
    if args.json:
        print(json.dumps({"machine": machine(), "results": rows}, indent=2))
        return
    print(machine())
    print("| graph | walks | uniforms | molspec s | numpy s | ratio | CPU ratio | peak MiB | int8 plan MiB "
          "| peak / plan |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['graph']} | {r['samples']:,} | {r['uniforms']:,} | {r['plan_s']:.3f} | {r['numpy_s']:.3f} | "
              f"{r['ratio']:.2f}x | {r['cpu_ratio']:.2f}x | {r['peak_mb']} | {r['plan_mb']} | "
              f"{r['peak_over_plan']:.2f} |")


def machine() -> str:
    import os

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
