"""Would a contextual language model's reading of a step lift the labeler? (bench/lm_probe_experiment.md)

Reads every labelled run of one split through SmolLM2-135M-Instruct (the embedded default model, on the CPU),
question first and the steps in order, in windows of 1,024 tokens that carry the 256 before them; per labelled
step it keeps the mean and the last token's hidden state of chosen layers, and the train-split `learned`
model's scores of the step (`tests/structure/fixtures/learned_train_split.json`, which never saw a held-out
question). Then it fits multinomial logistic regressions over those features (torch, L-BFGS) and prints
macro-F1 on held-out steps:

- `probe`: the LM features alone, trained on the train split;
- `summed`: the base model's and the probe's log-probabilities added (nothing fitted on held-out steps);
- `stacked`: a regression over both, 5-fold cross-validated on the held-out steps by question, against the
  base model alone recalibrated the same way.

    OPENBLAS_NUM_THREADS=2 .venv/bin/python bench/lm_probe_experiment.py extract heldout   # ~14 min on 2 cores
    OPENBLAS_NUM_THREADS=2 .venv/bin/python bench/lm_probe_experiment.py extract train     # ~45 min
    OPENBLAS_NUM_THREADS=2 .venv/bin/python bench/lm_probe_experiment.py evaluate

Needs torch and transformers (in `.venv`) and the converted model (`molspec build` converts it once).
"""

from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from molspec.structure import labelset  # noqa: E402
from molspec.structure.evaluate import report  # noqa: E402
from molspec.structure.features import trace_inputs  # noqa: E402
from molspec.structure.label import BONDS  # noqa: E402
from molspec.structure.labelset import FIXTURES, Run  # noqa: E402
from molspec.structure.learned import Model  # noqa: E402

MODEL = Path.home() / ".cache" / "molspec" / "models" / "smollm2-135m-instruct"
LAYERS = (15, 22)  # of 30; the held-out pass of 2026-11-30 also kept 8 and 30 (weaker, see the .md)
HIDDEN = 576
WINDOW, CARRY = 1024, 256
OUT = Path("/tmp/molspec-lm-probe")
Array = npt.NDArray[np.float64]


def run_text(run: Run) -> tuple[str, list[tuple[int, int]]]:
    """The text the LM reads (question, then the steps joined as the unit joins them) and each step's span."""
    sep = "\n\n" if run.unit == "paragraph" else " "
    text, spans = "Problem: " + (run.question or "") + "\n\n", []
    for step in run.steps:
        spans.append((len(text), len(text) + len(step)))
        text += step + sep
    return text, spans


def extract(split: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(2)
    tok = AutoTokenizer.from_pretrained(MODEL)
    lm = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32).eval()
    base_model = Model.from_json((FIXTURES / "learned_train_split.json").read_text())
    runs = [r for r in labelset.load().runs if r.split == split]
    feats, base, gold, question, teacher = [], [], [], [], []
    for k, run in enumerate(runs):
        z = base_model.scores_many([trace_inputs(run.question, list(run.steps))])[0]
        text, spans = run_text(run)
        enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        states = {layer: np.zeros((len(ids), HIDDEN), dtype=np.float32) for layer in LAYERS}
        start = 0
        with torch.inference_mode():
            while start < len(ids):
                lo, hi = max(0, start - CARRY), min(len(ids), start + WINDOW - CARRY)
                out = lm.model(torch.tensor([ids[lo:hi]]), output_hidden_states=True)
                for layer in LAYERS:
                    states[layer][start:hi] = out.hidden_states[layer][0, start - lo :].numpy()
                start = hi
        starts = np.array([o[0] for o in offsets])
        ends = np.array([o[1] for o in offsets])
        for i, label in enumerate(run.gold):
            if label is None:
                continue
            a, b = spans[i]
            idx = np.nonzero((starts >= a) & (ends <= b) & (ends > starts))[0]
            if len(idx) == 0:
                idx = np.array([max(0, int(np.searchsorted(starts, a)) - 1)])
            feats.append(np.concatenate([np.concatenate([states[la][idx].mean(0), states[la][idx[-1]]])
                                         for la in LAYERS]))  # fmt: skip
            base.append(z[i])
            gold.append(BONDS.index(label))
            question.append(run.trace_id.split("/", 1)[-1])
            teacher.append(run.teacher)
        print(f"{k + 1}/{len(runs)} runs", flush=True)
    OUT.mkdir(exist_ok=True)
    np.savez_compressed(OUT / f"{split}.npz", feats=np.array(feats, dtype=np.float32), base=np.array(base),
                        gold=np.array(gold), question=np.array(question), teacher=np.array(teacher))  # fmt: skip


