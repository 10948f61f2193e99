"""Train the `learned` labeler's recurrent last stage (`sequence.Recurrent`) with torch.

Deterministic: one thread, a fixed seed per net, batches of runs in length order shuffled by a seeded
generator. Class-balanced cross-entropy on the labelled steps (every class weighs the same, as the stacked
stages); unlabelled steps are read as context only. Sizes (32 units, 20 epochs, 3 nets) chosen by 3-fold
cross-validation by question on the train split (bench/sequence_experiment.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from molspec.structure.label import BONDS
from molspec.structure.sequence import Matrix, Recurrent, raw_inputs

LR = 3e-3
WEIGHT_DECAY = 1e-4
BATCH = 8  # runs per batch
_NAMES = {"weight_ih_l0": "ih", "weight_hh_l0": "hh", "bias_ih_l0": "b_ih", "bias_hh_l0": "b_hh"}


class Net(torch.nn.Module):
    """One GRU (bidirectional unless causal) and a linear head over its state and the inputs."""

    def __init__(self, d_in: int, hidden: int, bidirectional: bool) -> None:
        super().__init__()
        self.gru = torch.nn.GRU(d_in, hidden, batch_first=True, bidirectional=bidirectional)
        # the head reads the inputs too: it starts as a re-weighting of the stacked scores
        self.head = torch.nn.Linear(hidden * (2 if bidirectional else 1) + d_in, len(BONDS))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        result: torch.Tensor = self.head(torch.cat([out, x], dim=-1))
        return result


def fit_recurrent(
    stacked: Sequence[Matrix],
    dense: Sequence[Matrix],
    gold: Sequence[npt.NDArray[np.int64]],
    causal: bool,
    shift: Matrix,
    hidden: int,
    epochs: int,
    nets: int,
) -> Recurrent:
    """`nets` GRUs (seeds 0..nets-1) on runs' out-of-fold stacked scores; `shift` (the prior) is added to
    each head's bias."""
    raw = raw_inputs(stacked, dense, causal)
    flat = np.vstack(raw)
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    mean[: len(BONDS)], std[: len(BONDS)] = 0.0, 1.0  # log-probabilities as they are
    std = np.where(std > 1e-6, std, 1.0)
    xs = [(x - mean) / std for x in raw]
    torch.set_num_threads(1)
    trained = tuple(_one(xs, gold, not causal, hidden, epochs, seed) for seed in range(nets))
    for net in trained:
        net["head_b"] = net["head_b"] + shift
    return Recurrent(mean, std, trained, causal)


def _one(
    xs: Sequence[Matrix],
    gold: Sequence[npt.NDArray[np.int64]],
    bidirectional: bool,
    hidden: int,
    epochs: int,
    seed: int,
) -> dict[str, Matrix]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    labels = np.concatenate([y[y >= 0] for y in gold])
    counts = np.bincount(labels, minlength=len(BONDS)).astype(np.float64)
    per_class = np.where(counts > 0, len(labels) / (len(BONDS) * np.maximum(counts, 1.0)), 0.0)
    net = Net(xs[0].shape[1], hidden, bidirectional)
    opt = torch.optim.Adam(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    order = sorted((i for i in range(len(xs)) if len(xs[i])), key=lambda i: len(xs[i]))
    batches = [
        b for b in (order[i : i + BATCH] for i in range(0, len(order), BATCH)) if any((gold[i] >= 0).any() for i in b)
    ]
    tensors = [pad_runs(xs, gold, b) for b in batches]
    weight = torch.tensor(per_class, dtype=torch.float32)
    for _ in range(epochs):
        for j in rng.permutation(len(tensors)).tolist():
            x, y, lengths = tensors[j]
            loss = torch.nn.functional.cross_entropy(
                net(x, lengths).reshape(-1, len(BONDS)), y.reshape(-1), weight=weight, ignore_index=-1
            )
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
    return matrices(net)


def pad_runs(
    xs: Sequence[Matrix], gold: Sequence[npt.NDArray[np.int64]], idx: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The runs `idx` as one padded batch: inputs, labels (-1 past a run's end and where unlabelled), lengths."""
    t = max(len(xs[i]) for i in idx)
    x = np.zeros((len(idx), t, xs[0].shape[1]), dtype=np.float32)
    y = np.full((len(idx), t), -1, dtype=np.int64)
    for row, i in enumerate(idx):
        x[row, : len(xs[i])] = xs[i]
        y[row, : len(gold[i])] = gold[i]
    return torch.from_numpy(x), torch.from_numpy(y), torch.tensor([len(xs[i]) for i in idx])


def matrices(net: Net) -> dict[str, Matrix]:
    """The net's parameters by `sequence.PARTS` name, as float64 arrays."""
    out: dict[str, Matrix] = {}
    for name, value in net.gru.state_dict().items():
        base, reverse = name.removesuffix("_reverse"), name.endswith("_reverse")
        out[_NAMES[base] + ("_r" if reverse else "")] = value.detach().double().numpy()
    out["head"] = net.head.weight.detach().double().numpy()
    out["head_b"] = net.head.bias.detach().double().numpy()
    return out
