"""Fixed prior against EM-estimated label shares (Saerens et al. 2002) for the `learned` labelers.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/prior_experiment.py fit            # train, cache raw scores
    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/prior_experiment.py fit --causal   # the same, learned-causal
    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/prior_experiment.py windows        # causal, as the gate reads
    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/prior_experiment.py report         # the tables, from the cache

`fit` trains the learned model (and the causal one) with prior 0 once per distinct training set: the train
split, all R1, all QwQ, and three cross-validation models on two thirds of the train split (by question,
with a hash other than `learned_fit`'s inner folds) each scoring the third it did not see. It stores every
run's raw last-stage scores. `windows` refits the causal models and scores each labelled step as the gate
reads it (the last of its 16 earlier steps and itself: how the 0.613 baseline was measured). `report`
decides on those scores by: a fixed prior p (p * log training shares added, as `FitSettings.prior` adds it
to the last stage's bias); or shares estimated on the set being labelled (EM, raw or calibrated scores;
BBSE), over all its steps (labelled or not), as `label_many` would see them; or, as a ceiling, the true
shares. EM settings are chosen on the cross-validation scores of the train split only, then applied
unchanged to every view. Results and verdict: bench/prior_experiment.md.
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


WINDOW = 16  # the gate's reach (tests/structure/test_learned_causal.py): a step and its 16 earlier steps


def evaluated_by(runs: Sequence[Run]) -> dict[str, list[int]]:
    """The runs each training set's model is scored on (views and cross-validation folds)."""
    held = [i for i, r in enumerate(runs) if r.split == "heldout"]
    out = {"train": held, "r1": [i for i, r in enumerate(runs) if r.teacher == "qwq"]}
    out["qwq"] = [i for i, r in enumerate(runs) if r.teacher == "r1"]
    for f in range(CV_FOLDS):
        out[f"cv{f}"] = [i for i, r in enumerate(runs) if r.split == "train" and cv_fold(r) == f]
    return out


def run_windows() -> None:
    """The causal models as the gate uses them (the 0.613 baseline): each labelled step scored as the last
    of (question, its WINDOW earlier steps, itself). Stores the labelled steps' scores only, per run."""
    runs = labelset.load().runs
    sets = training_sets(runs)
    need: dict[int, list[str]] = {}
    for name, idx in evaluated_by(runs).items():
        for i in idx:
            need.setdefault(i, []).append(name)
    models = {}
    for name, train in sets.items():
        started = time.process_time()
        models[name] = fit(train, replace(settings_for(False, causal=True), prior=0.0))
        print(f"causal {name} refit: {time.process_time() - started:.0f} CPU s", flush=True)
    scores: dict[str, list[Matrix]] = {name: [np.zeros((0, K))] * len(runs) for name in sets}
    started = time.process_time()
    for i, names in sorted(need.items()):
        r = runs[i]
        labelled = [j for j, g in enumerate(r.gold) if g is not None]
        windows = [trace_inputs(r.question, r.steps[max(0, j - WINDOW) : j + 1]) for j in labelled]
        for name in names:
            scores[name][i] = np.array([z[-1] for z in models[name].scores_many(windows)]).reshape(-1, K)
    for name, train in sets.items():
        np.savez(CACHE / f"causal16-{name}.npz", *scores[name], shares=shares(train))
    print(f"windows: {time.process_time() - started:.0f} CPU s", flush=True)


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
    calibrated: bool = False

    def __str__(self) -> str:
        flags = (", inner" if self.inner else "") + (", calibrated" if self.calibrated else "")
        return f"alpha {self.alpha:g}, tau {self.tau:g}, {self.iters} it{flags}"


@dataclass(frozen=True)
class Calib:
    """Bias-corrected temperature scaling (Alexandari et al. 2020): p(y|x) = softmax(a * z + b + log s), s the
    training shares, fitted on out-of-fold scores of the train split; b is what is left after the shares, so
    one fit serves models trained on other sets (their own s)."""

    a: float
    b: np.ndarray


def fit_calib(zs: Sequence[Matrix], golds: Sequence[np.ndarray], train_shares: Sequence[np.ndarray]) -> Calib:
    """Minimise the mean negative log-likelihood of the labelled steps (convex in a and b): Adam, full batch."""
    z = np.vstack(zs)
    y = np.concatenate(golds)
    log_s = np.vstack([np.tile(np.log(s), (len(g), 1)) for s, g in zip(train_shares, golds, strict=True)])
    onehot = np.eye(K)[y]
    theta = np.concatenate([[1.0], np.zeros(K)])
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for t in range(1, 2001):
        g_out = (softmax(theta[0] * z + theta[1:] + log_s) - onehot) / len(y)
        grad = np.concatenate([[float((g_out * z).sum())], g_out.sum(axis=0)])
        m, v = 0.9 * m + 0.1 * grad, 0.999 * v + 0.001 * grad * grad
        theta -= 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return Calib(float(theta[0]), theta[1:] - theta[1:].mean())


