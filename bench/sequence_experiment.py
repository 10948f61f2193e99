"""Experiment: a small GRU over each run's steps, on top of the stacked `learned` model (see sequence_experiment.md).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/sequence_experiment.py stack heldout   # cache one view's inputs
    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/sequence_experiment.py cv              # sizes: 3-fold CV on train
    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/sequence_experiment.py score           # every view, + speed

`stack` trains the stacked model of a view exactly as `learned_fit.fit` does, plus each fold's last stage, so every
training run gets the full stack's out-of-fold scores (prior 0); test runs get the whole model's scores (prior 0).
These, with the steps' DENSE features, are cached under /tmp/seqexp (never in the repo: no trace text, but large).
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

from molspec.structure import labelset  # noqa: E402
from molspec.structure.evaluate import Report, report  # noqa: E402
from molspec.structure.features import DENSE, left_only, trace_inputs  # noqa: E402
from molspec.structure.label import BONDS  # noqa: E402
from molspec.structure.labelset import Run  # noqa: E402
from molspec.structure.learned import Matrix, Model  # noqa: E402
from molspec.structure.learned_fit import (  # noqa: E402
    FitSettings,
    _out_of_fold,
    _train,
    examples,
    prior_shift,
    settings_for,
    vocabulary,
)
from molspec.structure.sequence import forward  # noqa: E402
from molspec.structure.sequence_fit import Net, matrices, pad_runs  # noqa: E402

CACHE = Path("/tmp/seqexp")
# The DENSE columns the GRU reads ("lean": length, position and the number signals only; default: all of them)
LEAN = ("log_chars", "first", "last", "relative_position", "equations", "digits", "numbers_new", "asks")
COLUMNS: list[int] | None = None
Sets = dict[str, tuple[Sequence[Run], Sequence[Run], bool]]


def view_runs(name: str) -> tuple[list[Run], list[Run], bool]:
    """(train runs, test runs, causal) of a stacked view."""
    runs = labelset.load().runs
    train = [r for r in runs if r.split == "train"]
    held = [r for r in runs if r.split == "heldout"]
    of = {t: [r for r in runs if r.teacher == t] for t in ("r1", "qwq")}
    return {
        "heldout": (train, held, False),
        "causal": (train, held, True),
        "r1->qwq": (of["r1"], of["qwq"], False),
        "qwq->r1": (of["qwq"], of["r1"], False),
    }[name]


@dataclass
class Stacked:
    """One view's cached GRU inputs: per run, the stacked model's scores (prior 0) and DENSE features."""

    train: list[Run]
    test: list[Run]
    causal: bool
    shift: npt.NDArray[np.float64]  # the stacked model's prior: added to its last stage's bias
    oof: list[Matrix]  # train runs: out-of-fold last-stage scores
    folds: list[int]  # train runs: learned_fit's fold (question hash)
    test_scores: list[Matrix]
    train_dense: list[Matrix]
    test_dense: list[Matrix]
    stage_seconds: float
    model: Model | None = None  # the whole stacked model, prior 0 (causal view: scores the gate's prefixes)


def stack(train: Sequence[Run], test: Sequence[Run], cfg: FitSettings) -> Stacked:
    """`learned_fit.fit` (same code path) plus each fold's last stage, for out-of-fold scores of the full stack."""
    started = time.process_time()
    data = examples(train, cfg.folds, cfg.causal)
    keys, words = vocabulary(data.labelled, cfg.min_count)
    shell = Model(keys, words, np.zeros((0, len(BONDS))), info={"causal": cfg.causal})
    everything = [True] * len(train)
    stage1 = _train(shell, data, everything, None, cfg)
    insides = {f: [fold != f for fold in data.folds] for f in sorted(set(data.folds))}
    parts = {f: replace(shell, weights=_train(shell, data, inside, None, cfg)) for f, inside in insides.items()}
    stages: list[Matrix] = []
    for _ in range(cfg.stages):
        context = _out_of_fold(data, parts)
        stages.append(_train(shell, data, everything, context, cfg))
        # unlike fit, the last stage is trained per fold too: the GRU's training inputs are out of fold
        parts = {
            f: replace(m, stages=(*m.stages, _train(shell, data, insides[f], context, cfg))) for f, m in parts.items()
        }
    model = Model(keys, words, stage1, tuple(stages), {"causal": cfg.causal})
    gold = np.concatenate(data.gold)
    counts = np.bincount(gold[gold >= 0], minlength=len(BONDS)).astype(np.float64)
    shift = prior_shift(counts, cfg.prior)
    oof = [parts[f].scores(steps) for steps, f in zip(data.runs, data.folds, strict=True)]
    test_data = examples(test, cfg.folds, cfg.causal)
    test_scores = model.scores_many(test_data.runs)
    dense = [np.array([s.dense for s in steps]).reshape(len(steps), -1) for steps in data.runs]
    test_dense = [np.array([s.dense for s in steps]).reshape(len(steps), -1) for steps in test_data.runs]
    return Stacked(
        list(train), list(test), cfg.causal, shift, oof, data.folds, test_scores, dense, test_dense,
        time.process_time() - started,
        model,
    )  # fmt: skip


