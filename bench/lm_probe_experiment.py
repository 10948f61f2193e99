"""Would a contextual language model's reading of a step lift the labeler? (bench/lm_probe_experiment.md)

Reads every labelled run of one split through SmolLM2-135M-Instruct (the embedded default model, on the CPU),
question first and the steps in order, in windows of 1,024 tokens that carry the 256 before them; per labelled
step it keeps the mean and the last token's hidden state of chosen layers, and the train-split `learned`
model's scores of the step (`tests/structure/fixtures/learned_train_split.json`, which never saw a held-out
question). Then it fits multinomial logistic regressions over those features (torch, L-BFGS) and prints
macro-F1 on held-out steps:

- `probe`: the LM features alone, trained on the train split;
- `summed`: the base model's and the probe's log-probabilities added (nothing fitted on held-out steps);
- `stacked`: a regression over both, 5-fold cross-validated on the held-out steps by question, against the
  base model alone recalibrated the same way.

    OPENBLAS_NUM_THREADS=2 .venv/bin/python bench/lm_probe_experiment.py extract heldout   # ~14 min on 2 cores
    OPENBLAS_NUM_THREADS=2 .venv/bin/python bench/lm_probe_experiment.py extract train     # ~45 min
    OPENBLAS_NUM_THREADS=2 .venv/bin/python bench/lm_probe_experiment.py evaluate
    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/lm_probe_experiment.py gate      # the causal model + the probe
    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/lm_probe_experiment.py across 'r1->qwq'   # ~8 min each (retrains)
    .venv/bin/python bench/lm_probe_experiment.py speed   # the reader with every layer vs the layers it reads, ~2 min

Needs torch and transformers (in `.venv`) and the converted model (`molspec build` converts it once).
"""

from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "scripts"))

from train_lm_probe import FEATURES, features  # noqa: E402  (scripts/: the same reading trains the shipped probe)

from molspec.structure.evaluate import report  # noqa: E402
from molspec.structure.label import BONDS  # noqa: E402
from molspec.structure.lm_probe import fit_probe, log_softmax  # noqa: E402

HIDDEN = 576
OUT = FEATURES  # the features are cached where scripts/train_lm_probe.py keeps them
Array = npt.NDArray[np.float64]


def fit(x: Array, y: npt.NDArray[np.int64], l2: float) -> tuple[Array, Array]:
    """`fit_probe`'s regression as raw weights and bias: `x @ w + b` is its score."""
    probe = fit_probe(x, y, l2)
    return probe.weights / probe.scale[:, None], probe.bias - (probe.mean / probe.scale) @ probe.weights


def macro(y: npt.NDArray[np.int64], pred: npt.NDArray[np.int64], mask: npt.NDArray[np.bool_]) -> str:
    r = report([BONDS[i] for i in y[mask]], [BONDS[i] for i in pred[mask]])
    per = " ".join(f"{b} {s.f1:.2f}" for b, s in r.per_class.items())
    return f"{r.macro_f1:.3f} ({per}; {int(mask.sum())} steps)"


def stacked(x: Array, y: npt.NDArray[np.int64], question: npt.NDArray[np.str_]) -> npt.NDArray[np.int64]:
    """5-fold cross-validated predictions on held-out steps, folds by question."""
    fold = np.array([zlib.crc32(q.encode()) % 5 for q in question])
    pred = np.zeros(len(y), dtype=np.int64)
    for k in range(5):
        w, b = fit(x[fold != k], y[fold != k], 1e-4)
        pred[fold == k] = (x[fold == k] @ w + b).argmax(axis=1)
    return pred


