"""Experiment (not shipped): does up-weighting the labels of lead builds make learned-causal read lead text the way
people do? Train on every label but the seed-9 builds' (the lead builds' runs repeated K times), and score on the
seed-9 builds (762 steps, first reader) as the gate reads: each step after every step before it. K=0 scores the
shipped weights. Results: BENCHMARKS.md, "The current leads with the gate off and on". ~6-8 min per fit.

    .venv/bin/python bench/lead_weight_experiment.py K
"""
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from molspec.structure import labelset  # noqa: E402
from molspec.structure.evaluate import report  # noqa: E402
from molspec.structure.labelset import Run  # noqa: E402
from molspec.structure.learned import LearnedLabeler  # noqa: E402
from molspec.structure.learned_fit import fit, settings_for  # noqa: E402


def lead_build(r: Run) -> bool:
    return r.teacher == "generated" and any(f"/{p}-" in r.trace_id for p in ("leads", "s8", "s9"))


def score(labeler: LearnedLabeler, test: list[Run], name: str) -> None:
    gold: list[str] = []
    pred: list[str] = []
    for r in test:
        walk = labeler.walk(r.question)
        for step, g in zip(r.steps, r.gold, strict=True):
            label, walk, _probs = labeler.label_next([(walk, step)])[0]
            if g:
                gold.append(g)
                pred.append(label)
    rep = report(gold, pred)
    agree = sum(a == b for a, b in zip(gold, pred, strict=True)) / len(gold)
    print(f"{name}: agreement {agree:.3f} macro-F1 {rep.macro_f1:.3f}\n{rep.table()}", flush=True)


def main() -> None:
    k = int(sys.argv[1])
    labels = labelset.load()
    test = [r for r in labels.runs if r.teacher == "generated" and "/s9-" in r.trace_id]
    train = [r for r in labels.runs if r not in test for _ in range(k if lead_build(r) else 1)]
    print("test runs", len(test), "steps", sum(r.n_labelled for r in test), "train runs", len(train), flush=True)
    if k == 0:
        score(LearnedLabeler(name="learned-causal"), test, "shipped learned-causal")
        return
    t = time.time()
    model = fit(train, settings_for(False, True))
    print("fit", round(time.time() - t), "s", flush=True)
    score(LearnedLabeler(model, name="learned-causal"), test, f"retrained, lead builds x{k}")


if __name__ == "__main__":
    main()