EM_GRID = [
    Em(a, t, i, inner, cal)
    for a, t, i, inner, cal in product(
        (0.25, 0.5, 0.75, 1.0), (0.0, 10.0, 30.0, 100.0, 300.0, 1000.0), (1, 3, 100), (False, True), (False, True)
    )
    if not (inner and a == 1.0)
]
PLAIN = Em(1.0, 0.0, 100, False)  # the paper's EM: undamped, no pull, to convergence
PLAIN_CAL = Em(1.0, 0.0, 100, False, True)  # the same on calibrated scores (Alexandari et al.'s recipe)
NO_EM_CAL = Em(1.0, 0.0, 0, False, True)  # calibrated scores, decided by the training shares: no EM
PRIORS = (0.0, 0.25, 0.5, 0.75, 1.0)
GROUPINGS = ("set", "writer", "32", "run")  # what one EM call sees


def logits_of(z: Matrix, train_shares: np.ndarray, calib: Calib | None) -> tuple[Matrix, np.ndarray]:
    """The scores EM reads and the log prior they carry: raw class-balanced scores (uniform prior), or
    calibrated ones (the training shares)."""
    if calib is None:
        return z, np.full(K, np.log(1.0 / K))
    log_s = np.log(train_shares)
    out: Matrix = calib.a * z + calib.b + log_s
    return out, log_s


def em_shares(z: Matrix, train_shares: np.ndarray, cfg: Em, calib: Calib | None = None) -> np.ndarray:
    """Saerens-Latinne-Decaestecker EM on a set's scores: pi <- mean of p(y|x) * pi(y) / prior(y), from the
    prior the scores carry (uniform for raw class-balanced scores, the training shares for calibrated ones)."""
    logits, log_base = logits_of(z, train_shares, calib if cfg.calibrated else None)
    p = softmax(logits)
    pi = np.exp(log_base)
    for _ in range(cfg.iters):
        q = p * np.exp((cfg.alpha if cfg.inner else 1.0) * (np.log(pi) - log_base))
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


def by_em(cfg: Em, train_shares: np.ndarray, grouping: str, runs: Sequence[Run], calib: Calib | None) -> Decide:
    use = calib if cfg.calibrated else None

    def decide(zs: Sequence[Matrix]) -> list[np.ndarray]:
        out: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(zs)
        for idx in groups(runs, grouping):
            pi = em_shares(np.vstack([zs[i] for i in idx]), train_shares, cfg, calib)
            for i in idx:
                logits, log_base = logits_of(zs[i], train_shares, use)
                out[i] = (logits + cfg.alpha * (np.log(pi) - log_base)).argmax(axis=1)
        return out

    return decide


@dataclass(frozen=True)
class Part:
    """Runs scored by one model (a view's test set, or one cross-validation fold)."""

    runs: list[Run]
    z: list[Matrix]
    train_shares: np.ndarray
    calib: Calib | None = None
    confusion: np.ndarray | None = None  # P(decided i | true j) of the fixed-0.5 decision, out of fold


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


def calibrate(parts: Sequence[Part]) -> Calib:
    """`fit_calib` on the labelled steps of some parts."""
    zs, golds, shares_ = [], [], []
    for pt in parts:
        for run, z in zip(pt.runs, pt.z, strict=True):
            mask = np.array([g is not None for g in run.gold])
            zs.append(z[mask])
            golds.append(np.array([BONDS.index(g) for g in run.gold if g is not None], dtype=np.int64))
            shares_.append(pt.train_shares)
    return fit_calib(zs, golds, shares_)


def confusion_of(parts: Sequence[Part]) -> np.ndarray:
    """P(decided i | true j) of the fixed prior 0.5 decision on the labelled steps of some parts (BBSE's M)."""
    m = np.zeros((K, K))
    for pt in parts:
        for run, y in zip(pt.runs, fixed(0.5, pt.train_shares)(pt.z), strict=True):
            for g, h in zip(run.gold, y.tolist(), strict=True):
                if g is not None:
                    m[h, BONDS.index(g)] += 1
    out: np.ndarray = m / m.sum(axis=0, keepdims=True)
    return out


