"""The `learned` labeler: a multinomial logistic regression over `features.trace_inputs`.

The model is linear: per bond, a weight per dense signal, per opening/context key, per token and per
token; the highest sum wins. It reads paragraph-sized and sentence-sized steps alike. Its last stage
(`sequence.Recurrent`) re-scores each step with small GRUs over the run (forward only for a causal
model; numpy, no torch).
Weights are trained by `scripts/train_labeler.py` (see `learned_fit.fit`) from the hand labels and
shipped in the wheel as `molspec/structure/weights/learned.json`: the vocabularies as JSON, the
weight matrices as base64 little-endian float16 (half the size; no label changes at that precision),
and a record of what it was trained on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from molspec.diagnostics import Diagnostic, Label, MolspecError, Span
from molspec.structure.features import DENSE, Key, StepInput, left_only, strip_opener, trace_inputs
from molspec.structure.label import BONDS, NextLabel
from molspec.structure.sequence import Recurrent, decode_half, encode_half

FORMAT = 4
Matrix = npt.NDArray[np.float64]


# Each later stage reads the previous stage's probabilities of the step and its neighbours (three back,
# three ahead) and their means over the wider windows before and after (steps 4-8 away), and the same
# again for short steps only: sentence-sized steps inherit more from their neighbours (a verification
# pass spans many sentences) than paragraphs do.
OFFSETS = (0, -3, -2, -1, 1, 2, 3)
WIDE = (4, 8)  # the window means cover steps WIDE[0]..WIDE[1] away on each side
SHORT_CHARS = 250
_SLOTS = tuple(f"{off:+d}" for off in OFFSETS) + ("before", "after")
CONTEXT: tuple[str, ...] = tuple(f"{kind}p{slot}_{b}" for kind in ("", "short_") for slot in _SLOTS for b in BONDS)
_LOG_CHARS = DENSE.index("log_chars")
_RIGHT = [i for i, slot in enumerate(_SLOTS) if slot == "after" or (slot.startswith("+") and slot != "+0")]
_RIGHT_COLUMNS = [i * len(BONDS) + b for i in _RIGHT for b in range(len(BONDS))]


def softmax(z: Matrix) -> Matrix:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    out: Matrix = e / e.sum(axis=1, keepdims=True)
    return out


def context_features(probs: Matrix, dense: Matrix, causal: bool = False) -> Matrix:
    """(steps, len(CONTEXT)): neighbours' probabilities from the stage before (zero past either end), the mean of
    each wide window (zero where it is empty), then the same masked to short steps. `causal` zeroes every
    column of the steps after (positive offsets and the "after" window): the columns stay, so the weights
    file layout is the same."""
    n, k = probs.shape
    pad = WIDE[1]
    padded = np.zeros((n + 2 * pad, k))
    padded[pad : n + pad] = probs
    window = [padded[pad + off : n + pad + off] for off in OFFSETS]
    cum = np.vstack([np.zeros((1, k)), np.cumsum(padded, axis=0)])
    inside = np.concatenate([np.zeros(pad), np.ones(n), np.zeros(pad)])
    cnt = np.concatenate([[0.0], np.cumsum(inside)])
    idx = np.arange(n) + pad
    for lo, hi in ((idx - WIDE[1], idx - WIDE[0] + 1), (idx + WIDE[0], idx + WIDE[1] + 1)):
        total, m = cum[hi] - cum[lo], (cnt[hi] - cnt[lo])[:, None]
        window.append(np.divide(total, m, out=np.zeros_like(total), where=m > 0))
    wide = np.hstack(window)
    if causal:
        wide[:, _RIGHT_COLUMNS] = 0.0
    return by_length(wide, dense)


def by_length(wide: Matrix, dense: Matrix) -> Matrix:
    """The context columns `wide`, then the same again masked to short steps (read from `dense`'s length)."""
    short = (dense[:, _LOG_CHARS] < np.log1p(SHORT_CHARS) / 8.0).astype(np.float64)[:, None]
    out: Matrix = np.hstack([wide, wide * short])
    return out


@dataclass(frozen=True)
class Model:
    """Vocabularies and stages of weights.

    Attributes:
        keys / words: the vocabularies (key -> sparse row; rows are numbered after `DENSE`).
        weights: stage 1, (len(DENSE) + vocabulary, len(BONDS)): rows `DENSE`, then the sparse rows.
        stages: the later stages, each (len(DENSE) + len(CONTEXT) + vocabulary, len(BONDS)): rows
            `DENSE`, `CONTEXT`, then the sparse rows; each re-scores every step knowing its
            neighbours' labels as the stage before it gave them.
        info: what the model was trained on (label count, label digest, settings), for the record.
        sequence: the last stage, if any: GRUs over the whole run reading the stages' scores (`sequence`).
    """

    keys: dict[Key, int]
    words: dict[str, int]
    weights: Matrix
    stages: tuple[Matrix, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)
    sequence: Recurrent | None = None

    @property
    def causal(self) -> bool:
        """Trained to read only the question and the steps before each step ("learned-causal")."""
        return bool(self.info.get("causal"))

    @property
    def n_rows(self) -> int:
        return len(DENSE) + len(self.keys) + len(self.words)

    def scores(self, inputs: Sequence[StepInput]) -> Matrix:
        """(steps, bonds) scores of one trace's steps."""
        return self.scores_many([inputs])[0]

    def scores_many(self, traces: Sequence[Sequence[StepInput]], left_done: bool = False) -> list[Matrix]:
        """`scores` of many traces in one pass: stage 1 is row-wise, so one product covers every step of every
        trace; the later stages' context features are made per trace, so no trace sees another's steps. Equal
        to one call per trace up to BLAS summation order (labels tested equal). `left_done`: a causal model's
        inputs are already `left_only` (training's), so they are not cut again."""
        causal = self.causal
        flat = [s for t in traces for s in (left_only(t) if causal and not left_done else t)]
        cuts = np.cumsum([0, *(len(t) for t in traces)]).tolist()
        spans = [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
        if not flat:
            return [np.zeros((0, len(BONDS))) for _ in traces]
        dense = np.array([s.dense for s in flat], dtype=np.float64)
        rows, vals, owner = self.sparse(flat)
        z = linear(self.weights, dense, rows, vals, owner)
        for stage in self.stages:
            probs = softmax(z)
            ctx = np.vstack([context_features(probs[a:b], dense[a:b], causal) for a, b in spans if b > a])
            z = linear(stage, np.hstack([dense, ctx]), rows + len(CONTEXT), vals, owner)
        if self.sequence is not None:
            return self.sequence.scores([z[a:b] for a, b in spans], [dense[a:b] for a, b in spans])
        return [z[a:b] for a, b in spans]

    def sparse(
        self, inputs: Sequence[StepInput]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """Flat (row, value, step) triples of the steps' known sparse keys."""
        kv, wv = self.keys, self.words
        rows: list[int] = []
        counts: list[int] = []  # per step: opening/context hits, then body hits
        weights: list[float] = []
        for s in inputs:
            # map/filter keep the lookups in C; no sparse row is 0 (rows start after DENSE)
            start = len(rows)
            rows += filter(None, map(kv.get, s.keys))
            middle = len(rows)
            rows += filter(None, map(wv.get, s.words))
            counts += (middle - start, len(rows) - middle)
            weights += (1.0, s.body_weight)
        owner = np.repeat(np.arange(len(inputs), dtype=np.int64), np.add.reduceat(counts, range(0, len(counts), 2)))
        return np.array(rows, dtype=np.int64), np.repeat(weights, counts), owner

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "bonds": list(BONDS),
                "dense": list(DENSE),
                "context": list(CONTEXT),
                "keys": [list(k) for k in self.keys],
                "words": list(self.words),
                "weights": encode_half(self.weights),
                "stages": [encode_half(w) for w in self.stages],
                "sequence": self.sequence.to_obj() if self.sequence else None,
                "info": self.info,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @staticmethod
    def from_json(text: str) -> Model:
        data = json.loads(text)
        if (data.get("format"), data.get("bonds"), data.get("dense"), data.get("context")) != (
            FORMAT, list(BONDS), list(DENSE), list(CONTEXT),
        ):  # fmt: skip
            raise ValueError("weights were written for another feature set; retrain with scripts/train_labeler.py")
        keys = {tuple(k): i for i, k in enumerate(data["keys"], len(DENSE))}
        words = {w: i for i, w in enumerate(data["words"], len(DENSE) + len(keys))}
        sequence = Recurrent.from_obj(data["sequence"]) if data.get("sequence") else None
        model = Model(
            keys,
            words,
            _decode(data["weights"]),
            tuple(map(_decode, data["stages"])),
            dict(data.get("info", {})),
            sequence,
        )
        if model.weights.shape[0] != model.n_rows or any(
            w.shape[0] != model.n_rows + len(CONTEXT) for w in model.stages
        ):
            raise ValueError("weight matrix does not match the vocabularies")
        return model


def linear(
    w: Matrix, dense: Matrix, rows: npt.NDArray[np.int64], vals: npt.NDArray[np.float64], owner: npt.NDArray[np.int64]
) -> Matrix:
    """dense @ w[:dense columns] + the sparse rows' weights summed per step."""
    n = dense.shape[0]
    out: Matrix = dense @ w[: dense.shape[1]]
    picked = w[rows] * vals[:, None]
    for c in range(w.shape[1]):
        out[:, c] += np.bincount(owner, weights=picked[:, c], minlength=n)
    return out


def _decode(blob: str) -> Matrix:
    return decode_half(blob, (-1, len(BONDS)))


def weights_path(name: str = "learned") -> Path:
    """Where the shipped weights of labeler `name` live (inside the installed package)."""
    return Path(str(resources.files("molspec.structure") / "weights" / f"{name}.json"))


@cache
def shipped_model(name: str = "learned") -> Model:
    """The shipped model of labeler `name` ("learned", "learned-blind", "learned-causal"), read once per process.

    Raises:
        MolspecError (MOL790): the weights file is missing or unreadable.
    """
    path = weights_path(name)
    try:
        return Model.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError) as exc:
        raise MolspecError(
            [
                Diagnostic(
                    "MOL790",
                    f"cannot load the learned labeler's weights: {exc}",
                    Label(Span(str(path), 0, 0, 1, 1)),
                    help="reinstall molspec, retrain with scripts/train_labeler.py, or use --labeler cue",
                )
            ]
        ) from exc


@dataclass
class LearnedLabeler:
    """The `learned` labeler; `model=None` uses the shipped weights of `name`.

    A model trained with `strip_openers` ("learned-blind") removes each step's opening discourse
    markers (`features.strip_opener`) before reading it, in training and here: "Wait, let me check."
    in front of a step cannot change its label, so a generator gated by it cannot game it that way.
    """

    model: Model | None = None
    name: str = "learned"

    def label(self, question: str | None, steps: Sequence[str]) -> list[str]:
        return self.label_many([(question, steps)])[0]

    def label_many(self, traces: Sequence[tuple[str | None, Sequence[str]]]) -> list[list[str]]:
        """`label` of many traces at once (a build round's attempts): one matrix product per stage."""
        model = self._model
        inputs = [trace_inputs(q, [self._read(s) for s in steps]) for q, steps in traces]
        return [[BONDS[i] for i in z.argmax(axis=1).tolist()] for z in model.scores_many(inputs)]

    # One new step at a time (`label.StepLabeler`), for a causal model: see `learned_next`.

    @property
    def reads_left_only(self) -> bool:
        return self._model.causal

    def walk(self, question: str | None) -> object:
        from molspec.structure import learned_next

        return learned_next.start(self._model, question)

    def then(self, walk: object, step: str) -> object:
        from molspec.structure import learned_next

        assert isinstance(walk, learned_next.Walk)
        return learned_next.then(self._model, walk, self._read(step))

    def label_next(self, items: Sequence[tuple[object, str]]) -> list[NextLabel]:
        from molspec.structure import learned_next

        walks = [(w, self._read(text)) for w, text in items if isinstance(w, learned_next.Walk)]
        if len(walks) != len(items):
            raise TypeError("label_next reads walks that this labeler's `walk` made")
        if not walks:
            return []
        z, after = learned_next.read_next(self._model, walks)
        probs = softmax(z).tolist()
        return [NextLabel(BONDS[i], w, tuple(p)) for i, w, p in zip(z.argmax(axis=1).tolist(), after, probs,
                                                                     strict=True)]

    @property
    def _model(self) -> Model:
        return self.model or shipped_model(self.name)

    def _read(self, step: str) -> str:
        """The step as the model reads it: without its opening markers for a blind model."""
        return strip_opener(step) if self._model.info.get("strip_openers") else step
