"""learned-causal: the learned labeler for labelling a step before the next exists (the fidelity gate). It reads
the question and the steps before each step only, so its label of a step is the same whatever follows."""

from __future__ import annotations

from pathlib import Path

import pytest

from molspec.structure import labelset
from molspec.structure.evaluate import report
from molspec.structure.features import DENSE, RIGHT_DENSE, left_only, trace_inputs
from molspec.structure.label import BONDS, get_labeler
from molspec.structure.labelset import FIXTURES
from molspec.structure.learned import LearnedLabeler, Model, shipped_model
from molspec.structure.learned_fit import FitSettings, fit, settings_for
from tests.structure.test_label import TRACE
from tests.structure.test_learned_stages import few_runs

SPLIT_MODEL = FIXTURES / "learned_causal_train_split.json"
# Held-out macro-F1 of the train-split causal model (scripts/train_labeler.py --causal --split train; 32,501
# labels, 24,934 of them in the train split), each labelled step read after every step before it, as the gate
# reads it: 0.680 on 7,567 held-out steps, most in sentence runs (per class: explore 0.66, deep 0.62, reflect
# 0.73, normal 0.71). On the 1,603 held-out steps of SmolLM2 builds, the text the gate reads: 0.710, against
# 0.487 (and 0.686 on all held-out steps) for the model trained before the lead builds' labels. Reading only
# the 16 steps before, as the gate did before it kept each walk: 0.644 on an earlier split (16 sentences often
# do not reach back to the start of a check). The guard allows a small margin.
MEASURED = 0.680
GENERATED_MEASURED = 0.710
MARGIN = 0.03
CLASS_FLOOR = 0.55


@pytest.fixture(scope="module")
def labels(shared_traces: dict[str, Path]) -> labelset.LabelSet:
    return labelset.load()


def _followed(steps: list[str]) -> list[list[str]]:
    """The trace, cut after each step, and with other steps after it."""
    tails = [[], ["Wait, let me check that again."], list(reversed(steps)), ["Alternatively, try x = 2."] * 5]
    return [steps[: i + 1] + tail for i in range(len(steps)) for tail in tails]


def _assert_left_only(labeler: LearnedLabeler, question: str | None, steps: list[str]) -> None:
    full = labeler.label(question, steps)
    for variant in _followed(steps):
        got = labeler.label(question, variant)
        n = next(
            (i for i, (a, b) in enumerate(zip(variant, steps, strict=False)) if a != b), min(len(variant), len(steps))
        )
        assert n and got[:n] == full[:n]  # the steps both share get the same labels


def test_left_only_inputs_drop_the_right_side() -> None:
    full = trace_inputs(None, TRACE)
    cut = left_only(full)
    assert {DENSE[i] for i in RIGHT_DENSE} >= {"overlap_next", "last", "relative_position"}
    assert all(s.dense[i] == 0.0 for s in cut for i in RIGHT_DENSE)
    assert not any(k[0] in ("n", "n2") for s in cut for k in s.keys)
    assert any(k[0] == "n" for s in full for k in s.keys)  # there was a next-step opening to drop
    prefix = left_only(trace_inputs(None, TRACE[:3]))
    assert cut[:3] == prefix[:3]  # a step's input does not depend on what follows


def test_a_trained_causal_model_never_reads_the_right_side(labels: labelset.LabelSet) -> None:
    runs = few_runs(labels.runs)
    model = fit(runs, FitSettings(steps=60, causal=True))
    assert model.causal and model.info["causal"] is True and len(model.stages) == 2
    assert Model.from_json(model.to_json()).causal
    _assert_left_only(LearnedLabeler(model), "Find the sum.", TRACE)
    bidirectional = LearnedLabeler(fit(runs, FitSettings(steps=60)))
    assert any(  # the ordinary model does read what follows (so the check above can fail)
        bidirectional.label(None, v)[: i + 1] != bidirectional.label(None, TRACE)[: i + 1]
        for i, v in ((i, TRACE[: i + 1]) for i in range(len(TRACE)))
    )


def test_shipped_learned_causal() -> None:
    labeler = get_labeler("learned-causal")
    assert isinstance(labeler, LearnedLabeler) and labeler.name == "learned-causal"
    assert set(labeler.label(None, TRACE)) <= set(BONDS)
    _assert_left_only(labeler, "Two numbers have product 12 and difference 1. Find their sum.", TRACE)
    model = shipped_model("learned-causal")
    assert model.causal and model.info["split"] == "all" and model.info["settings"]["causal"] is True
    assert settings_for(False, causal=True) == FitSettings(causal=True)


def test_learned_causal_heldout_macro_f1_as_the_gate_reads(labels: labelset.LabelSet) -> None:
    """The train-split causal model on the held-out steps as the fidelity gate reads them: each labelled step
    read after the question and every step before it, the walk kept one step at a time (`learned_next`)."""
    model = Model.from_json(SPLIT_MODEL.read_text(encoding="utf-8"))
    held = [r for r in labels.runs if r.split == "heldout"]
    assert model.causal and model.info["split"] == "train"
    assert not set(model.info["questions"]) & {r.trace_id.split("/", 1)[-1] for r in held}
    labeler = LearnedLabeler(model)
    gold: list[str] = []
    pred: list[str] = []
    generated: list[bool] = []
    for r in held:
        walk = labeler.walk(r.question)
        for step, g in zip(r.steps, r.gold, strict=True):
            if g:
                gold.append(g)
                label, walk, _probs = labeler.label_next([(walk, step)])[0]
                pred.append(label)
                generated.append(r.teacher == "generated")
            else:
                walk = labeler.then(walk, step)
    result = report(gold, pred)
    print(f"\nlearned-causal (train split), held-out steps as the gate reads them, n={len(gold)}\n{result.table()}")
    assert result.macro_f1 >= MEASURED - MARGIN
    assert all(s.f1 >= CLASS_FLOOR for s in result.per_class.values())
    pairs = [(g, p) for g, p, b in zip(gold, pred, generated, strict=True) if b]
    built = report([g for g, _ in pairs], [p for _, p in pairs])
    print(f"of them SmolLM2 builds' steps, n={sum(generated)}\n{built.table()}")
    assert built.macro_f1 >= GENERATED_MEASURED - MARGIN