def bbse_shares(z: Matrix, train_shares: np.ndarray, confusion: np.ndarray) -> np.ndarray:
    """Black-box shift estimation (Lipton et al. 2018): the shares pi that explain the decided label shares
    mu through the out-of-fold confusion, M pi = mu; clipped to stay a distribution."""
    mu = np.bincount(fixed(0.5, train_shares)([z])[0], minlength=K) / max(len(z), 1)
    pi = np.clip(np.linalg.solve(confusion, mu), 1e-3, None)
    out: np.ndarray = pi / pi.sum()
    return out


def _bbse_on(alpha: float, grouping: str, pt: Part) -> list[np.ndarray]:
    """Decide by BBSE's shares per group (calibrated scores, their training-share prior swapped for pi^alpha)."""
    assert pt.confusion is not None
    out: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(pt.z)
    for idx in groups(pt.runs, grouping):
        pi = bbse_shares(np.vstack([pt.z[i] for i in idx]), pt.train_shares, pt.confusion)
        for i in idx:
            logits, log_base = logits_of(pt.z[i], pt.train_shares, pt.calib)
            out[i] = (logits + alpha * (np.log(pi) - log_base)).argmax(axis=1)
    return out


def fixed_f1(parts: Sequence[Part], prior: float) -> float:
    return golds_preds(parts, lambda pt: fixed(prior, pt.train_shares)(pt.z)).macro_f1


def em_f1(parts: Sequence[Part], cfg: Em, grouping: str) -> float:
    return golds_preds(parts, lambda pt: by_em(cfg, pt.train_shares, grouping, pt.runs, pt.calib)(pt.z)).macro_f1


def cv_choose(parts: Sequence[Part]) -> tuple[float, dict[str, Em], list[str]]:
    """The fixed prior and, per grouping, the EM settings with the best pooled out-of-fold macro-F1."""
    fixed_scores = {p: fixed_f1(parts, p) for p in PRIORS}
    lines = [f"| fixed prior {p:g} | {f1:.3f} |" for p, f1 in fixed_scores.items()]
    best_p = max(PRIORS, key=lambda p: fixed_scores[p])
    chosen: dict[str, Em] = {}
    lines.append(f"| calibrated, training shares (no EM) | {em_f1(parts, NO_EM_CAL, 'set'):.3f} |")
    for grouping in GROUPINGS:
        scored = sorted(((em_f1(parts, cfg, grouping), cfg) for cfg in EM_GRID), key=lambda x: -x[0])
        chosen[grouping] = scored[0][1]
        lines.append(f"| EM per {grouping}, best ({scored[0][1]}) | {scored[0][0]:.3f} |")
        for name, cfg in (("plain", PLAIN), ("plain, calibrated", PLAIN_CAL)):
            lines.append(
                f"| EM per {grouping}, {name} (alpha 1, tau 0, to convergence) | {em_f1(parts, cfg, grouping):.3f} |"
            )
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
    return by_em(cfg, pt.train_shares, grouping, pt.runs, pt.calib)(pt.z)


def _oracle_on(alpha: float, calibrated: bool, grouping: str, pt: Part) -> list[np.ndarray]:
    """Decide by each group's true label shares (add-one smoothed): the most any share estimate could give."""
    out: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(pt.z)
    for idx in groups(pt.runs, grouping):
        gold = [BONDS.index(g) for i in idx for g in pt.runs[i].gold if g is not None]
        log_true = np.log((np.bincount(gold, minlength=K) + 1.0) / (len(gold) + K))
        for i in idx:
            logits, log_base = logits_of(pt.z[i], pt.train_shares, pt.calib if calibrated else None)
            out[i] = (logits + alpha * (log_true - log_base)).argmax(axis=1)
    return out


def methods(best_p: float, chosen: dict[str, Em], bbse: bool) -> list[tuple[str, Callable[[Part], list[np.ndarray]]]]:
    rows: list[tuple[str, Callable[[Part], list[np.ndarray]]]] = []
    for p in sorted({0.0, 0.5, 1.0, best_p}):
        note = " (CV best)" if p == best_p else ""
        rows.append((f"fixed prior {p:g}{note}", partial(_fixed_on, p)))
    rows.append(("calibrated, training shares (no EM)", partial(_em_on, NO_EM_CAL, "set")))
    for grouping in GROUPINGS:
        rows.append((f"EM per {grouping}, plain", partial(_em_on, PLAIN, grouping)))
        rows.append((f"EM per {grouping}, plain, calibrated", partial(_em_on, PLAIN_CAL, grouping)))
        rows.append((f"EM per {grouping}, CV ({chosen[grouping]})", partial(_em_on, chosen[grouping], grouping)))
    for grouping in ("set", "writer", "32") if bbse else ():
        for a in (0.5, 1.0):
            rows.append((f"BBSE per {grouping}, calibrated, alpha {a:g}", partial(_bbse_on, a, grouping)))
    for a in (0.5, 1.0):
        rows.append((f"oracle: test set's true shares, alpha {a:g}", partial(_oracle_on, a, False, "set")))
    rows.append(("oracle: true shares, calibrated", partial(_oracle_on, 1.0, True, "set")))
    for grouping in ("writer", "32"):
        rows.append((f"oracle: true shares per {grouping}, calibrated", partial(_oracle_on, 1.0, True, grouping)))
    return rows


