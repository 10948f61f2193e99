"""The `learned` labeler's last stage: small GRUs over the steps of a run, in numpy.

The stacked stages read a fixed window (three steps each side, means 4-8 steps away). A verification pass can
span dozens of sentences, all `reflect`; a recurrent net carries what it has read along the whole run. Each net
reads, per step, the stacked model's log-probabilities (decided balanced: no prior), the step's DENSE signals
and the log run length (standardised with the training steps' mean and spread); its head reads the net's state
and the same inputs. A causal model's nets run forward only and do not read the run length (not known before
the end). The nets' scores are averaged (seeds differ: one net's held-out macro-F1 varied by 0.017 by seed).
Trained by `sequence_fit.fit_recurrent` (torch); labelling needs numpy only. Measured in
bench/sequence_experiment.md.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float64]
GROUP = 32  # runs per pass of the loop over time, sorted by length (little padding)
# the matrices of one net (torch.nn.GRU's names, gates r, z, n); "_r": the backward direction
PARTS = ("ih", "hh", "b_ih", "b_hh", "ih_r", "hh_r", "b_ih_r", "b_hh_r", "head", "head_b")


@dataclass(frozen=True)
class Recurrent:
    """GRUs over runs whose scores are averaged.

    Attributes:
        mean / std: the inputs' standardisation (per input column).
        nets: per net its matrices by `PARTS` name (no "_r" ones when `causal`).
        causal: forward only, and the run length is not read.
    """

    mean: Matrix
    std: Matrix
    nets: tuple[dict[str, Matrix], ...]
    causal: bool

    def scores(self, stacked: Sequence[Matrix], dense: Sequence[Matrix]) -> list[Matrix]:
        """(steps, bonds) scores per run from its stacked scores (no prior) and DENSE rows."""
        xs = [(x - self.mean) / self.std for x in raw_inputs(stacked, dense, self.causal)]
        out = [np.zeros_like(z) for z in stacked]
        order = sorted(range(len(xs)), key=lambda i: len(xs[i]))
        for g in range(0, len(order), GROUP):
            idx = [i for i in order[g : g + GROUP] if len(xs[i])]
            for net in self.nets:
                for i, z in zip(idx, forward(net, [xs[i] for i in idx]), strict=True):
                    out[i] += z / len(self.nets)
        return out

    def step(self, stacked: Matrix, dense: Matrix, hidden: Sequence[Sequence[Matrix]]) -> tuple[Matrix, list[Matrix]]:
        """Causal nets one step on, for a batch of runs: the (runs, bonds) scores of each run's new step from its
        stacked scores and DENSE row, given each run's state per net after the steps before it (`hidden[run][net]`);
        and the new states, per net (runs, state). Equal to `scores` of the whole runs' last steps."""
        if not self.causal:
            raise ValueError("only a causal model reads a run one step at a time")
        x = (raw_inputs([stacked], [dense], True)[0] - self.mean) / self.std
        out = np.zeros_like(stacked)
        states: list[Matrix] = []
        for k, net in enumerate(self.nets):
            h = cell(net, np.stack([run[k] for run in hidden]), x @ net["ih"].T + net["b_ih"])
            out += (np.concatenate([h, x], axis=1) @ net["head"].T + net["head_b"]) / len(self.nets)
            states.append(h)
        return out, states

    def start(self) -> tuple[Matrix, ...]:
        """Each net's state before a run's first step."""
        return tuple(np.zeros(net["hh"].shape[1]) for net in self.nets)

    def to_obj(self) -> dict[str, Any]:
        return {
            "causal": self.causal,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "nets": [{k: [list(m.shape), encode_half(m)] for k, m in net.items()} for net in self.nets],
        }

    @staticmethod
    def from_obj(data: dict[str, Any]) -> Recurrent:
        nets = tuple({k: decode_half(blob, shape) for k, (shape, blob) in net.items()} for net in data["nets"])
        return Recurrent(np.array(data["mean"]), np.array(data["std"]), nets, bool(data["causal"]))


def raw_inputs(stacked: Sequence[Matrix], dense: Sequence[Matrix], causal: bool) -> list[Matrix]:
    """Per run: the stacked log-probabilities, the DENSE rows (steps, len(DENSE)), the log run length (0 if
    `causal`)."""
    out = []
    for z, d in zip(stacked, dense, strict=True):
        logp = z - z.max(axis=1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
        size = np.full((len(z), 1), 0.0 if causal else np.log1p(len(z)) / 8.0)
        out.append(np.hstack([logp, d, size]))
    return out


def forward(net: dict[str, Matrix], xs: Sequence[Matrix]) -> list[Matrix]:
    """One net over runs at once (padded to the longest; each run's backward pass starts at its own end)."""
    if not xs:
        return []
    lengths = np.array([len(x) for x in xs])
    t = int(lengths.max())
    x = np.zeros((len(xs), t, xs[0].shape[1]))
    for i, xi in enumerate(xs):
        x[i, : len(xi)] = xi
    states = [_direction(net, x, "")]
    if "ih_r" in net:
        idx = np.clip(lengths[:, None] - 1 - np.arange(t)[None, :], 0, t - 1)[:, :, None]
        backward = _direction(net, np.take_along_axis(x, idx, axis=1), "_r")
        states.append(np.take_along_axis(backward, idx, axis=1))
    z = np.concatenate([*states, x], axis=2) @ net["head"].T + net["head_b"]
    return [z[i, :n] for i, n in enumerate(lengths.tolist())]


def _direction(net: dict[str, Matrix], x: Matrix, sfx: str) -> Matrix:
    """torch.nn.GRU's recurrence over (runs, steps, inputs): the state after each step."""
    gi = x @ net["ih" + sfx].T + net["b_ih" + sfx]
    h = np.zeros((x.shape[0], net["hh" + sfx].shape[1]))
    out = np.zeros((x.shape[0], x.shape[1], h.shape[1]))
    for step in range(x.shape[1]):
        h = cell(net, h, gi[:, step], sfx)
        out[:, step] = h
    return out


def cell(net: dict[str, Matrix], h: Matrix, g: Matrix, sfx: str = "") -> Matrix:
    """One step of the recurrence from states `h` with input projections `g` (x @ ih.T + b_ih):
    r, u = sigmoid(..), n = tanh(x_n + r * h_n), h = (1 - u) * n + u * h."""
    gh = h @ net["hh" + sfx].T + net["b_hh" + sfx]
    h_size = h.shape[1]
    ru = 1.0 / (1.0 + np.exp(-(g[:, : 2 * h_size] + gh[:, : 2 * h_size])))
    n = np.tanh(g[:, 2 * h_size :] + ru[:, :h_size] * gh[:, 2 * h_size :])
    out: Matrix = n + ru[:, h_size:] * (h - n)
    return out


def encode_half(m: Matrix) -> str:
    """A weight matrix as base64 little-endian float16, the labelers' weights files' format."""
    return base64.b64encode(np.ascontiguousarray(m).astype("<f2").tobytes()).decode("ascii")


def decode_half(blob: str, shape: Sequence[int]) -> Matrix:
    """`encode_half` read back as float64 of `shape` (-1 allowed for one dimension)."""
    return np.frombuffer(base64.b64decode(blob), dtype="<f2").astype(np.float64).reshape(tuple(shape))
