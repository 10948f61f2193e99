"""The `learned-lm` labelers: `learned` (or `learned-causal`) plus a linear probe over SmolLM2-135M's reading.

The built-in model reads the trace (question first, then the steps) once, with every earlier step in view;
per step the probe reads the mean and the last token's hidden state of layers 15 and 22, standardised, through
one linear layer. Its log-probabilities are added to the shipped `learned` model's. Held-out, on the train
split: 0.747 macro-F1 where `learned` reads 0.700 (bench/lm_probe_experiment.md). It reads about 11 steps/s
on 2 CPU cores (torch; a GPU when one is visible), so it is opt-in: `analyze` / `extract --labeler learned-lm`.
`learned-lm-causal` adds the probe to `learned-causal` instead, and can gate a build (`fidelity { labeler = ...
}`): it reads each attempt after the walk's cached reading (`lm_next`).
The probe's weights (`weights/learned-lm.json`) are trained by `scripts/train_lm_probe.py`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from molspec.structure import learned_next
from molspec.structure.features import trace_inputs
from molspec.structure.label import BONDS, LM_LABELERS, NextLabel
from molspec.structure.learned import Model, shipped_model, softmax, weights_path
from molspec.structure.sequence import decode_half, encode_half

if TYPE_CHECKING:
    from molspec.structure.lm_next import LmWalk

Matrix = npt.NDArray[np.float64]
NAME = "learned-lm"
LAYERS = (15, 22)  # of SmolLM2-135M's 30: the middle-upper layers read best (bench/lm_probe_experiment.md)
WINDOW, CARRY = 1024, 256  # tokens per forward pass, and how many of them repeat the window before as context
JOINER = "\n\n"  # a build's or a trace's steps are paragraphs; labelled sentence runs are joined by spaces
L2 = 0.01


def joiner_of(unit: str) -> str:
    """How the steps of a labelled run of `unit` ("paragraph", "sentence") stood in their trace."""
    return " " if unit == "sentence" else JOINER


def trace_text(question: str | None, steps: Sequence[str], joiner: str = JOINER) -> tuple[str, list[tuple[int, int]]]:
    """The text the model reads and each step's (start, end) in it."""
    text, spans = "Problem: " + (question or "") + "\n\n", []
    for step in steps:
        spans.append((len(text), len(text) + len(step)))
        text += step + joiner
    return text, spans


def step_tokens(starts: npt.NDArray[Any], ends: npt.NDArray[Any], a: int, b: int) -> npt.NDArray[np.intp]:
    """Indices of the tokens (character `starts`/`ends`) that lie inside a step's span [a, b), none empty."""
    return np.nonzero((starts >= a) & (ends <= b) & (ends > starts))[0]


def pooled(states: Sequence[npt.NDArray[np.float32]], idx: npt.NDArray[np.intp]) -> Matrix:
    """A step's features: per layer's `states`, the mean and the last of its tokens' (`idx`) rows."""
    row: Matrix = np.concatenate([np.concatenate([s[idx].mean(axis=0), s[idx[-1]]]) for s in states])
    return row.astype(np.float64)


class Reader:
    """SmolLM2-135M-Instruct (converted once, `engines.builtin`) reading traces into per-step features."""

    def __init__(self, path: Path | None = None, whole: bool = False) -> None:
        from molspec.engines.base import EngineError
        from molspec.engines.builtin import ensure_smollm2

        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError as exc:  # a clear error, not a traceback, where the labeler's model cannot run
            raise EngineError("the learned-lm labelers read steps with the built-in SmolLM2 through torch and "
                              "transformers: pip install 'molspec[transformers]', or use another labeler") from exc

        folder = path or ensure_smollm2()
        self._torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        # A labeler's output is its report, not a loading bar; the bar's setting is restored after loading.
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        try:
            self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        finally:
            if bars:
                hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
        if not whole:
            self._drop_unread_layers()
        self.model.eval()  # type: ignore[no-untyped-call]
        self.model.to(self.device)  # type: ignore[arg-type]  # transformers types `to` for models only

    def _drop_unread_layers(self) -> None:
        """Keep the layers up to the last one read, and one more: the model returns its last layer's state
        normalised, the others as they are (a quarter less work per token; equal features, tested)."""
        keep = max(LAYERS) + 1
        inner = self.model.model
        inner.layers = inner.layers[:keep]
        self.model.config.num_hidden_layers = keep

    def features(self, question: str | None, steps: Sequence[str], joiner: str = JOINER) -> Matrix:
        """(steps, 2 x hidden x len(LAYERS)): per step, per layer, the mean and the last of its tokens' states."""
        text, spans = trace_text(question, steps, joiner)
        enc = self.tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        states = self._states(ids)
        starts = np.array([o[0] for o in offsets])
        ends = np.array([o[1] for o in offsets])
        rows = []
        for a, b in spans:
            idx = step_tokens(starts, ends, a, b)
            if len(idx) == 0:  # an empty step: the token just before it
                idx = np.array([max(0, int(np.searchsorted(starts, a)) - 1)])
            rows.append(pooled(states, idx))
        return np.array(rows, dtype=np.float64)

    def _states(self, ids: list[int]) -> list[npt.NDArray[np.float32]]:
        """Each layer's hidden state of every token, read in windows that carry the tokens before them."""
        torch = self._torch
        hidden = int(self.model.config.hidden_size)
        states = [np.zeros((len(ids), hidden), dtype=np.float32) for _ in LAYERS]
        start = 0
        with torch.inference_mode():
            while start < len(ids):
                lo, hi = max(0, start - CARRY), min(len(ids), start + WINDOW - CARRY)
                out = self.model.model(torch.tensor([ids[lo:hi]], device=self.device), output_hidden_states=True)
                for s, layer in zip(states, LAYERS, strict=True):
                    s[start:hi] = out.hidden_states[layer][0, start - lo :].float().cpu().numpy()
                start = hi
        return states


