"""Train the `learned` labeler: class-balanced, L2-regularised multinomial logistic regression in numpy.

Deterministic: the vocabularies are sorted, each step's sparse rows are sorted before summing, and
full-batch Adam runs a fixed number of steps from zero weights, so the same labels give the same
weights (bit for bit on one machine). Only labelled steps are examples; unlabelled context steps
are still read as the neighbours of labelled ones.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import numpy.typing as npt

from molspec.structure.features import DENSE, Key, StepInput, left_only, strip_opener, trace_inputs
from molspec.structure.label import BONDS
from molspec.structure.labelset import Run
from molspec.structure.learned import CONTEXT, Matrix, Model, context_features, softmax
from molspec.structure.sequence import Recurrent


@dataclass(frozen=True, slots=True)
class FitSettings:
    """Training settings (kept in the weights file).

    Attributes:
        l2: penalty on the squared weights (the bias is not penalised).
        steps: full-batch Adam steps.
        lr: Adam step size.
        min_count: a key or token enters the vocabulary if this many labelled steps have it.
        dense_l2: the dense signals' penalty, as a multiple of `l2`.
        strip_openers: read every step without its opening discourse markers (the "learned-blind"
            labeler; `LearnedLabeler` strips them at labelling time too).
        folds: out-of-fold splits (by question) for the later stages' inputs; 1 trains stage 1 only.
        stages: stages after stage 1 (each reads the labels the stage before gave the neighbours).
        prior: how far the last stage decides by the training set's label shares: `prior` times their logs
            is added to its bias. Training is class-balanced (every class weighs the same, so the rare ones
            are learned at all); deciding that way (0) over-calls rare classes (explore: precision 0.49,
            recall 0.84 held-out). 1 decides by the training shares: held-out +0.028 macro-F1, but the shares
            are a writer's (QwQ checks more than R1): QwQ -> R1 -0.033, R1 -> QwQ +0.019. Half way: held-out
            +0.022, across teachers -0.010 and +0.012; other writers' shares differ again.
        sequence: units of the recurrent last stage (`sequence.Recurrent`: GRUs over the whole run reading the
            stacked scores, out of fold, at prior 0); 0: none. Then the prior goes to its bias, not the stack's.
        sequence_epochs / sequence_nets: its training epochs and how many nets (seeds) are averaged.
        causal: read only the question and the steps before each step (`features.left_only`, and no
            later-stage column of the steps after): the "learned-causal" labeler, for the fidelity gate,
            which labels each new step before the next exists.
    """

    l2: float = 0.015
    steps: int = 300
    lr: float = 0.05
    min_count: int = 2
    folds: int = 3
    dense_l2: float = 0.1
    strip_openers: bool = False
    stages: int = 2
    causal: bool = False
    prior: float = 0.5
    sequence: int = 32
    sequence_epochs: int = 20
    sequence_nets: int = 3


@dataclass(frozen=True)
class Examples:
    """Every step of some runs as model inputs; `gold` holds bond indices, -1 for unlabelled steps."""

    runs: list[list[StepInput]]
    gold: list[npt.NDArray[np.int64]]
    folds: list[int]

    @property
    def labelled(self) -> list[StepInput]:
        return [
            s for steps, g in zip(self.runs, self.gold, strict=True) for s, y in zip(steps, g, strict=True) if y >= 0
        ]


def settings_for(blind: bool, causal: bool = False) -> FitSettings:
    """The settings a shipped labeler is trained with, chosen by 3-fold cross-validation by question on
    the train split: `learned` reads two later stages; `learned-blind`, which cannot read openers, one
    (a second one cost it 0.003-0.007 macro-F1 there while `learned` gained 0.005). `learned-blind` has no
    recurrent stage: with one it lost 0.008 held-out (0.649 -> 0.641) and 0.013 QwQ -> R1 (bench/labelers.py),
    where `learned` gained 0.020."""
    settings = FitSettings(strip_openers=True, stages=1, sequence=0) if blind else FitSettings()
    return replace(settings, causal=causal)


def examples(runs: Sequence[Run], n_folds: int, causal: bool = False) -> Examples:
    inputs = [trace_inputs(run.question, run.steps) for run in runs]
    if causal:
        inputs = [left_only(steps) for steps in inputs]
    gold = [np.array([BONDS.index(g) if g else -1 for g in run.gold], dtype=np.int64) for run in runs]
    folds = [int(hashlib.sha1(run.trace_id.split("/", 1)[-1].encode()).hexdigest()[8:16], 16) % n_folds for run in runs]
    return Examples(inputs, gold, folds)


def vocabulary(inputs: Sequence[StepInput], min_count: int) -> tuple[dict[Key, int], dict[str, int]]:
    """Keys and tokens seen in at least `min_count` labelled steps, sorted, numbered after DENSE."""
    keys: Counter[Key] = Counter(k for s in inputs for k in set(s.keys))
    words: Counter[str] = Counter(w for s in inputs for w in s.words)
    k = sorted(x for x, n in keys.items() if n >= min_count)
    w = sorted(x for x, n in words.items() if n >= min_count)
    first = len(DENSE)
    return (
        {x: i for i, x in enumerate(k, first)},
        {x: i for i, x in enumerate(w, first + len(k))},
    )


def fit(runs: Sequence[Run], settings: FitSettings | None = None) -> Model:
    """Train every stage on the labelled steps of `runs`. Each later stage learns from the probabilities
    of the stages before it predicted out of fold (runs grouped by question), so it sees them as they are
    on unseen traces."""
    cfg = settings or FitSettings()
    if cfg.strip_openers:
        runs = [replace(r, steps=tuple(map(strip_opener, r.steps))) for r in runs]
    data = examples(runs, cfg.folds, cfg.causal)
    labelled = data.labelled
    if not labelled:
        raise ValueError("no labelled steps to train on")
    keys, words = vocabulary(labelled, cfg.min_count)
    shell = Model(keys, words, np.zeros((0, len(BONDS))), info={"causal": cfg.causal})
    everything = [True] * len(runs)
    stage1 = _train(shell, data, everything, None, cfg)
    stages: list[Matrix] = []
    recurrent = None
    gold = np.concatenate(data.gold)
    counts = np.bincount(gold[gold >= 0], minlength=len(BONDS)).astype(np.float64)
    shift = prior_shift(counts, cfg.prior)
    if cfg.folds > 1 and len(set(data.folds)) > 1:
        # per fold: the stages so far, trained without that fold's runs
        insides = {f: [fold != f for fold in data.folds] for f in sorted(set(data.folds))}
        parts = {f: replace(shell, weights=_train(shell, data, inside, None, cfg)) for f, inside in insides.items()}
        for n in range(cfg.stages):
            context = _out_of_fold(data, parts)
            stages.append(_train(shell, data, everything, context, cfg))
            if n + 1 < cfg.stages or cfg.sequence:  # the recurrent stage reads the last one out of fold
                parts = {
                    f: replace(m, stages=(*m.stages, _train(shell, data, insides[f], context, cfg)))
                    for f, m in parts.items()
                }
        if cfg.sequence:
            recurrent = _recurrent(data, parts, cfg, shift)
    if cfg.prior and recurrent is None:
        last = stages[-1] if stages else stage1
        last[0] += shift  # row 0: the `bias` signal (1)
    info = {
        "labelled_steps": sum(r.n_labelled for r in runs),
        "runs": len(runs),
        "labels_sha1": _digest(runs),
        "class_counts": {b: int(counts[i]) for i, b in enumerate(BONDS)},
        "settings": asdict(cfg),
        "strip_openers": cfg.strip_openers,
        "causal": cfg.causal,
    }
    return Model(keys, words, stage1, tuple(stages), info, recurrent)


def prior_shift(counts: Matrix, prior: float) -> Matrix:
    """What the last stage's bias gains: `prior` times the log label shares (add-one smoothed `counts`)."""
    out: Matrix = prior * np.log((counts + 1.0) / (counts + 1.0).sum())
    return out