def labelled_only(run: Run) -> Run:
    keep = [j for j, g in enumerate(run.gold) if g is not None]
    return replace(run, steps=tuple(run.steps[j] for j in keep), gold=tuple(run.gold[j] for j in keep))


def section(kind: str, title: str, runs: Sequence[Run]) -> str | None:
    """Every table of one labeler (`learned`, `causal`, `causal16`) from its cached scores."""
    cached = {name: load_scores(f"{kind}-{name}", len(runs)) for name in ("train", "r1", "qwq", "cv0", "cv1", "cv2")}
    if cached["train"] is None or cached["r1"] is None or cached["qwq"] is None:
        return None
    out = [f"## {title}", ""]
    best_p, chosen, calib, confusion = 0.5, {g: PLAIN for g in GROUPINGS}, None, None
    if all(cached[f"cv{f}"] is not None for f in range(CV_FOLDS)):
        parts = []
        for f in range(CV_FOLDS):
            z, sh = cached[f"cv{f}"]  # type: ignore[misc]
            idx = [i for i, r in enumerate(runs) if r.split == "train" and cv_fold(r) == f]
            parts.append(Part([runs[i] for i in idx], [z[i] for i in idx], sh))
        calib, confusion = calibrate(parts), confusion_of(parts)
        parts = [replace(pt, calib=calibrate([q for q in parts if q is not pt])) for pt in parts]  # nested
        out += [f"Calibration on the train split's out-of-fold scores: a {calib.a:.3f}, b "
                + " / ".join(f"{x:+.2f}" for x in calib.b), ""]  # fmt: skip
        best_p, chosen, lines = cv_choose(parts)
        out += ["Cross-validation on the train split (3 folds by question, pooled out-of-fold macro-F1):", ""]
        out += ["| decision | CV macro-F1 |", "| --- | --- |", *lines, ""]
    else:
        out += ["(no cross-validation scores: EM settings not tuned, plain EM only)", ""]
    rows = methods(best_p, chosen, confusion is not None)
    tests = view_tests(runs)
    parts_of: dict[str, Part] = {}
    for view in VIEWS:
        z, sh = cached[MODEL_OF.get(view, "train")]  # type: ignore[misc]
        parts_of[view] = Part([runs[i] for i in tests[view]], [z[i] for i in tests[view]], sh, calib, confusion)
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
            "whole test set (all steps):", "",
            "| view | training | true | EM plain | EM plain, calibrated | EM CV-chosen (set) |",
            "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for view in VIEWS:
        pt = parts_of[view]
        allz = np.vstack(pt.z)
        est = [em_shares(allz, pt.train_shares, c, pt.calib) for c in (PLAIN, PLAIN_CAL, chosen["set"])]
        vecs = [pt.train_shares, true_shares(pt.runs), *est]
        out.append(f"| {view} | " + " | ".join(" / ".join(f"{x:.2f}" for x in v) for v in vecs) + " |")
    out += writer_shares(parts_of)
    out += bootstrap_table(parts_of, rows)
    return "\n".join(out)


def question_keys(pt: Part) -> list[str]:
    """Per run: its question (one question's traces and units are not independent samples)."""
    return sorted({r.trace_id.split("/", 1)[-1] for r in pt.runs})


def question_confusions(pt: Part, decide: Callable[[Part], list[np.ndarray]]) -> np.ndarray:
    """(questions, K, K) counts of (true, decided) over the labelled steps of each question's runs."""
    keys = {q: n for n, q in enumerate(question_keys(pt))}
    out = np.zeros((len(keys), K, K))
    for run, y in zip(pt.runs, decide(pt), strict=True):
        n = keys[run.trace_id.split("/", 1)[-1]]
        for g, h in zip(run.gold, y.tolist(), strict=True):
            if g is not None:
                out[n, BONDS.index(g), h] += 1
    return out