@dataclass(frozen=True)
class Probe:
    """Standardisation and one linear layer over `Reader.features`; `info` records what it was trained on."""

    mean: Matrix
    scale: Matrix
    weights: Matrix  # (features, len(BONDS))
    bias: Matrix  # (len(BONDS),)
    info: dict[str, Any] = field(default_factory=dict)

    def log_probs(self, features: Matrix) -> Matrix:
        return log_softmax(((features - self.mean) / self.scale) @ self.weights + self.bias)

    def to_json(self) -> str:
        blobs = {k: encode_half(getattr(self, k)) for k in ("mean", "scale", "weights", "bias")}
        return json.dumps({"format": 1, "layers": list(LAYERS), "info": self.info, **blobs}, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> Probe:
        d = json.loads(text)
        mean, scale, bias = (decode_half(d[k], (-1,)) for k in ("mean", "scale", "bias"))
        return Probe(mean, scale, decode_half(d["weights"], (len(mean), len(BONDS))), bias, d["info"])


def fit_probe(
    features: Matrix, gold: npt.NDArray[np.int64], l2: float = L2, info: dict[str, Any] | None = None
) -> Probe:
    """The probe over `features` (one row per labelled step) for `gold` (indices into `BONDS`): standardised,
    then a multinomial logistic regression with an L2 penalty, fitted by L-BFGS (torch, deterministic)."""
    import torch

    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-4
    x = torch.tensor((features - mean) / scale, dtype=torch.float32)
    y = torch.tensor(gold)
    w = torch.zeros(x.shape[1], len(BONDS), requires_grad=True)
    b = torch.zeros(len(BONDS), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w + b, y) + l2 * (w**2).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    opt.step(closure)  # type: ignore[no-untyped-call]
    weights = w.detach().numpy().astype(np.float64)
    return Probe(mean, scale, weights, b.detach().numpy().astype(np.float64), dict(info or {}, l2=l2))


def log_softmax(z: Matrix) -> Matrix:
    z = z - z.max(axis=1, keepdims=True)
    out: Matrix = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return out


@cache
def shipped_probe() -> Probe:
    return Probe.from_json(weights_path(NAME).read_text(encoding="utf-8"))


@cache
def _reader() -> Reader:
    return Reader()


@dataclass(frozen=True)
class StepWalk:
    """What `learned-lm-causal` keeps of a walk (`label.StepLabeler`): the causal model's and SmolLM2's readings."""

    base: learned_next.Walk
    lm: LmWalk


@dataclass
class LmProbeLabeler:
    """`learned`'s log-probabilities plus the probe's, per step; the likeliest bond wins.

    `probe` / `reader` / `base` default to the shipped probe, the built-in model (loaded on first use) and the
    shipped `learned` model (`learned-causal` for "learned-lm-causal", which the fidelity gate can use: it reads
    a walk one new step at a time, `label.StepLabeler`, with SmolLM2's cache of the walk kept)."""

    probe: Probe | None = None
    reader: Reader | None = None
    base: Model | None = None
    name: str = NAME

    def label(self, question: str | None, steps: Sequence[str]) -> list[str]:
        return self.label_many([(question, steps)])[0]

    def label_many(self, traces: Sequence[tuple[str | None, Sequence[str]]]) -> list[list[str]]:
        return [[BONDS[i] for i in z.argmax(axis=1).tolist()] for z in self.scores_many(traces)]

    def scores_many(self, traces: Sequence[tuple[str | None, Sequence[str]]]) -> list[Matrix]:
        probe, reader = self._probe, self._reader
        base = self._base.scores_many([trace_inputs(q, list(steps)) for q, steps in traces])
        return [log_softmax(z) + probe.log_probs(reader.features(q, steps)) if len(steps) else z
                for z, (q, steps) in zip(base, traces, strict=True)]  # fmt: skip

    # One new step at a time (`label.StepLabeler`), for the causal base: see `lm_next`.

    @property
    def reads_left_only(self) -> bool:
        return self._base.causal

    def walk(self, question: str | None) -> object:
        from molspec.structure import lm_next

        return StepWalk(learned_next.start(self._base, question), lm_next.start(question))

    def then(self, walk: object, step: str) -> object:
        return self.label_next([(walk, step)])[0].walk

    def label_next(self, items: Sequence[tuple[object, str]]) -> list[NextLabel]:
        from molspec.structure import lm_next

        walks = [(w, text) for w, text in items if isinstance(w, StepWalk)]
        if len(walks) != len(items):
            raise TypeError("label_next reads walks that this labeler's `walk` made")
        if not walks:
            return []
        z, after = learned_next.read_next(self._base, [(w.base, text) for w, text in walks])
        read = [lm_next.read(self._reader, w.lm, text) for w, text in walks]
        scores = log_softmax(z) + self._probe.log_probs(np.vstack([f for f, _w in read]))
        probs = softmax(scores).tolist()
        return [NextLabel(BONDS[i], StepWalk(b, lm), tuple(p))
                for i, b, (_f, lm), p in zip(scores.argmax(axis=1).tolist(), after, read, probs, strict=True)]

    @property
    def _probe(self) -> Probe:
        return self.probe or shipped_probe()

    @property
    def _reader(self) -> Reader:
        return self.reader or _reader()

    @property
    def _base(self) -> Model:
        return self.base or shipped_model(LM_LABELERS[self.name])