def _recurrent(data: Examples, parts: dict[int, Model], cfg: FitSettings, shift: Matrix) -> Recurrent:
    """The recurrent last stage, trained on every run's stacked scores from the stack trained without its fold;
    `shift` (the prior) goes to its bias."""
    from molspec.structure.sequence_fit import fit_recurrent  # torch: training only

    dense = [
        np.array([s.dense for s in steps], dtype=np.float64).reshape(len(steps), len(DENSE)) for steps in data.runs
    ]
    stacked = [parts[f].scores_many([steps], left_done=True)[0] for steps, f in zip(data.runs, data.folds, strict=True)]
    return fit_recurrent(
        stacked, dense, data.gold, cfg.causal, shift, cfg.sequence, cfg.sequence_epochs, cfg.sequence_nets
    )


def _out_of_fold(data: Examples, parts: dict[int, Model]) -> list[Matrix]:
    """Per run: the context features of the probabilities of the model trained without its fold."""
    context = [np.zeros((len(steps), len(CONTEXT))) for steps in data.runs]
    for i, (steps, fold) in enumerate(zip(data.runs, data.folds, strict=True)):
        if steps:
            dense = np.array([s.dense for s in steps], dtype=np.float64)
            z = parts[fold].scores_many([steps], left_done=True)[0]  # examples() already cut a causal run
            context[i] = context_features(softmax(z), dense, parts[fold].causal)
    return context