def load_view(name: str) -> Stacked:
    with open(CACHE / f"{name.replace('>', '')}.pkl", "rb") as f:
        out: Stacked = pickle.load(f)
    return out


def scores_report(runs: Sequence[Run], scores: Sequence[Matrix]) -> Report:
    pred = [[BONDS[i] for i in z.argmax(axis=1).tolist()] for z in scores]
    return report(*labelset.gold_and_predicted(runs, pred))


def main_stack(name: str) -> None:
    train, test, causal = view_runs(name)
    st = stack(train, test, settings_for(False, causal=causal))
    CACHE.mkdir(exist_ok=True)
    with open(CACHE / f"{name.replace('>', '')}.pkl", "wb") as f:
        pickle.dump(st, f)
    base = scores_report(test, [z + st.shift for z in st.test_scores])
    oof = scores_report(train, [z + st.shift for z in st.oof])
    print(
        f"{name}: stacked baseline {base.macro_f1:.3f} (train out of fold {oof.macro_f1:.3f}), {st.stage_seconds:.0f} s"
    )


# ---------------------------------------------------------------- the GRU


@dataclass(frozen=True)
class GruSettings:
    hidden: int = 32
    epochs: int = 20
    lr: float = 3e-3
    weight_decay: float = 1e-4
    batch: int = 8  # runs per batch (sorted by length, so little padding)
    prior: float = 0.5  # as the stacked model: half way to the training label shares
    seed: int = 0
    ensemble: int = 1  # GRUs from seeds seed, seed + 1, ...; scores averaged


