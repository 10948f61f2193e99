"""Benchmark: the fidelity gate on a real model. The quickstart spec, N samples, built twice with the same
seed on the same engine: gate off, then gate on. For each build it reports hygiene (steps cut mid-sentence,
echoing the frame, near-duplicates, empty), labelled fidelity per bond by a labeler OTHER than the gate's
(Goodhart check), the share of steps that open with a cue word, engine calls and wall time.

    .venv/bin/python bench/fidelity.py [--samples 32] [--spec examples/quickstart.mol] [--seed 7] [--engine vllm]
        [--model builtin:smollm2-135m-instruct] [--judge cue,learned-blind] [--out /tmp/fidelity]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import molspec  # noqa: E402
from molspec.records import Row, Step  # noqa: E402
from molspec.runtime.build import BuildOptions, BuildResult  # noqa: E402
from molspec.runtime.hygiene import SENTENCE_END, echoes, frame_of, near_duplicate  # noqa: E402
from molspec.structure.label import BOND_KINDS, get_labeler  # noqa: E402

CUE_OPENERS = re.compile(r"^\W*(wait|alternatively|hmm|but|let me (check|verify|double)|actually|another|"
                         r"therefore|so|first|next|now)\b", re.I)
FRAME = "You are writing one step of a long, careful chain of thought that solves the problem below."


def spec_text(samples: int, path: Path = ROOT / "examples" / "quickstart.mol", seed: int = 7) -> str:
    text = path.read_text()
    text = text.replace("samples = 8", f"samples = {samples}").replace("seed = 7", f"seed = {seed}")
    return text.replace('jsonl("data/gsm8k.jsonl")', f'jsonl("{ROOT / "examples" / "data" / "gsm8k.jsonl"}")')


def one(spec: Path, out: Path, gate: bool, engine: str, model: str) -> tuple[BuildResult, float, list[Row]]:
    from molspec.pipeline import build
    from molspec.records import read_manifest
    from molspec.structure.rows import read_rows

    t = time.perf_counter()
    res = build(molspec.load(spec), BuildOptions(out=out, engine=engine, model=model, gate=gate, fresh=True,
                                                    cache=False))  # a rerun must generate every step again
    return res, time.perf_counter() - t, read_rows(out, read_manifest(out))


def judged(rows: list[Row], judge: str) -> dict[str, object]:
    """Fidelity as another labeler reads the text: overall and per bond."""
    steps = [s for r in rows for s in r.steps]
    labeler = get_labeler(judge)
    labels = [lab for r in rows for lab in labeler.label(r.question, [s.text for s in r.steps])]
    kinds = {"explore": "vdw", "deep": "covalent", "reflect": "hydrogen", "normal": "plain"}
    hit: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for s, lab in zip(steps, labels, strict=True):
        seen[s.bond] += 1
        hit[s.bond] += BOND_KINDS[lab] == kinds.get(s.bond, s.bond)
    return {f"fidelity[{judge}]": round(sum(hit.values()) / max(len(steps), 1), 3),
            f"per_bond[{judge}]": {b: round(hit[b] / seen[b], 3) for b in sorted(seen)}}


def own(step: Step) -> str:
    """The words the model wrote: the step without the spec's lead."""
    return step.text[len(step.lead):] if step.lead else step.text


def measure(rows: list[Row], judges: list[str], calls: int, wall: float) -> dict[str, object]:
    steps = [(r, i, s) for r in rows for i, s in enumerate(r.steps)]
    n = max(len(steps), 1)
    cut = sum(bool(s.text) and not SENTENCE_END.search(s.text[-3:] + " ") for _r, _i, s in steps)
    echo = sum(echoes(s.text, frame_of(FRAME, r.question, [])) or echoes(s.text, r.question) for r, _i, s in steps)
    # the model's own words: a spec's lead (examples/quickstart.mol) opens a step and may quote an earlier one
    dup = sum(any(near_duplicate(own(s), own(e)) for e in r.steps[:i]) for r, i, s in steps)
    return {
        "steps": len(steps), "engine_calls": calls, "wall_s": round(wall, 1),
        "cut_mid_sentence": round(cut / n, 3), "echo": round(echo / n, 3), "near_duplicate": round(dup / n, 3),
        "empty": round(sum(not s.text.strip() for _r, _i, s in steps) / n, 3),
        "opens_with_cue_word": round(sum(bool(CUE_OPENERS.match(s.text)) for _r, _i, s in steps) / n, 3),
        "opens_with_a_lead": round(sum(bool(s.lead) for _r, _i, s in steps) / n, 3),
        "model_words_open_with_cue_word": round(sum(bool(CUE_OPENERS.match(own(s))) for _r, _i, s in steps) / n, 3),
        **{k: v for judge in judges for k, v in judged(rows, judge).items()},
        "fidelity[gate's labeler]": round(sum(r.fidelity or 0 for r in rows) / max(len(rows), 1), 3),
        "accuracy": round(sum(bool(r.correct) for r in rows) / max(len(rows), 1), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--spec", type=Path, default=ROOT / "examples" / "quickstart.mol",
                    help="a spec in examples/ with `samples = 8` "
                         "(examples/quickstart-frame.mol: the baseline, without leads)")
    ap.add_argument("--seed", type=int, default=7, help="the dataset's seed (the spec's is 7)")
    ap.add_argument("--engine", default="vllm")
    ap.add_argument("--model", default="builtin:smollm2-135m-instruct")
    ap.add_argument("--judge", default="cue,learned-blind",
                    help="comma-separated labelers that score fidelity (the gate uses learned)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/molspec-fidelity"))
    ap.add_argument("--builds", default="off,on", help="which builds to run: off, on, or both (off,on)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    spec = args.out / args.spec.name
    spec.write_text(spec_text(args.samples, args.spec, args.seed))
    report = {}
    for gate in [g == "on" for g in args.builds.split(",")]:
        res, wall, rows = one(spec, args.out / ("gate-on" if gate else "gate-off"), gate, args.engine, args.model)
        calls = sum(s.attempts for r in rows for s in r.steps) + len(rows)
        report["gate on" if gate else "gate off"] = measure(rows, args.judge.split(","), calls, wall)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