def evaluate() -> None:
    train, held = np.load(OUT / "train.npz"), np.load(OUT / "heldout.npz")
    y = held["gold"].astype(np.int64)
    masks = {"all": np.ones(len(y), dtype=bool), "teacher": held["teacher"] != "generated",
             "generated": held["teacher"] == "generated"}  # fmt: skip
    base = log_softmax(held["base"])
    recal = stacked(base, y, held["question"])
    print("base (train-split learned), as is:")
    for name, mask in masks.items():
        print(f"  {name}: {macro(y, base.argmax(axis=1), mask)}")
    for name, cols in (("layer 15", slice(0, 2 * HIDDEN)), ("layer 22", slice(2 * HIDDEN, 4 * HIDDEN)),
                       ("layers 15 + 22", slice(None))):  # fmt: skip
        xtr, xte = train["feats"][:, cols].astype(np.float64), held["feats"][:, cols].astype(np.float64)
        probe = fit_probe(xtr, train["gold"].astype(np.int64)).log_probs(xte)
        both = stacked(np.hstack([base, probe]), y, held["question"])
        print(f"{name}, probe trained on {len(xtr)} train steps:")
        for label, pred in (("probe alone", probe.argmax(axis=1)),
                            ("base + probe, summed", (base + probe).argmax(axis=1)),
                            ("base alone, recalibrated by CV on held-out", recal),
                            ("base + probe, stacked by CV on held-out", both)):  # fmt: skip
            print(f"  {label}:")
            for mname, mask in masks.items():
                print(f"    {mname}: {macro(y, pred, mask)}")


def as_the_gate_reads() -> None:
    """The train-split `learned-causal` read as the fidelity gate reads (each labelled step after every step
    before it, one at a time), alone and plus the train-split probe (whose reading is causal too)."""
    from molspec.structure import labelset
    from molspec.structure.labelset import FIXTURES
    from molspec.structure.learned import LearnedLabeler, Model
    from molspec.structure.lm_probe import Probe

    held = np.load(OUT / "heldout.npz")
    labeler = LearnedLabeler(Model.from_json((FIXTURES / "learned_causal_train_split.json").read_text()))
    probs: list[tuple[float, ...]] = []
    for run in (r for r in labelset.load().runs if r.split == "heldout"):
        walk = labeler.walk(run.question)
        for step, label in zip(run.steps, run.gold, strict=True):
            if label is None:
                walk = labeler.then(walk, step)
                continue
            _, walk, p = labeler.label_next([(walk, step)])[0]
            probs.append(p)
    base = np.log(np.array(probs) + 1e-12)
    probe = Probe.from_json((FIXTURES / "learned-lm_train_split.json").read_text())
    y = held["gold"].astype(np.int64)
    masks = {"all": np.ones(len(y), dtype=bool), "generated": held["teacher"] == "generated"}
    for label, z in (("learned-causal, as the gate reads", base),
                     ("learned-causal + probe", base + probe.log_probs(held["feats"].astype(np.float64)))):  # fmt: skip
        print(f"{label}:")
        for mname, mask in masks.items():
            print(f"    {mname}: {macro(y, z.argmax(axis=1), mask)}")


