"""The `learned-lm` labeler: its probe's file and fit, and its held-out score read through the real SmolLM2."""

from __future__ import annotations

import numpy as np
import pytest

from molspec.structure import labelset
from molspec.structure.evaluate import report
from molspec.structure.label import BONDS, LABELERS, get_labeler, labeler_identity
from molspec.structure.labelset import FIXTURES
from molspec.structure.learned import LearnedLabeler, Model
from molspec.structure.lm_probe import LAYERS, LmProbeLabeler, Probe, Reader, fit_probe, trace_text

# Held-out steps of two QwQ sentence runs and three R1 paragraph runs (the first by trace id; 543 labelled steps),
# read by the train-split `learned` model plus the train-split probe
# (`scripts/train_lm_probe.py --split train`; on all 7,711 held-out steps it reads 0.747 against `learned`'s 0.700):
# 0.684 macro-F1, accuracy 0.696, where `learned` alone reads 0.627 and 0.652. About 80 s on 2 cores.
SUBSET = (("qwq", "sentence", 2), ("r1", "paragraph", 3))
MEASURED = 0.684
MARGIN = 0.03


def test_probe_file_round_trips_at_half_precision() -> None:
    rng = np.random.default_rng(0)
    probe = Probe(rng.normal(size=6), rng.uniform(0.5, 2, size=6), rng.normal(size=(6, len(BONDS))),
                  rng.normal(size=len(BONDS)), {"split": "train"})  # fmt: skip
    back = Probe.from_json(probe.to_json())
    assert back.info == probe.info and back.weights.shape == (6, len(BONDS))
    for name in ("mean", "scale", "weights", "bias"):
        np.testing.assert_allclose(getattr(back, name), getattr(probe, name), rtol=1e-3, atol=1e-3)


def test_fit_probe_learns_what_the_features_say() -> None:
    rng = np.random.default_rng(1)
    gold = rng.integers(0, len(BONDS), size=400)
    features = rng.normal(size=(400, 8)) * 5 + 100.0  # far from standard: the probe standardises
    features[:, :4] += 20.0 * np.eye(len(BONDS))[gold]
    probe = fit_probe(features, gold)
    assert (probe.log_probs(features).argmax(axis=1) == gold).mean() > 0.95
    assert probe.info["l2"] > 0


def test_registered_with_both_weights_in_its_identity() -> None:
    assert "learned-lm" in LABELERS
    assert isinstance(get_labeler("learned-lm"), LmProbeLabeler)  # loads nothing until it labels
    assert labeler_identity("learned-lm").split()[1] != labeler_identity("learned").split()[1]


def test_trace_text_spans_are_the_steps() -> None:
    text, spans = trace_text("What is 2+2?", ["First, add.", "So 4."])
    assert [text[a:b] for a, b in spans] == ["First, add.", "So 4."]
    assert text.startswith("Problem: What is 2+2?")


@pytest.fixture(scope="module")
def reader() -> Reader:
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    return Reader()  # the built-in model, converted on first use


def test_a_step_is_read_with_the_steps_before_it_only(reader: Reader) -> None:
    steps = ["Let me add the two numbers.", "That gives 7.", "Wait, let me check: 3 + 4 = 7. Yes."]
    whole = reader.features("What is 3 + 4?", steps)
    assert whole.shape == (3, 4 * int(reader.model.config.hidden_size))
    np.testing.assert_allclose(reader.features("What is 3 + 4?", steps[:2]), whole[:2], rtol=1e-4, atol=1e-4)


def test_the_layers_after_the_last_read_are_dropped_without_changing_a_feature(reader: Reader) -> None:
    steps = ["Let me add the two numbers.", "That gives 7.", "Wait, let me check: 3 + 4 = 7. Yes."]
    whole = Reader(whole=True)
    assert len(reader.model.model.layers) == max(LAYERS) + 1 < len(whole.model.model.layers)
    np.testing.assert_allclose(reader.features("What is 3 + 4?", steps), whole.features("What is 3 + 4?", steps),
                               rtol=1e-5, atol=1e-5)


def test_held_out_macro_f1(reader: Reader) -> None:
    labels = labelset.load()
    held = sorted((r for r in labels.runs if r.split == "heldout"), key=lambda r: r.trace_id)
    runs = [r for teacher, unit, n in SUBSET for r in [r for r in held if (r.teacher, r.unit) == (teacher, unit)][:n]]
    base = Model.from_json((FIXTURES / "learned_train_split.json").read_text())
    assert not {r.trace_id.split("/", 1)[-1] for r in runs} & set(base.info["questions"])
    probe = Probe.from_json((FIXTURES / "learned-lm_train_split.json").read_text())
    gold, pred = labelset.gold_and_predicted(runs, labelset.predict(LmProbeLabeler(probe, reader, base), runs))
    _, alone = labelset.gold_and_predicted(runs, labelset.predict(LearnedLabeler(base), runs))
    with_lm, without = report(gold, pred), report(gold, alone)
    assert len(gold) == 543
    assert with_lm.macro_f1 >= MEASURED - MARGIN, with_lm.table()
    assert with_lm.macro_f1 > without.macro_f1 and with_lm.accuracy > without.accuracy
