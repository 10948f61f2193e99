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
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from molspec.structure.features import DENSE, Key, StepInput, trace_inputs
from molspec.structure.label import BONDS
from molspec.structure.labelset import Run
from molspec.structure.learned import Matrix, Model


@dataclass(frozen=True, slots=True)
class FitSettings:
    """Training settings (kept in the weights file).

    Attributes:
        l2: penalty on the squared weights (the bias is not penalised).
        steps: full-batch Adam steps.
        lr: Adam step size.
        min_count: a key, token or trigram enters the vocabulary if this many labelled steps have it.
    """

    l2: float = 1e-3
    steps: int = 300
    lr: float = 0.05
    min_count: int = 2


@dataclass(frozen=True)
class Examples:
    """The labelled steps of some runs as model inputs, with their bond indices."""

    inputs: list[StepInput]
    labels: npt.NDArray[np.int64]


def examples(runs: Sequence[Run]) -> Examples:
    inputs: list[StepInput] = []
    labels: list[int] = []
    for run in runs:
        for step, gold in zip(trace_inputs(run.question, run.steps), run.gold, strict=True):
            if gold is not None:
                inputs.append(step)
                labels.append(BONDS.index(gold))
    return Examples(inputs, np.array(labels, dtype=np.int64))


def vocabulary(inputs: Sequence[StepInput], min_count: int) -> tuple[dict[Key, int], dict[str, int], dict[Key, int]]:
    """Keys, tokens and trigrams seen in at least `min_count` steps, in sorted order, numbered after DENSE."""
    keys: Counter[Key] = Counter(k for s in inputs for k in set(s.keys))
    words: Counter[str] = Counter(w for s in inputs for w in s.words)
    grams: Counter[Key] = Counter(g for s in inputs for g in s.grams)
    k = sorted(x for x, n in keys.items() if n >= min_count)
    w = sorted(x for x, n in words.items() if n >= min_count)
    g = sorted(x for x, n in grams.items() if n >= min_count)
    first = len(DENSE)
    return (
        {x: i for i, x in enumerate(k, first)},
        {x: i for i, x in enumerate(w, first + len(k))},
        {x: i for i, x in enumerate(g, first + len(k) + len(w))},
    )


def fit(runs: Sequence[Run], settings: FitSettings | None = None) -> Model:
    """Train on the labelled steps of `runs`."""
    cfg = settings or FitSettings()
    data = examples(runs)
    if not len(data.labels):
        raise ValueError("no labelled steps to train on")
    keys, words, grams = vocabulary(data.inputs, cfg.min_count)
    n_rows = len(DENSE) + len(keys) + len(words) + len(grams)
    empty = Model(keys, words, grams, np.zeros((n_rows, len(BONDS))))
    dense = np.array([s.dense for s in data.inputs], dtype=np.float64)
    rows, vals, owner = _sorted_sparse(empty, data.inputs)
    weights = _adam(dense, rows, vals, owner, data.labels, n_rows, cfg)
    info = {
        "labelled_steps": len(data.labels),
        "runs": len(runs),
        "labels_sha1": _digest(runs),
        "class_counts": {b: int((data.labels == i).sum()) for i, b in enumerate(BONDS)},
        "settings": asdict(cfg),
    }
    return Model(keys, words, grams, weights, info)


def _sorted_sparse(
    model: Model, inputs: Sequence[StepInput]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    rows, vals, owner = model.sparse(inputs)
    order = np.lexsort((rows, owner))  # set order varies between processes; sums must not
    return rows[order], vals[order], owner[order]


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
    penalty[0] = 0.0  # the bias
    nd = len(DENSE)
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