def across_teachers(view_name: str) -> None:
    """`learned` retrained on one teacher's runs (as bench/labelers.py does), the probe fitted on the same
    steps' cached features, both scored on the other teacher's runs ("r1->qwq" or "qwq->r1")."""
    from molspec.structure import labelset
    from molspec.structure.features import trace_inputs
    from molspec.structure.learned_fit import fit as fit_learned
    from molspec.structure.learned_fit import settings_for

    labels = labelset.load()
    rows: dict[tuple[str, str, str, int], np.ndarray] = {}  # (file, trace, unit, step) -> cached features
    for split in ("train", "heldout"):
        cached = np.load(OUT / f"{split}.npz")["feats"]
        k = 0
        for run in (r for r in labels.runs if r.split == split):
            for i, label in enumerate(run.gold):
                if label is not None:
                    rows[(run.file, run.trace_id, run.unit, i)] = cached[k]
                    k += 1
        assert k == len(cached)
    view = next(v for v in labelset.views(labels) if v.name == view_name)

    def table(runs: tuple[labelset.Run, ...]) -> tuple[Array, npt.NDArray[np.int64]]:
        keys = [(r.file, r.trace_id, r.unit, i, g) for r in runs for i, g in enumerate(r.gold) if g is not None]
        x = np.array([rows[k[:4]] for k in keys], dtype=np.float64)
        return x, np.array([BONDS.index(str(k[4])) for k in keys], dtype=np.int64)

    xtr, ytr = table(view.train)
    xte, y = table(view.test)
    probe = fit_probe(xtr, ytr).log_probs(xte)
    learned = fit_learned(view.train, settings_for(False))
    scores = learned.scores_many([trace_inputs(r.question, list(r.steps)) for r in view.test])
    base = log_softmax(np.vstack([z[[i for i, g in enumerate(r.gold) if g is not None]]
                                  for z, r in zip(scores, view.test, strict=True)]))  # fmt: skip
    every = np.ones(len(y), dtype=bool)
    print(f"{view_name}: {len(ytr)} training steps, {len(y)} test steps")
    for label, z in (("learned", base), ("probe", probe), ("learned + probe", base + probe)):
        print(f"  {label}: {macro(y, z.argmax(axis=1), every)}")


def speed(runs_read: int = 40, rounds: int = 3) -> None:
    """Tokens and steps per second (wall; a quiet machine) of `Reader.features` on the shortest held-out walks of
    SmolLM2 builds (what the gate reads): the model with all 30 layers against the one that ships (the layers
    after the last one read dropped). Each in its own process (two models in one process slow each other
    down), the best of `rounds` passes."""
    import subprocess

    best = {}
    for which in ("whole", "shipped"):
        out = subprocess.run([sys.executable, __file__, "speed-one", which, str(runs_read), str(rounds)],
                             capture_output=True, text=True, check=True).stdout.split()
        steps, tokens, seconds = int(out[-3]), int(out[-2]), float(out[-1])
        best[which] = seconds
        print(f"{which}: {tokens / seconds:,.0f} tokens/s, {steps / seconds:,.1f} steps/s wall "
              f"({steps} steps, {tokens:,} tokens, {runs_read} walks; best of {rounds})")
    print(f"shipped / all 30 layers: {best['whole'] / best['shipped']:.2f}x")


def speed_one(which: str, runs_read: int, rounds: int) -> None:
    import time

    from molspec.structure import labelset
    from molspec.structure.lm_probe import Reader, joiner_of, trace_text

    held = sorted((r for r in labelset.load().runs if r.split == "heldout" and r.file.startswith("generated/")),
                  key=lambda r: (len(r.steps), r.trace_id))[:runs_read]  # fmt: skip
    reader = Reader(whole=which == "whole")
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        for r in held:
            reader.features(r.question, r.steps, joiner_of(r.unit))
        times.append(time.perf_counter() - started)
    tokens = sum(len(reader.tokenizer(trace_text(r.question, r.steps, joiner_of(r.unit))[0],
                                      add_special_tokens=False)["input_ids"]) for r in held)  # fmt: skip
    print(sum(len(r.steps) for r in held), tokens, min(times))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("extract", "evaluate", "gate", "across", "speed", "speed-one"))
    ap.add_argument("split", nargs="?", default="heldout",
                    choices=("heldout", "train", "r1->qwq", "qwq->r1", "whole", "shipped"),
                    help="extract: the split to read; across: the view; speed-one: the reader")
    ap.add_argument("more", nargs="*", help=argparse.SUPPRESS)  # speed-one: the reader, walks, rounds
    args = ap.parse_args()
    if args.what == "extract":
        features(args.split, OUT)
    elif args.what == "across":
        across_teachers(args.split)
    elif args.what == "speed":
        speed()
    elif args.what == "speed-one":
        speed_one(args.split, *map(int, args.more))
    else:
        evaluate() if args.what == "evaluate" else as_the_gate_reads()


if __name__ == "__main__":
    main()