def gru_inputs(
    scores: Sequence[Matrix],
    dense: Sequence[Matrix],
    norm: tuple[Matrix, Matrix] | None = None,
    causal: bool = False,
) -> tuple[list[Matrix], tuple[Matrix, Matrix]]:
    """Per run: log-probabilities of the stacked model (prior 0), standardised DENSE, log run length (0 when
    `causal`: the length is known only at the end)."""
    raw = []
    for z, d in zip(scores, dense, strict=True):
        d = d if COLUMNS is None else d[:, COLUMNS]
        logp = z - z.max(axis=1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
        size = np.full((len(z), 1), 0.0 if causal else np.log1p(len(z)) / 8.0)
        raw.append(np.hstack([logp, d, size]))
    if norm is None:
        flat = np.vstack(raw)
        mean, std = flat.mean(axis=0), flat.std(axis=0)
        mean[: len(BONDS)] = 0.0  # keep log-probabilities as they are
        std[: len(BONDS)] = 1.0
        norm = (mean, np.where(std > 1e-6, std, 1.0))
    return [(x - norm[0]) / norm[1] for x in raw], norm


def gold_of(runs: Sequence[Run]) -> list[npt.NDArray[np.int64]]:
    return [np.array([BONDS.index(g) if g else -1 for g in r.gold], dtype=np.int64) for r in runs]


def train_gru(
    xs: Sequence[Matrix], ys: Sequence[npt.NDArray[np.int64]], cfg: GruSettings, bidirectional: bool,
    checkpoints: Sequence[int] = (),
) -> tuple[object, dict[int, object]]:  # fmt: skip
    """A GRU trained with class-balanced cross-entropy on the labelled steps; also copies at `checkpoints` epochs."""
    import copy

    import torch

    torch.set_num_threads(1)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    labels = np.concatenate([y[y >= 0] for y in ys])
    counts = np.bincount(labels, minlength=len(BONDS)).astype(np.float64)
    per_class = np.where(counts > 0, len(labels) / (len(BONDS) * np.maximum(counts, 1.0)), 0.0)
    net = Net(xs[0].shape[1], cfg.hidden, bidirectional)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    order = sorted(range(len(xs)), key=lambda i: len(xs[i]))
    batches = [order[i : i + cfg.batch] for i in range(0, len(order), cfg.batch)]
    batches = [b for b in batches if any((ys[i] >= 0).any() for i in b)]
    tensors = [pad_runs(xs, ys, b) for b in batches]
    weight = torch.tensor(per_class, dtype=torch.float32)
    kept: dict[int, object] = {}
    for epoch in range(1, cfg.epochs + 1):
        net.train()
        for j in rng.permutation(len(tensors)):
            x, y, lengths = tensors[j]
            out = net(x, lengths)
            loss = torch.nn.functional.cross_entropy(
                out.reshape(-1, len(BONDS)), y.reshape(-1), weight=weight, ignore_index=-1
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
        if epoch in checkpoints:
            kept[epoch] = copy.deepcopy(net)
    return net, kept


@dataclass
class Ensemble:
    """GRUs trained from different seeds; their scores are averaged."""

    nets: list[object]


def gru_scores(net: object, xs: Sequence[Matrix]) -> list[Matrix]:
    """The GRU's scores (no prior) of every run, with numpy (the shipped labeler could not import torch)."""
    if isinstance(net, Ensemble):
        each = [gru_scores(n, xs) for n in net.nets]
        return [sum(z[i] for z in each) / len(each) for i in range(len(xs))]
    return numpy_forward(matrices(net), xs)  # type: ignore[arg-type]


def numpy_forward(w: dict[str, Matrix], xs: Sequence[Matrix], group: int = 32) -> list[Matrix]:
    """`sequence.forward` over runs grouped by length (`group` runs at a time: little padding)."""
    order = sorted(range(len(xs)), key=lambda i: len(xs[i]))
    out: list[Matrix] = [np.zeros((0, len(BONDS)))] * len(xs)
    for g in range(0, len(order), group):
        idx = order[g : g + group]
        for i, z in zip(idx, forward(w, [xs[i] for i in idx]), strict=True):
            out[i] = z
    return out


def shares_shift(ys: Sequence[npt.NDArray[np.int64]], prior: float) -> Matrix:
    labels = np.concatenate([y[y >= 0] for y in ys])
    return prior_shift(np.bincount(labels, minlength=len(BONDS)).astype(np.float64), prior)


# ---------------------------------------------------------------- CV, scoring

GRID_HIDDEN = (16, 32, 48)
GRID_EPOCHS = (5, 10, 20, 30)


def cross_validate(
    st: Stacked, bidirectional: bool, cfg: GruSettings, hiddens: Sequence[int] = GRID_HIDDEN
) -> dict[tuple[int, int], float]:
    """Macro-F1 of each (hidden, epochs) over the train runs, 3 folds by question (learned_fit's folds)."""
    ys = gold_of(st.train)
    shift = st.shift
    pred: dict[tuple[int, int], list[list[str] | None]] = {}
    for hidden in hiddens:
        for e in GRID_EPOCHS:
            pred[(hidden, e)] = [None] * len(st.train)
        for f in sorted(set(st.folds)):
            inside = [i for i, g in enumerate(st.folds) if g != f]
            out = [i for i, g in enumerate(st.folds) if g == f]
            xs, norm = gru_inputs([st.oof[i] for i in inside], [st.train_dense[i] for i in inside], None, st.causal)
            test_x, _ = gru_inputs([st.oof[i] for i in out], [st.train_dense[i] for i in out], norm, st.causal)
            shift = shares_shift([ys[i] for i in inside], cfg.prior)
            run_cfg = replace(cfg, hidden=hidden, epochs=max(GRID_EPOCHS))
            seeds = [
                train_gru(xs, [ys[i] for i in inside], replace(run_cfg, seed=cfg.seed + k), bidirectional, GRID_EPOCHS)[
                    1
                ]
                for k in range(cfg.ensemble)
            ]
            for e in GRID_EPOCHS:
                net = seeds[0][e] if cfg.ensemble == 1 else Ensemble([kept[e] for kept in seeds])
                for i, z in zip(out, gru_scores(net, test_x), strict=True):
                    pred[(hidden, e)][i] = [BONDS[k] for k in (z + shift).argmax(axis=1).tolist()]
            print(f"  hidden {hidden} fold {f} done", flush=True)
    result = {}
    for key, p in pred.items():
        result[key] = report(*labelset.gold_and_predicted(st.train, [x or [] for x in p])).macro_f1
    return result


def main_cv(view: str, bidirectional: bool, ensemble: int, hiddens: Sequence[int]) -> None:
    st = load_view(view)
    base = scores_report(st.train, [z + st.shift for z in st.oof])
    print(f"{view}: stacked model out of fold on the train runs: {base.macro_f1:.3f}")
    started = time.process_time()
    res = cross_validate(st, bidirectional, GruSettings(ensemble=ensemble), hiddens)
    for (hidden, e), f1 in sorted(res.items()):
        print(f"  hidden {hidden:2d} epochs {e:2d}: {f1:.3f} ({f1 - base.macro_f1:+.3f})")
    print(f"  {time.process_time() - started:.0f} s")


VIEW_TESTS = {
    "heldout": lambda r: True,
    "within": lambda r: r.teacher in ("r1", "qwq"),
    "generated": lambda r: r.teacher == "generated",
    "paragraph": lambda r: r.unit == "paragraph",
    "sentence": lambda r: r.unit == "sentence",
    "teacher sentence": lambda r: r.unit == "sentence" and r.teacher != "generated",
}


def fit_and_score(
    st: Stacked, cfg: GruSettings, bidirectional: bool
) -> tuple[list[Matrix], list[Matrix], float, object, tuple[Matrix, Matrix]]:
    """(GRU scores of the test runs with its prior, stacked scores with its prior, GRU numpy steps/s, net, norm)."""
    ys = gold_of(st.train)
    xs, norm = gru_inputs(st.oof, st.train_dense, None, st.causal)
    nets = [train_gru(xs, ys, replace(cfg, seed=cfg.seed + k), bidirectional)[0] for k in range(cfg.ensemble)]
    net = nets[0] if len(nets) == 1 else Ensemble(nets)
    shift = shares_shift(ys, cfg.prior)
    started = time.process_time()
    test_x, _ = gru_inputs(st.test_scores, st.test_dense, norm, st.causal)
    z = gru_scores(net, test_x)
    speed = sum(len(x) for x in test_x) / max(time.process_time() - started, 1e-9)
    return [s + shift for s in z], [s + st.shift for s in st.test_scores], speed, net, norm


def gate_windows(st: Stacked, net: object, norm: tuple[Matrix, Matrix], gru_shift: Matrix) -> tuple[Report, Report]:
    """(stacked, GRU) on the held-out steps as the fidelity gate sees them (test_learned_causal): each labelled
    step as the last of (question, up to 16 steps before it, itself)."""
    assert st.model is not None
    jobs = [(r.question, list(r.steps[max(0, i - 16) : i + 1]), g) for r in st.test for i, g in enumerate(r.gold) if g]
    inputs = [left_only(trace_inputs(q, steps)) for q, steps, _ in jobs]
    scores = st.model.scores_many(inputs)
    dense = [np.array([s.dense for s in x]) for x in inputs]
    xs, _ = gru_inputs(scores, dense, norm, causal=True)
    gold = [g for _, _, g in jobs]
    base = [BONDS[int((z[-1] + st.shift).argmax())] for z in scores]
    gru = [BONDS[int((z[-1] + gru_shift).argmax())] for z in gru_scores(net, xs)]
    return report(gold, base), report(gold, gru)


def line(name: str, rep: Report, base: Report) -> str:
    per = " ".join(f"{b} {base.per_class[b].f1:.2f}->{rep.per_class[b].f1:.2f}" for b in BONDS)
    return f"| {name} | {base.macro_f1:.3f} | {rep.macro_f1:.3f} | {rep.macro_f1 - base.macro_f1:+.3f} | {per} |"


def main_score(views: Sequence[str], cfg: GruSettings) -> None:
    print("| view | stacked | GRU | gain | per-class F1 stacked->GRU |\n| --- | --- | --- | --- | --- |")
    for view in views:
        st = load_view(view)
        gru, base, speed, net, norm = fit_and_score(st, cfg, bidirectional=not st.causal)
        parts = VIEW_TESTS if view == "heldout" else {view: lambda r: True}
        for name, keep in parts.items():
            idx = [i for i, r in enumerate(st.test) if keep(r)]
            runs = [st.test[i] for i in idx]
            rep = scores_report(runs, [gru[i] for i in idx])
            brep = scores_report(runs, [base[i] for i in idx])
            print(line(name, rep, brep), flush=True)
        if st.causal:
            brep, rep = gate_windows(st, net, norm, shares_shift(gold_of(st.train), cfg.prior))
            print(line("causal, gate windows (16 steps back)", rep, brep), flush=True)
        print(f"<!-- {view}: GRU numpy forward {speed:,.0f} steps/s -->", flush=True)


def main_speed(cfg: GruSettings) -> None:
    """Steps per CPU second labelling every step of every labelled run (as bench/labelers.py measures): the shipped
    `learned` labeler as it is, then its scores and features through a bidirectional GRU of `cfg.hidden` units
    (freshly initialised: the time does not depend on the weights), in numpy."""
    from molspec.structure.learned import LearnedLabeler, shipped_model

    runs = labelset.load().runs
    labeler = LearnedLabeler()
    labeler.label_many([(r.question, r.steps) for r in runs[:1]])
    n = sum(len(r.steps) for r in runs)
    started = time.process_time()
    labeler.label_many([(r.question, r.steps) for r in runs])
    stacked = time.process_time() - started
    model = shipped_model("learned")
    inputs = [trace_inputs(r.question, r.steps) for r in runs]
    scores = model.scores_many(inputs)
    dense = [np.array([s.dense for s in x]) for x in inputs]
    import torch

    torch.manual_seed(0)
    w = matrices(Net(len(BONDS) + len(COLUMNS or DENSE) + 1, cfg.hidden, True))
    started = time.process_time()
    xs, _ = gru_inputs(scores, dense)
    numpy_forward(w, xs)
    gru = time.process_time() - started
    print(f"{n} steps: learned {n / stacked:,.0f} steps/s; GRU {n / gru:,.0f} steps/s; both {n / (stacked + gru):,.0f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("stack", "cv", "score", "speed"))
    ap.add_argument("views", nargs="*", default=["heldout"])
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--prior", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ensemble", type=int, default=1, help="score: average this many GRUs (seeds seed, seed+1..)")
    ap.add_argument("--forward", action="store_true", help="cv: a forward-only GRU")
    ap.add_argument("--grid", action="store_true", help="cv: every hidden size of GRID_HIDDEN")
    ap.add_argument("--lean", action="store_true", help="the GRU reads only the LEAN dense columns")
    args = ap.parse_args()
    if args.lean:
        COLUMNS = [DENSE.index(c) for c in LEAN]
    if args.what == "stack":
        for v in args.views:
            main_stack(v)
    elif args.what == "cv":
        hiddens = GRID_HIDDEN if args.grid else (args.hidden,)
        main_cv(args.views[0], not args.forward, args.ensemble, hiddens)
    elif args.what == "speed":
        main_speed(GruSettings(hidden=args.hidden))
    else:
        main_score(
            args.views,
            GruSettings(
                hidden=args.hidden, epochs=args.epochs, prior=args.prior, seed=args.seed, ensemble=args.ensemble
            ),
        )
