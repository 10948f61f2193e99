"""Benchmark (a): orchestration overhead of `molspec build` with the echo engine.

10,000 samples x 16 steps (plus one answer step each), including writing the parquet dataset, against
the echo engine alone answering the same number of requests with the same prompts (the floor). Each build
is timed whole (wall and CPU: on a shared machine CPU time is the steadier number), and its card (labelled
rows and heatmaps, written at the end of every build) is timed again on its own, to show its share.

    .venv/bin/python bench/build_echo.py [--samples 10000] [--steps 16] [--gate off|on|both]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import molspec
from molspec.engines import Request, SamplingParams, create
from molspec.pipeline import build, write_card_of
from molspec.runtime.build import BuildOptions

# The bonds and graph every build benchmark uses (bench/build_vllm.py and bench/ray_echo.py import it).
BODY = """\
bond explore : vdw "Self-exploration" {{ instruct = "Explore another way." }}
bond deep : covalent "Deep reasoning" {{ instruct = "Go one step deeper." }}
bond reflect : hydrogen "Self-reflection" {{ instruct = "Check an earlier step." }}
bond normal : plain "Normal operation" {{ instruct = "Do the next routine step." }}
graph g {{
  start   -> explore 1.0
  explore -> deep 0.5 | normal 0.3 | reflect 0.2
  deep    -> deep 0.4 | reflect 0.3 | normal 0.2 | explore 0.1
  reflect -> deep 0.5 | normal 0.3 | explore 0.2
  normal  -> deep 0.6 | reflect 0.2 | explore 0.2
  steps = {steps}..{steps}
}}
"""
SPEC = """\
molspec 1
dataset "bench/echo" {{ samples = {samples}  seed = 1 }}
source questions = jsonl("questions.jsonl")
model synth {{ engine = "echo"  name = "none"  max_tokens = 64 }}
""" + BODY + """answer {{ verify = "math" }}
"""


def _write(folder: Path, samples: int, steps: int) -> Path:
    with (folder / "questions.jsonl").open("w") as fh:
        for i in range(500):
            fh.write(json.dumps({"question": f"What is {i} times 3?", "gold": str(3 * i)}) + "\n")
    spec = folder / "bench.mol"
    spec.write_text(SPEC.format(samples=samples, steps=steps))
    return spec


def _floor(n_requests: int) -> float:
    """Seconds for the echo engine alone to answer n requests of a typical prompt size, in batches."""
    eng = create("echo", None, {}, 0)
    prompt = "Problem: What is 7 times 3?\n\n" + "Reasoning so far: one step of text. " * 40
    reqs = [Request(key=str(i), messages=({"role": "user", "content": prompt},), params=SamplingParams(max_tokens=64),
                    meta={"sample": i, "step": 0, "bond": "deep", "kind": "covalent"}) for i in range(4096)]
    t = time.perf_counter()
    done = 0
    while done < n_requests:
        eng.generate(reqs[: min(4096, n_requests - done)])
        done += 4096
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--gate", choices=("off", "on", "both"), default="both")
    args = ap.parse_args()
    gates = {"off": (False,), "on": (True,), "both": (False, True)}[args.gate]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        spec = _write(Path(tmp), args.samples, args.steps)
        for gate in gates:  # the echo engine's text never reads as its bond: gate on = every retry taken
            out = Path(tmp) / f"out-{gate}"
            t, cpu = time.perf_counter(), time.process_time()
            res = build(molspec.load(spec), BuildOptions(out=out, gate=gate))
            wall, cpu = time.perf_counter() - t, time.process_time() - cpu
            t = time.perf_counter()
            write_card_of(out)  # the card again, alone: its share of the build
            card = time.perf_counter() - t
            retries = res.fidelity.retries if res.fidelity else 0
            rows.append((gate, wall, cpu, card, res, res.steps + retries + res.done))
    floor = _floor(rows[0][5])
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, python "
          f"{platform.python_version()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| what | seconds | CPU seconds | of which card | steps/s | engine requests | ratio to echo alone |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for gate, wall, cpu, card, res, requests in rows:
        print(f"| molspec build, echo, gate {'on' if gate else 'off'} ({args.samples:,} samples x {args.steps} steps "
              f"+ answers, parquet and card written) | {wall:.2f} | {cpu:.2f} | {card:.2f} | {res.steps / wall:,.0f} | "
              f"{requests:,} | {wall / floor:.1f}x |")
    print(f"| echo engine alone, the first build's requests ({rows[0][5]:,}) | {floor:.2f} | | | "
          f"{rows[0][4].steps / floor:,.0f} | {rows[0][5]:,} | 1.0x |")


if __name__ == "__main__":
    main()
