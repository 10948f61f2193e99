"""Fixed prior against EM-estimated label shares (Saerens et al. 2002) for the `learned` labelers.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/prior_experiment.py fit      # train, cache raw scores
    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/prior_experiment.py report   # the tables, from the cache

`fit` trains the learned model (and the causal one) with prior 0 once per distinct training set: the train
split, all R1, all QwQ, and three cross-validation models on two thirds of the train split (by question,
with a hash other than `learned_fit`'s inner folds) each scoring the third it did not see. It stores every
run's raw last-stage scores. `report` decides on those scores by: a fixed prior p (p * log training shares
added, as `FitSettings.prior` adds it to the last stage's bias); or shares estimated by EM on the set being
labelled, over all its steps (labelled or not), as `label_many` would see them. EM settings are chosen on
the cross-validation scores of the train split only, then applied unchanged to every view.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from itertools import product
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from molspec.structure import labelset  # noqa: E402
from molspec.structure.evaluate import Report, report  # noqa: E402
from molspec.structure.features import trace_inputs  # noqa: E402
from molspec.structure.label import BONDS  # noqa: E402
from molspec.structure.labelset import Run  # noqa: E402
from molspec.structure.learned import Matrix, softmax  # noqa: E402
from molspec.structure.learned_fit import fit, settings_for  # noqa: E402

CACHE = Path("/tmp/molspec_prior_em")
K = len(BONDS)
CV_FOLDS = 3


def cv_fold(run: Run) -> int:
    """Outer cross-validation fold by question (not `learned_fit`'s inner fold hash, so each model's own
    out-of-fold stages still see three inner folds)."""
    key = run.trace_id.split("/", 1)[-1]
    return int(hashlib.sha1(key.encode()).hexdigest()[16:24], 16) % CV_FOLDS


def training_sets(runs: Sequence[Run]) -> dict[str, list[Run]]:
    train = [r for r in runs if r.split == "train"]
    sets = {
        "train": train,
        "r1": [r for r in runs if r.teacher == "r1"],
        "qwq": [r for r in runs if r.teacher == "qwq"],
    }
    for f in range(CV_FOLDS):
        sets[f"cv{f}"] = [r for r in train if cv_fold(r) != f]
    return sets


def shares(runs: Sequence[Run]) -> np.ndarray:
    """Training label shares exactly as `learned_fit.fit` computes them for the prior (counts + 1)."""
    counts = np.zeros(K)
    for r in runs:
        for g in r.gold:
            if g is not None:
                counts[BONDS.index(g)] += 1
    out: np.ndarray = (counts + 1.0) / (counts + 1.0).sum()
    return out


def run_fits(causal: bool, only: Sequence[str] | None) -> None:
    """Train each missing model and store its raw scores of every run (all runs: cheap next to a fit)."""
    labels = labelset.load()
    runs = labels.runs
    inputs = [trace_inputs(r.question, r.steps) for r in runs]
    CACHE.mkdir(parents=True, exist_ok=True)
    for name, train in training_sets(runs).items():
        tag = f"{'causal' if causal else 'learned'}-{name}"
        path = CACHE / f"{tag}.npz"
        if path.exists() or (only and name not in only):
            continue
        started = time.process_time()
        model = fit(train, replace(settings_for(False, causal=causal), prior=0.0))
        z = model.scores_many(inputs)
        np.savez(path, *z, shares=shares(train))
        print(f"{tag}: {len(train)} runs, {time.process_time() - started:.0f} CPU s", flush=True)


def load_scores(tag: str, n_runs: int) -> tuple[list[Matrix], np.ndarray] | None:
    path = CACHE / f"{tag}.npz"
    if not path.exists():
        return None
    data = np.load(path)
    return [data[f"arr_{i}"] for i in range(n_runs)], data["shares"]


@dataclass(frozen=True)
class Em:
    """EM settings: `alpha` damps the estimated shares at decision (z + alpha * log pi), and inside EM too
    when `inner`; `tau` pseudo-steps pull the estimate toward the training shares (a Dirichlet prior);
    `iters` EM steps from uniform shares (a class-balanced model's implicit prior)."""

    alpha: float
    tau: float
    iters: int
    inner: bool

    def __str__(self) -> str:
        return f"alpha {self.alpha:g}, tau {self.tau:g}, {self.iters} it{', inner' if self.inner else ''}"


EM_GRID = [
    Em(a, t, i, inner)
    for a, t, i, inner in product(
        (0.25, 0.5, 0.75, 1.0), (0.0, 10.0, 30.0, 100.0, 300.0, 1000.0), (1, 3, 100), (False, True)
    )
    if not (inner and a == 1.0)
]
PLAIN = Em(1.0, 0.0, 100, False)  # the paper's EM: undamped, no pull, to convergence
PRIORS = (0.0, 0.25, 0.5, 0.75, 1.0)
GROUPINGS = ("set", "writer", "32", "run")  # what one EM call sees


def em_shares(z: Matrix, train_shares: np.ndarray, cfg: Em) -> np.ndarray:
    """Saerens-Latinne-Decaestecker EM on a set's raw scores: pi <- mean of p(y|x) * pi(y) / (1/K)."""
    p = softmax(z)
    pi = np.full(K, 1.0 / K)
    for _ in range(cfg.iters):
        q = p * (pi ** (cfg.alpha if cfg.inner else 1.0))
        q /= q.sum(axis=1, keepdims=True)
        new = (q.sum(axis=0) + cfg.tau * train_shares) / (len(z) + cfg.tau)
        if np.abs(new - pi).max() < 1e-6:
            pi = new
            break
        pi = new
    floored: np.ndarray = np.maximum(pi, 1e-6)
    return floored


def groups(runs: Sequence[Run], grouping: str) -> Iterator[list[int]]:
    """Indices into `runs` that one labelling call sees: the whole set, one writer (teacher and unit), chunks
    of at most 32 runs of one writer (a build round or an extract call), or one run."""
    if grouping == "set":
        yield list(range(len(runs)))
        return
    if grouping == "run":
        yield from ([i] for i in range(len(runs)))
        return
    by: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(runs):
        by.setdefault((r.teacher, r.unit), []).append(i)
    for _, idx in sorted(by.items()):
        if grouping == "writer":
            yield idx
            continue
        idx.sort(key=lambda i: hashlib.sha1(runs[i].trace_id.encode()).hexdigest())
        yield from (list(c) for c in np.array_split(idx, -(-len(idx) // 32)))


Decide = Callable[[Sequence[Matrix]], list[np.ndarray]]


def fixed(prior: float, train_shares: np.ndarray) -> Decide:
    return lambda zs: [(z + prior * np.log(train_shares)).argmax(axis=1) for z in zs]


def by_em(cfg: Em, train_shares: np.ndarray, grouping: str, runs: Sequence[Run]) -> Decide:
    def decide(zs: Sequence[Matrix]) -> list[np.ndarray]:
        out: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(zs)
        for idx in groups(runs, grouping):
            pi = em_shares(np.vstack([zs[i] for i in idx]), train_shares, cfg)
            for i in idx:
                out[i] = (zs[i] + cfg.alpha * np.log(pi)).argmax(axis=1)
        return out

    return decide


@dataclass(frozen=True)
class Part:
    """Runs scored by one model (a view's test set, or one cross-validation fold)."""

    runs: list[Run]
    z: list[Matrix]
    train_shares: np.ndarray


def golds_preds(parts: Sequence[Part], decide: Callable[[Part], list[np.ndarray]]) -> Report:
    gold: list[str] = []
    pred: list[str] = []
    for part in parts:
        for run, y in zip(part.runs, decide(part), strict=True):
            for g, p in zip(run.gold, y.tolist(), strict=True):
                if g is not None:
                    gold.append(g)
                    pred.append(BONDS[p])
    return report(gold, pred)


def fixed_f1(parts: Sequence[Part], prior: float) -> float:
    return golds_preds(parts, lambda pt: fixed(prior, pt.train_shares)(pt.z)).macro_f1


def em_f1(parts: Sequence[Part], cfg: Em, grouping: str) -> float:
    return golds_preds(parts, lambda pt: by_em(cfg, pt.train_shares, grouping, pt.runs)(pt.z)).macro_f1


def cv_choose(parts: Sequence[Part]) -> tuple[float, dict[str, Em], list[str]]:
    """The fixed prior and, per grouping, the EM settings with the best pooled out-of-fold macro-F1."""
    fixed_scores = {p: fixed_f1(parts, p) for p in PRIORS}
    lines = [f"| fixed prior {p:g} | {f1:.3f} |" for p, f1 in fixed_scores.items()]
    best_p = max(PRIORS, key=lambda p: fixed_scores[p])
    chosen: dict[str, Em] = {}
    for grouping in GROUPINGS:
        scored = sorted(((em_f1(parts, cfg, grouping), cfg) for cfg in EM_GRID), key=lambda x: -x[0])
        chosen[grouping] = scored[0][1]
        undamped = next(f for f, c in scored if c == PLAIN)
        lines.append(f"| EM per {grouping}, best ({scored[0][1]}) | {scored[0][0]:.3f} |")
        lines.append(f"| EM per {grouping}, plain (alpha 1, tau 0, to convergence) | {undamped:.3f} |")
        top = ", ".join(f"{c}: {f:.3f}" for f, c in scored[1:4])
        lines.append(f"| EM per {grouping}, next best: {top} | |")
    return best_p, chosen, lines


VIEWS = ("heldout", "within", "r1->qwq", "qwq->r1", "generated", "paragraph", "sentence", "teacher sentence")
MODEL_OF = {"r1->qwq": "r1", "qwq->r1": "qwq"}  # every other view's model is the train split's


def view_tests(runs: Sequence[Run]) -> dict[str, list[int]]:
    """Each view's test runs as indices into `runs` (as bench/labelers.py builds the views)."""
    held = [i for i, r in enumerate(runs) if r.split == "heldout"]
    teach = ("r1", "qwq")
    return {
        "heldout": held,
        "within": [i for i in held if runs[i].teacher in teach],
        "r1->qwq": [i for i, r in enumerate(runs) if r.teacher == "qwq"],
        "qwq->r1": [i for i, r in enumerate(runs) if r.teacher == "r1"],
        "generated": [i for i in held if runs[i].teacher == "generated"],
        "paragraph": [i for i in held if runs[i].unit == "paragraph"],
        "sentence": [i for i in held if runs[i].unit == "sentence"],
        "teacher sentence": [i for i in held if runs[i].unit == "sentence" and runs[i].teacher in teach],
    }


def true_shares(runs: Sequence[Run]) -> np.ndarray:
    gold = [BONDS.index(g) for r in runs for g in r.gold if g is not None]
    out: np.ndarray = np.bincount(gold, minlength=K) / max(len(gold), 1)
    return out


def _fixed_on(prior: float, pt: Part) -> list[np.ndarray]:
    return fixed(prior, pt.train_shares)(pt.z)


def _em_on(cfg: Em, grouping: str, pt: Part) -> list[np.ndarray]:
    return by_em(cfg, pt.train_shares, grouping, pt.runs)(pt.z)


def _oracle_on(alpha: float, pt: Part) -> list[np.ndarray]:
    """Decide by the test set's true label shares (an upper bound for any share estimate)."""
    log_true = np.log(np.maximum(true_shares(pt.runs), 1e-6))
    return [(z + alpha * log_true).argmax(axis=1) for z in pt.z]


def methods(best_p: float, chosen: dict[str, Em]) -> list[tuple[str, Callable[[Part], list[np.ndarray]]]]:
    rows: list[tuple[str, Callable[[Part], list[np.ndarray]]]] = []
    for p in sorted({0.0, 0.5, 1.0, best_p}):
        note = " (CV best)" if p == best_p else ""
        rows.append((f"fixed prior {p:g}{note}", partial(_fixed_on, p)))
    for grouping in GROUPINGS:
        rows.append((f"EM per {grouping}, plain", partial(_em_on, PLAIN, grouping)))
        rows.append((f"EM per {grouping}, CV ({chosen[grouping]})", partial(_em_on, chosen[grouping], grouping)))
    for a in (0.5, 1.0):
        rows.append((f"oracle: test set's true shares, alpha {a:g}", partial(_oracle_on, a)))
    return rows


def section(kind: str, runs: Sequence[Run]) -> str | None:
    """Every table of one labeler (`learned` or `causal`) from its cached scores."""
    cached = {name: load_scores(f"{kind}-{name}", len(runs)) for name in ("train", "r1", "qwq", "cv0", "cv1", "cv2")}
    if cached["train"] is None or cached["r1"] is None or cached["qwq"] is None:
        return None
    out = [f"## {kind}", ""]
    best_p, chosen = 0.5, {g: PLAIN for g in GROUPINGS}
    if all(cached[f"cv{f}"] is not None for f in range(CV_FOLDS)):
        parts = []
        for f in range(CV_FOLDS):
            z, sh = cached[f"cv{f}"]  # type: ignore[misc]
            idx = [i for i, r in enumerate(runs) if r.split == "train" and cv_fold(r) == f]
            parts.append(Part([runs[i] for i in idx], [z[i] for i in idx], sh))
        best_p, chosen, lines = cv_choose(parts)
        out += ["Cross-validation on the train split (3 folds by question, pooled out-of-fold macro-F1):", ""]
        out += ["| decision | CV macro-F1 |", "| --- | --- |", *lines, ""]
    else:
        out += ["(no cross-validation scores: EM settings not tuned, plain EM only)", ""]
    rows = methods(best_p, chosen)
    tests = view_tests(runs)
    parts_of: dict[str, Part] = {}
    for view in VIEWS:
        z, sh = cached[MODEL_OF.get(view, "train")]  # type: ignore[misc]
        parts_of[view] = Part([runs[i] for i in tests[view]], [z[i] for i in tests[view]], sh)
    reps = {(name, view): golds_preds([parts_of[view]], decide) for name, decide in rows for view in VIEWS}
    head = ["decision", *VIEWS, "across (mean)"]
    out += ["Macro-F1 per view:", "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, _ in rows:
        cells = [f"{reps[(name, v)].macro_f1:.3f}" for v in VIEWS]
        across = (reps[(name, "r1->qwq")].macro_f1 + reps[(name, "qwq->r1")].macro_f1) / 2
        out.append(f"| {name} | " + " | ".join(cells) + f" | {across:.3f} |")
    for view in ("heldout", "r1->qwq", "qwq->r1"):
        out += ["", f"Per-class P / R / F1, {view}:", "", "| decision | " + " | ".join(BONDS) + " |",
                "|" + " --- |" * (K + 1)]  # fmt: skip
        for name, _ in rows:
            pc = reps[(name, view)].per_class
            out.append(f"| {name} | " + " | ".join(
                f"{pc[b].precision:.2f} / {pc[b].recall:.2f} / {pc[b].f1:.2f}" for b in BONDS) + " |")  # fmt: skip
    out += ["", "Label shares (" + " / ".join(BONDS) + "): training, true on the test set's labelled steps, EM on the "
            "whole test set (all steps):", "", "| view | training | true | EM plain | EM CV-chosen (set) |",
            "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for view in VIEWS:
        pt = parts_of[view]
        allz = np.vstack(pt.z)
        est = [em_shares(allz, pt.train_shares, c) for c in (PLAIN, chosen["set"])]
        vecs = [pt.train_shares, true_shares(pt.runs), *est]
        out.append(f"| {view} | " + " | ".join(" / ".join(f"{x:.2f}" for x in v) for v in vecs) + " |")
    return "\n".join(out)


def full_report() -> str:
    runs = labelset.load().runs
    started = time.process_time()
    parts = [s for kind in ("learned", "causal") if (s := section(kind, runs))]
    parts.append(f"({len(runs)} runs, {sum(r.n_labelled for r in runs)} labelled steps; "
                 f"{time.process_time() - started:.0f} CPU s)")  # fmt: skip
    return "\n\n".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("phase", choices=("fit", "report"))
    ap.add_argument("--causal", action="store_true", help="fit: the causal labeler's models")
    ap.add_argument("--only", nargs="*", help="fit: only these training sets (train, r1, qwq, cv0, cv1, cv2)")
    args = ap.parse_args()
    if args.phase == "fit":
        run_fits(args.causal, args.only)
    else:
        print(full_report())


if __name__ == "__main__":
    main()
