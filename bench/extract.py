"""Benchmark of `molspec extract` stages: segmentation, cue labelling and estimation.

Synthesises N traces of about S steps each (default 10,000 x 50), by resampling real steps from
../shared/data/traces when that folder exists (the text stays in memory, nothing is written), or
from generated sentences otherwise, then times each stage and prints a small table.

    .venv/bin/python bench/extract.py [--traces 10000] [--steps 50] [--workers 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from molspec.structure.estimate import GraphCounter  # noqa: E402
from molspec.structure.label import BONDS, CueLabeler  # noqa: E402
from molspec.structure.segment import segment  # noqa: E402
from molspec.structure.traces import read_traces  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "traces"
_OPENERS = ["Wait,", "So", "Therefore,", "Alternatively,", "Let me check:", "Now", "Hmm,", "First,", "Then"]
_BODIES = [
    "x = {a} + {b} = {c}, so the sum is {c}.",
    "maybe we can try the case n = {a} and see what happens to the remainder.",
    "substituting y = {b} gives {c} = {a} + y, which means the equation holds.",
    "the problem asks for the number of ways to choose {a} items from {c}.",
    "that does not look right, since {a} times {b} is not {c}.",
]


def real_steps() -> list[str]:
    """Every step of the shared sample traces, under the default segmentation."""
    steps: list[str] = []
    for path in sorted(SHARED.glob("*.jsonl")):
        for trace in read_traces(path):
            steps += [s.text for s in segment(trace.thinking)]
    return steps


def generated_steps(rng: random.Random, n: int = 5000) -> list[str]:
    """Filler steps when the real traces are absent: cue + template sentences, 150-600 chars."""
    out = []
    for _ in range(n):
        parts = []
        while sum(len(p) for p in parts) < rng.randint(150, 600):
            a, b = rng.randint(1, 99), rng.randint(1, 99)
            body = rng.choice(_BODIES).format(a=a, b=b, c=a + b)
            parts.append(f"{rng.choice(_OPENERS)} {body}")
        out.append(" ".join(parts))
    return out


def synthesise(n_traces: int, n_steps: int, seed: int) -> tuple[list[str], str]:
    rng = random.Random(seed)
    pool, origin = (real_steps(), "resampled real steps") if SHARED.exists() else ([], "")
    if not pool:
        pool, origin = generated_steps(rng), "generated text"
    return ["\n\n".join(rng.choices(pool, k=n_steps)) for _ in range(n_traces)], origin


_TEXTS: list[str] = []  # set before the worker pool forks, so workers read it without pickling


@dataclass
class ChunkResult:
    """What a worker sends back: counts (not labels) and CPU seconds per stage."""

    counter: GraphCounter
    segment_s: float
    label_s: float
    count_s: float
    steps: int


def run_chunk(part: tuple[int, int]) -> ChunkResult:
    """Segment, label and count every `stride`-th text from `offset` (CPU time per stage, so the
    numbers hold on a busy machine too)."""
    offset, stride = part
    texts = _TEXTS[offset::stride]
    t0 = time.process_time()
    steps = [[s.text for s in segment(t)] for t in texts]
    t1 = time.process_time()
    labels = CueLabeler().label_many([(None, s) for s in steps])
    t2 = time.process_time()
    counter = GraphCounter(BONDS)
    for bonds in labels:
        counter.add(bonds)
    t3 = time.process_time()
    return ChunkResult(counter, t1 - t0, t2 - t1, t3 - t2, sum(len(s) for s in steps))


def merge(counters: Sequence[GraphCounter]) -> GraphCounter:
    total = GraphCounter(BONDS)
    for c in counters:
        total.start += c.start
        total.pairs += c.pairs
        total.ends += c.ends
        total.lengths += c.lengths
    return total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--traces", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="processes (fork) for segment + label + count")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    t = time.perf_counter()
    texts, origin = synthesise(args.traces, args.steps, args.seed)
    _TEXTS[:] = texts
    synth_s = time.perf_counter() - t
    chars = sum(len(x) for x in texts)

    wall = time.perf_counter()
    parts = [(i, args.workers) for i in range(args.workers)]
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("fork")) as pool:
            results = list(pool.map(run_chunk, parts))
    else:
        results = [run_chunk(parts[0])]
    t = time.perf_counter()
    graph = merge([r.counter for r in results]).graph(alpha=0.5)
    merge_s = time.perf_counter() - t
    total_wall = time.perf_counter() - wall

    n = sum(r.steps for r in results)
    seg, lab = sum(r.segment_s for r in results), sum(r.label_s for r in results)
    est = sum(r.count_s for r in results) + merge_s
    cpu = seg + lab + est
    load = os.getloadavg()[0]
    print(f"{args.traces:,} traces, {n:,} steps, {chars / 1e6:.1f} M chars ({origin}; built in {synth_s:.1f} s)")
    print(f"{'stage':<16} {'cpu s':>8} {'steps/s':>10}")
    for name, sec in (("segment", seg), ("label (cue)", lab), ("estimate", est), ("all stages", cpu)):
        print(f"{name:<16} {sec:8.2f} {n / sec:10,.0f}")
    print(f"wall clock, {args.workers} workers: {total_wall:.1f} s (load average {load:.1f} on {os.cpu_count()} CPUs)")
    print("bond shares: " + ", ".join(f"{b} {p:.3f}" for b, p in zip(graph.bonds, graph.shares, strict=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
