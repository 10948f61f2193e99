"""Train the `learned` labeler from the hand labels, reproducibly (same labels -> same weights file).

    .venv/bin/python scripts/train_labeler.py                      # all labels -> the shipped weights
    .venv/bin/python scripts/train_labeler.py --blind              # the same for learned-blind
    .venv/bin/python scripts/train_labeler.py --causal             # the same for learned-causal (left side only)
    .venv/bin/python scripts/train_labeler.py --split train \\
        --out tests/structure/fixtures/learned_train_split.json    # the held-out model the tests score

Labels: tests/structure/fixtures/hand_labels.jsonl and tests/structure/fixtures/labels/*.jsonl, with
offsets into ../shared/data/traces (see molspec/structure/labelset.py). With `--split train` the
held-out traces are scored and printed; with `--split all` nothing is held out, so no score is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

# Before numpy loads: BLAS threads oversubscribe a small machine on these small products (2 cores: 6-10 min
# to train one labeler with the default threads, 2-4 min with one).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from molspec.structure import labelset  # noqa: E402
from molspec.structure.evaluate import report  # noqa: E402
from molspec.structure.learned import LearnedLabeler, weights_path  # noqa: E402
from molspec.structure.learned_fit import fit, settings_for  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=("all", "train"), default="all", help="train on all labels or the train split")
    ap.add_argument("--out", type=Path, default=None, help="weights file (default: the shipped one)")
    ap.add_argument("--labels", type=Path, nargs="*", default=None, help="label files (default: all of them)")
    ap.add_argument("--max-runs", type=int, default=None, help="train on the first N runs only (quick checks)")
    ap.add_argument("--steps", type=int, default=None, help="optimiser steps (default: the labeler's setting)")
    ap.add_argument("--blind", action="store_true", help="the learned-blind labeler (no opening discourse markers)")
    ap.add_argument("--causal", action="store_true", help="the learned-causal labeler (steps before each step only)")
    args = ap.parse_args(argv)
    if args.blind and args.causal:
        ap.error("--blind and --causal are separate labelers; pick one")
    name = "learned-blind" if args.blind else "learned-causal" if args.causal else "learned"

    labels = labelset.load(args.labels)
    runs = [r for r in labels.runs if args.split == "all" or r.split == "train"][: args.max_runs]
    settings = settings_for(args.blind, args.causal)
    model = fit(runs, settings if args.steps is None else replace(settings, steps=args.steps))
    model.info["split"] = args.split
    model.info["questions"] = sorted({r.trace_id.split("/", 1)[-1] for r in runs})
    out = args.out or weights_path(name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(model.to_json() + "\n", encoding="utf-8")
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(labels.skipped.items())) or "none"
    print(
        f"trained on {model.info['labelled_steps']} labelled steps of {len(runs)} runs ({args.split}); "
        f"skipped rows: {skipped}"
    )
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, vocabulary {len(model.keys)} keys, {len(model.words)} tokens)"
    )
    if args.split == "train":
        held = [r for r in labels.runs if r.split == "heldout"]
        labeler = LearnedLabeler(model, name=name)
        gold, pred = labelset.gold_and_predicted(held, labelset.predict(labeler, held))
        print(f"\nheld-out traces ({len(gold)} steps)\n{report(gold, pred).table()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