def macro_f1(conf: np.ndarray) -> float:
    """`evaluate.report`'s macro-F1 from a confusion matrix (classes present in truth or decisions)."""
    tp, true, pred = np.diag(conf), conf.sum(axis=1), conf.sum(axis=0)
    present = (true + pred) > 0
    f1 = np.divide(2 * tp, true + pred, out=np.zeros(K), where=present)
    return float(f1[present].mean())


def bootstrap_table(
    parts_of: dict[str, Part], rows: Sequence[tuple[str, Callable[[Part], list[np.ndarray]]]]
) -> list[str]:
    """Macro-F1 minus fixed prior 0.5's, with a 95% interval from 1000 paired resamples of the test questions."""
    rng = np.random.default_rng(0)
    views = ("heldout", "r1->qwq", "qwq->r1")
    out = ["", "Macro-F1 minus fixed prior 0.5's [95% interval, 1000 paired bootstrap resamples of the questions]:", "",
           "| decision | " + " | ".join(views) + " |", "|" + " --- |" * (len(views) + 1)]  # fmt: skip
    base = dict(rows)["fixed prior 0.5"]
    n_q = {v: len(question_keys(parts_of[v])) for v in views}
    picks = {v: rng.integers(0, n_q[v], size=(1000, n_q[v])) for v in views}
    for name, decide in rows:
        if name == "fixed prior 0.5":
            continue
        cells = []
        for v in views:
            a, b = question_confusions(parts_of[v], decide), question_confusions(parts_of[v], base)
            d = [macro_f1(a[i].sum(axis=0)) - macro_f1(b[i].sum(axis=0)) for i in picks[v]]
            lo, hi = np.percentile(d, [2.5, 97.5])
            cells.append(f"{macro_f1(a.sum(axis=0)) - macro_f1(b.sum(axis=0)):+.3f} [{lo:+.3f}, {hi:+.3f}]")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return out


def writer_shares(parts_of: dict[str, Part]) -> list[str]:
    """Per writer (teacher and unit) of the held-out and cross views: true shares of the labelled steps and
    EM's estimates over all steps: where the label-shift assumption holds, the estimates land on the truth."""
    out = ["", "Per writer: labelled / all steps, true shares, EM plain (raw), EM plain (calibrated), BBSE:", "",
           "| view | writer | labelled / steps | true | EM raw | EM calibrated | BBSE |",
           "|" + " --- |" * 7]  # fmt: skip
    for view in ("heldout", "r1->qwq", "qwq->r1"):
        pt = parts_of[view]
        for idx in groups(pt.runs, "writer"):
            sub = [pt.runs[i] for i in idx]
            z = np.vstack([pt.z[i] for i in idx])
            vecs = [true_shares(sub), *(em_shares(z, pt.train_shares, c, pt.calib) for c in (PLAIN, PLAIN_CAL))]
            if pt.confusion is not None:
                vecs.append(bbse_shares(z, pt.train_shares, pt.confusion))
            cells = " | ".join(" / ".join(f"{x:.2f}" for x in v) for v in vecs)
            who = f"{sub[0].teacher} {sub[0].unit}"
            out.append(f"| {view} | {who} | {sum(r.n_labelled for r in sub)} / {len(z)} | {cells} |")
    return out


def full_report() -> str:
    runs = labelset.load().runs
    started = time.process_time()
    kinds = {
        "learned": ("learned, whole traces", runs),
        "causal": ("causal, whole traces (left_only inputs)", runs),
        "causal16": (f"causal as the gate reads (each labelled step the last of {WINDOW} earlier steps and itself; "
                     "EM over the labelled steps only)", [labelled_only(r) for r in runs]),
    }  # fmt: skip
    parts = [s for kind, (title, rs) in kinds.items() if (s := section(kind, title, rs))]
    parts.append(f"({len(runs)} runs, {sum(r.n_labelled for r in runs)} labelled steps; "
                 f"{time.process_time() - started:.0f} CPU s)")  # fmt: skip
    return "\n\n".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("phase", choices=("fit", "windows", "report"))
    ap.add_argument("--causal", action="store_true", help="fit: the causal labeler's models")
    ap.add_argument("--only", nargs="*", help="fit: only these training sets (train, r1, qwq, cv0, cv1, cv2)")
    args = ap.parse_args()
    if args.phase == "fit":
        run_fits(args.causal, args.only)
    elif args.phase == "windows":
        run_windows()
    else:
        print(full_report())


if __name__ == "__main__":
    main()