def _train(
    shell: Model, data: Examples, use: Sequence[bool], context: Sequence[Matrix] | None, cfg: FitSettings
) -> Matrix:
    """Weights for the labelled steps of the runs marked in `use` (with `context` columns: a later stage)."""
    picked = [i for i, u in enumerate(use) if u]
    inputs = [s for i in picked for s, y in zip(data.runs[i], data.gold[i], strict=True) if y >= 0]
    labels = np.concatenate([data.gold[i][data.gold[i] >= 0] for i in picked])
    dense = np.array([s.dense for s in inputs], dtype=np.float64)
    extra = 0
    if context is not None:
        extra = len(CONTEXT)
        dense = np.hstack([dense, np.vstack([context[i][data.gold[i] >= 0] for i in picked])])
    rows, vals, owner = shell.sparse(inputs)
    order = np.lexsort((rows, owner))  # set order varies between processes; sums must not
    return _adam(dense, rows[order] + extra, vals[order], owner[order], labels, shell.n_rows + extra, cfg)


def _adam(
    dense: Matrix,
    rows: npt.NDArray[np.int64],
    vals: npt.NDArray[np.float64],
    owner: npt.NDArray[np.int64],
    labels: npt.NDArray[np.int64],
    n_rows: int,
    cfg: FitSettings,
) -> Matrix:
    n, k = len(labels), len(BONDS)
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    per_class = np.where(counts > 0, n / (k * np.maximum(counts, 1.0)), 0.0)
    sample_w = per_class[labels] / n  # class-balanced mean
    onehot = np.eye(k)[labels]
    w = np.zeros((n_rows, k))
    m, v = np.zeros_like(w), np.zeros_like(w)
    penalty = np.ones((n_rows, 1))
    penalty[: dense.shape[1]] = cfg.dense_l2  # few, informative signals: penalised less than text keys
    penalty[0] = 0.0  # the bias (DENSE[0])
    nd = dense.shape[1]
    for t in range(1, cfg.steps + 1):
        z = dense @ w[:nd]
        picked = w[rows] * vals[:, None]
        for c in range(k):
            z[:, c] += np.bincount(owner, weights=picked[:, c], minlength=n)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        g_out = (p - onehot) * sample_w[:, None]
        grad = cfg.l2 * penalty * w
        grad[:nd] += dense.T @ g_out
        spread = g_out[owner] * vals[:, None]
        for c in range(k):
            grad[:, c] += np.bincount(rows, weights=spread[:, c], minlength=n_rows)
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad * grad
        step = cfg.lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        w -= step
    return w


def _digest(runs: Sequence[Run]) -> str:
    """A short hash of the labels trained on (trace, unit, step texts' labels), for the record."""
    h = hashlib.sha1()
    for run in runs:
        h.update(f"{run.file}\0{run.trace_id}\0{run.unit}\0".encode())
        h.update("".join((g or "-")[0] for g in run.gold).encode())
    return h.hexdigest()[:12]
