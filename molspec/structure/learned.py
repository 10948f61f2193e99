"""The `learned` labeler: a multinomial logistic regression over `features.trace_inputs`.

The model is linear: per bond, a weight per dense signal, per opening/context key, per token and per
token trigram; the highest sum wins. It reads paragraph-sized and sentence-sized steps alike.
Weights are trained by `scripts/train_labeler.py` (see `learned_fit.fit`) from the hand labels and
shipped in the wheel as `molspec/structure/weights/learned.json`: the vocabularies as JSON, the
weight matrix as base64 little-endian float32, and a record of what it was trained on.
"""

from __future__ import annotations

import base64
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
from molspec.structure.features import DENSE, Key, StepInput, trace_inputs
from molspec.structure.label import BONDS

FORMAT = 1
WEIGHTS_FILE = "learned.json"
Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Model:
    """Vocabularies and weights. Rows of `weights`: `DENSE`, then `keys`, `words`, `grams` in order.

    Attributes:
        keys / words / grams: the vocabularies (key -> row).
        weights: (rows, len(BONDS)) float64.
        info: what the model was trained on (label count, label digest, settings), for the record.
    """

    keys: dict[Key, int]
    words: dict[str, int]
    grams: dict[Key, int]
    weights: Matrix
    info: dict[str, Any] = field(default_factory=dict)

    def scores(self, inputs: Sequence[StepInput]) -> Matrix:
        """(steps, bonds) scores of one trace's steps."""
        n = len(inputs)
        if not n:
            return np.zeros((0, len(BONDS)))
        dense = np.array([s.dense for s in inputs], dtype=np.float64)
        rows, vals, owner = self.sparse(inputs)
        out = dense @ self.weights[: len(DENSE)]
        picked = self.weights[rows] * vals[:, None]
        for c in range(len(BONDS)):
            out[:, c] += np.bincount(owner, weights=picked[:, c], minlength=n)
        return out

    def sparse(
        self, inputs: Sequence[StepInput]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """Flat (row, value, step) triples of the steps' known sparse keys."""
        kv, wv, gv = self.keys, self.words, self.grams
        rows: list[int] = []
        vals: list[float] = []
        owner: list[int] = []
        for j, s in enumerate(inputs):
            hit = [kv[k] for k in s.keys if k in kv]
            body = [wv[w] for w in s.words if w in wv] + [gv[g] for g in s.grams if g in gv]
            rows += hit
            rows += body
            vals += [1.0] * len(hit)
            vals += [s.body_weight] * len(body)
            owner += [j] * (len(hit) + len(body))
        return np.array(rows, dtype=np.int64), np.array(vals), np.array(owner, dtype=np.int64)

    def to_json(self) -> str:
        blob = base64.b64encode(self.weights.astype("<f4").tobytes()).decode("ascii")
        return json.dumps(
            {
                "format": FORMAT,
                "bonds": list(BONDS),
                "dense": list(DENSE),
                "keys": [list(k) for k in self.keys],
                "words": list(self.words),
                "grams": [list(g) for g in self.grams],
                "weights": blob,
                "info": self.info,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @staticmethod
    def from_json(text: str) -> Model:
        data = json.loads(text)
        if data.get("format") != FORMAT or data.get("bonds") != list(BONDS) or data.get("dense") != list(DENSE):
            raise ValueError("weights were written for another feature set; retrain with scripts/train_labeler.py")
        keys = {tuple(k): i for i, k in enumerate(data["keys"], len(DENSE))}
        words = {w: i for i, w in enumerate(data["words"], len(DENSE) + len(keys))}
        grams = {tuple(g): i for i, g in enumerate(data["grams"], len(DENSE) + len(keys) + len(words))}
        flat = np.frombuffer(base64.b64decode(data["weights"]), dtype="<f4").astype(np.float64)
        weights = flat.reshape(-1, len(BONDS))
        if weights.shape[0] != len(DENSE) + len(keys) + len(words) + len(grams):
            raise ValueError("weight matrix does not match the vocabularies")
        return Model(keys, words, grams, weights, dict(data.get("info", {})))


def weights_path() -> Path:
    """Where the shipped weights live (inside the installed package)."""
    return Path(str(resources.files("molspec.structure") / "weights" / WEIGHTS_FILE))


@cache
def shipped_model() -> Model:
    """The model shipped with molspec, read once per process.

    Raises:
        MolspecError (MOL790): the weights file is missing or unreadable.
    """
    path = weights_path()
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
    """The `learned` labeler; `model=None` uses the shipped weights."""

    model: Model | None = None
    name: str = "learned"

    def label(self, question: str | None, steps: Sequence[str]) -> list[str]:
        model = self.model or shipped_model()
        scores = model.scores(trace_inputs(question, steps))
        return [BONDS[i] for i in scores.argmax(axis=1)] if len(steps) else []

    def label_many(self, traces: Sequence[tuple[str | None, Sequence[str]]]) -> list[list[str]]:
        return [self.label(question, steps) for question, steps in traces]
