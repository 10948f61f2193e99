"""The causal learned labeler one new step at a time: what the fidelity gate asks of every attempt.

`learned-causal` reads a step and the steps before it only, so nothing it computed for a walk's earlier steps
changes when a step is added. A `Walk` keeps that: the earlier steps' features (`features.Before`), their
probabilities at each stacked stage (the last WIDE[1] steps: all that the context features reach) and the
recurrent stage's states. Labelling an attempt then reads the attempt alone, where re-reading its walk
(`Model.scores_many`) costs O(steps) per attempt. Equal to `scores_many` of the whole walk's last step (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from molspec.structure.features import Before, next_input
from molspec.structure.label import BONDS, StepFeatures, step_features
from molspec.structure.learned import CONTEXT, OFFSETS, WIDE, Matrix, Model, by_length, linear, softmax


@dataclass(frozen=True)
class Walk:
    """What the model keeps of a walk's steps so far.

    Attributes:
        before: the question and the steps, as `features.next_input` reads them.
        tails: per stacked stage, the probabilities its context features read of the last WIDE[1] steps
            (the stage before's output; oldest first).
        hidden: the recurrent stage's state per net after the steps (empty without one).
    """

    before: Before
    tails: tuple[Matrix, ...]
    hidden: tuple[Matrix, ...]


@dataclass(frozen=True)
class _Next:
    scores: Matrix  # (steps, bonds)
    probs: tuple[Matrix, ...]  # per stacked stage: (steps, bonds), what it read of the new steps
    hidden: tuple[Matrix, ...]  # per net: (steps, state)
    feats: tuple[StepFeatures, ...]


def start(model: Model, question: str | None) -> Walk:
    """A walk with no steps yet."""
    if not model.causal:
        raise ValueError("only a causal model ('learned-causal') reads a walk one step at a time")
    tails = tuple(np.zeros((0, len(BONDS))) for _ in model.stages)
    return Walk(Before.of(question), tails, model.sequence.start() if model.sequence else ())


def scores_next(model: Model, items: Sequence[tuple[Walk, str]]) -> Matrix:
    """(items, bonds): the scores of each item's new step read after its walk, in one pass for them all."""
    return _next(model, items).scores


def read_next(model: Model, items: Sequence[tuple[Walk, str]]) -> tuple[Matrix, list[Walk]]:
    """`scores_next`, and each item's walk with its new step kept (what `then` gives), from the same pass."""
    nxt = _next(model, items)
    return nxt.scores, [_kept(w, text, nxt, i) for i, (w, text) in enumerate(items)]


def then(model: Model, walk: Walk, step: str) -> Walk:
    """`walk` with `step` kept at its end."""
    return _kept(walk, step, _next(model, [(walk, step)]), 0)


def _kept(walk: Walk, step: str, nxt: _Next, i: int) -> Walk:
    tails = tuple(np.vstack([t, p[i : i + 1]])[-WIDE[1]:] for t, p in zip(walk.tails, nxt.probs, strict=True))
    return Walk(walk.before.then(step, nxt.feats[i]), tails, tuple(h[i] for h in nxt.hidden))


def _next(model: Model, items: Sequence[tuple[Walk, str]]) -> _Next:
    feats = tuple(step_features(text) for _w, text in items)
    inputs = [next_input(w.before, text, f) for (w, text), f in zip(items, feats, strict=True)]
    dense = np.array([s.dense for s in inputs], dtype=np.float64)
    rows, vals, owner = model.sparse(inputs)
    z = linear(model.weights, dense, rows, vals, owner)
    probs: list[Matrix] = []
    for k, stage in enumerate(model.stages):
        probs.append(softmax(z))
        ctx = last_context([w.tails[k] for w, _t in items], probs[-1], dense)
        z = linear(stage, np.hstack([dense, ctx]), rows + len(CONTEXT), vals, owner)
    hidden: list[Matrix] = []
    if model.sequence is not None:
        z, hidden = model.sequence.step(z, dense, [w.hidden for w, _t in items])
    return _Next(z, tuple(probs), tuple(hidden), feats)


def last_context(tails: Sequence[Matrix], probs: Matrix, dense: Matrix) -> Matrix:
    """(steps, len(CONTEXT)): `learned.context_features(..., causal=True)` of new steps (rows of `probs`, the
    stage before's probabilities, and `dense`) that each follow the steps of their tail."""
    n, k = probs.shape
    back = np.zeros((n, WIDE[1], k))  # right-aligned: back[:, -d] is the step d before
    for i, tail in enumerate(tails):
        if len(tail):
            back[i, WIDE[1] - len(tail[-WIDE[1]:]):] = tail[-WIDE[1]:]
    counts = np.array([max(min(len(t), WIDE[1]) - WIDE[0] + 1, 0) for t in tails], dtype=np.float64)[:, None]
    window = back[:, : WIDE[1] - WIDE[0] + 1].sum(axis=1)  # the steps WIDE[0]..WIDE[1] before
    before = np.divide(window, counts, out=np.zeros_like(window), where=counts > 0)
    zero = np.zeros((n, k))  # the steps after: none yet
    near = [probs if off == 0 else back[:, WIDE[1] + off] if off < 0 else zero for off in OFFSETS]
    return by_length(np.hstack([*near, before, zero]), dense)
