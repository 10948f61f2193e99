"""Train the `learned-lm` labeler's probe from the hand labels (same labels and features -> same weights file).

    .venv/bin/python scripts/train_lm_probe.py                 # all labels -> structure/weights/learned-lm.json
    .venv/bin/python scripts/train_lm_probe.py --split train \\
        --out tests/structure/fixtures/learned-lm_train_split.json   # the held-out probe the tests score

It reads every labelled run through the built-in SmolLM2-135M (`structure.lm_probe.Reader`; ~14 min for the
held-out split and ~45 min for the train split on 2 cores) and keeps the features under `--features`
(default /tmp/molspec-lm-probe/<split>.npz; `bench/lm_probe_experiment.py` reads and writes the same files),
so a second run only fits (~1 min). With `--split train`, the held-out steps are scored and printed.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from molspec.structure import labelset  # noqa: E402
from molspec.structure.evaluate import report  # noqa: E402
from molspec.structure.features import trace_inputs  # noqa: E402
from molspec.structure.label import BONDS  # noqa: E402
from molspec.structure.labelset import FIXTURES  # noqa: E402
from molspec.structure.learned import Model, weights_path  # noqa: E402
from molspec.structure.lm_probe import NAME, Reader, fit_probe, joiner_of, log_softmax  # noqa: E402

FEATURES = Path("/tmp/molspec-lm-probe")


def features(split: str, cache: Path) -> dict[str, np.ndarray]:
    """The cached features of `split`'s labelled steps, read through the model first if not cached."""
    path = cache / f"{split}.npz"
    if not path.exists():
        reader, base = Reader(), Model.from_json((FIXTURES / "learned_train_split.json").read_text())
        feats, scores, gold, question, teacher = [], [], [], [], []
        runs = [r for r in labelset.load().runs if r.split == split]
        for k, run in enumerate(runs):
            f = reader.features(run.question, run.steps, joiner_of(run.unit))
            z = base.scores(trace_inputs(run.question, list(run.steps)))
            for i, label in enumerate(run.gold):
                if label is None:
                    continue
                feats.append(f[i])
                scores.append(z[i])  # the train-split `learned` model's, for the held-out score and the bench
                gold.append(BONDS.index(label))
                question.append(run.trace_id.split("/", 1)[-1])
                teacher.append(run.teacher)
            print(f"{split}: {k + 1}/{len(runs)} runs", flush=True)
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, feats=np.array(feats, dtype=np.float32), base=np.array(scores), gold=np.array(gold),
                 question=np.array(question), teacher=np.array(teacher))  # fmt: skip
    loaded = np.load(path)
    return {k: loaded[k] for k in loaded.files}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=("all", "train"), default="all", help="train on all labels or the train split")
    ap.add_argument("--out", type=Path, default=None, help="weights file (default: the shipped one)")
    ap.add_argument("--features", type=Path, default=FEATURES, help="where the features are cached")
    args = ap.parse_args(argv)
    parts = [features("train", args.features)] + ([features("heldout", args.features)] if args.split == "all" else [])
    x = np.vstack([p["feats"] for p in parts]).astype(np.float64)
    y = np.concatenate([p["gold"] for p in parts]).astype(np.int64)
    counts = Counter(BONDS[i] for i in y.tolist())
    probe = fit_probe(x, y, info={"labelled_steps": len(y), "class_counts": dict(counts), "split": args.split})
    out = args.out or weights_path(NAME)
    out.write_text(probe.to_json(), encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size:,} bytes) from {len(y):,} labelled steps")
    if args.split == "train":
        held = features("heldout", args.features)
        summed = log_softmax(held["base"]) + probe.log_probs(held["feats"].astype(np.float64))
        gold = [BONDS[i] for i in held["gold"].tolist()]
        print("held-out, `learned` (train split) + this probe:")
        print(report(gold, [BONDS[i] for i in summed.argmax(axis=1).tolist()]).table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