def fit(x: Array, y: npt.NDArray[np.int64], l2: float) -> tuple[Array, Array]:
    import torch

    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    w = torch.zeros(x.shape[1], len(BONDS), requires_grad=True)
    b = torch.zeros(len(BONDS), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w + b, yt) + l2 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy().astype(np.float64), b.detach().numpy().astype(np.float64)


def log_softmax(z: Array) -> Array:
    z = z - z.max(axis=1, keepdims=True)
    out: Array = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return out


def macro(y: npt.NDArray[np.int64], pred: npt.NDArray[np.int64], mask: npt.NDArray[np.bool_]) -> str:
    r = report([BONDS[i] for i in y[mask]], [BONDS[i] for i in pred[mask]])
    per = " ".join(f"{b} {s.f1:.2f}" for b, s in r.per_class.items())
    return f"{r.macro_f1:.3f} ({per}; {int(mask.sum())} steps)"


def stacked(x: Array, y: npt.NDArray[np.int64], question: npt.NDArray[np.str_]) -> npt.NDArray[np.int64]:
    """5-fold cross-validated predictions on held-out steps, folds by question."""
    fold = np.array([zlib.crc32(q.encode()) % 5 for q in question])
    pred = np.zeros(len(y), dtype=np.int64)
    for k in range(5):
        w, b = fit(x[fold != k], y[fold != k], 1e-4)
        pred[fold == k] = (x[fold == k] @ w + b).argmax(axis=1)
    return pred


def evaluate() -> None:
    train, held = np.load(OUT / "train.npz"), np.load(OUT / "heldout.npz")
    y = held["gold"].astype(np.int64)
    masks = {"all": np.ones(len(y), dtype=bool), "teacher": held["teacher"] != "generated",
             "generated": held["teacher"] == "generated"}  # fmt: skip
    base = log_softmax(held["base"])
    recal = stacked(base, y, held["question"])
    print("base (train-split learned), as is:")
    for name, mask in masks.items():
        print(f"  {name}: {macro(y, base.argmax(axis=1), mask)}")
    for name, cols in (("layer 15", slice(0, 2 * HIDDEN)), ("layer 22", slice(2 * HIDDEN, 4 * HIDDEN)),
                       ("layers 15 + 22", slice(None))):  # fmt: skip
        xtr, xte = train["feats"][:, cols], held["feats"][:, cols]
        mu, sd = xtr.mean(axis=0), xtr.std(axis=0) + 1e-4
        w, b = fit((xtr - mu) / sd, train["gold"].astype(np.int64), 1e-2)
        probe = log_softmax(((xte - mu) / sd) @ w + b)
        both = stacked(np.hstack([base, probe]), y, held["question"])
        print(f"{name}, probe trained on {len(xtr)} train steps:")
        for label, pred in (("probe alone", probe.argmax(axis=1)),
                            ("base + probe, summed", (base + probe).argmax(axis=1)),
                            ("base alone, recalibrated by CV on held-out", recal),
                            ("base + probe, stacked by CV on held-out", both)):  # fmt: skip
            print(f"  {label}:")
            for mname, mask in masks.items():
                print(f"    {mname}: {macro(y, pred, mask)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("extract", "evaluate"))
    ap.add_argument("split", nargs="?", default="heldout", choices=("heldout", "train"))
    args = ap.parse_args()
    extract(args.split) if args.what == "extract" else evaluate()


if __name__ == "__main__":
    main()
