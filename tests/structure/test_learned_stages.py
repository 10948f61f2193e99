"""The learned labeler's later stages: how many are trained, what they change, and how they are stored."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from molspec.structure import labelset
from molspec.structure.features import DENSE, left_only, trace_inputs
from molspec.structure.learned import CONTEXT, LearnedLabeler, Model, shipped_model
from molspec.structure.learned_fit import FitSettings, fit, settings_for
from molspec.structure.sequence import raw_inputs


@pytest.fixture(scope="module")
def runs(shared_traces: dict[str, Path]) -> list[labelset.Run]:
    """A few labelled train-split runs of each teacher (small: the fits below run in seconds)."""
    return few_runs(labelset.load().runs)


def few_runs(runs: list[labelset.Run], per_teacher: int = 3) -> list[labelset.Run]:
    """The first train-split run of each of the first `per_teacher` questions per teacher: distinct questions,
    so the out-of-fold split (by question) has more than one fold and the later stages are trained."""
    out: list[labelset.Run] = []
    for teacher in ("r1", "qwq"):
        seen: set[str] = set()
        for r in runs:
            question = r.trace_id.split("/", 1)[-1]
            if r.split == "train" and r.teacher == teacher and question not in seen and len(seen) < per_teacher:
                seen.add(question)
                out.append(r)
    return out


@pytest.mark.parametrize("stages", [0, 1, 2])
def test_stage_count_and_shapes(runs: list[labelset.Run], stages: int) -> None:
    model = fit(runs, FitSettings(steps=20, stages=stages))
    assert len(model.stages) == stages
    assert model.weights.shape[0] == len(DENSE) + len(model.keys) + len(model.words)
    assert all(w.shape == (model.weights.shape[0] + len(CONTEXT), model.weights.shape[1]) for w in model.stages)


def test_later_stages_rescore_and_survive_json(runs: list[labelset.Run]) -> None:
    """Each stage changes the scores (it reads its neighbours' labels), the stored model scores as the
    trained one does (float16 weights: labels equal), and a stage-1-only view of it scores as stage 1."""
    model = fit(runs, FitSettings(steps=40, stages=2))
    inputs = trace_inputs(runs[0].question, runs[0].steps)
    first = Model(model.keys, model.words, model.weights)
    second = Model(model.keys, model.words, model.weights, model.stages[:1])
    scores = [m.scores(inputs) for m in (first, second, model)]
    assert not np.allclose(scores[0], scores[1]) and not np.allclose(scores[1], scores[2])
    stored = Model.from_json(model.to_json())
    assert len(stored.stages) == 2 and stored.info == model.info
    steps = [(r.question, r.steps) for r in runs]
    assert LearnedLabeler(stored).label_many(steps) == LearnedLabeler(model).label_many(steps)


def test_weights_of_another_format_are_refused(runs: list[labelset.Run]) -> None:
    data = json.loads(fit(runs, FitSettings(steps=5, stages=1)).to_json())
    data["format"] = 2  # the two-stage files before the stage list
    with pytest.raises(ValueError, match="retrain"):
        Model.from_json(json.dumps(data))
    data = json.loads(fit(runs, FitSettings(steps=5, stages=1)).to_json())
    data["stages"] = data["stages"] * 2 + [data["weights"]]  # stage 1's shape where a later stage belongs
    with pytest.raises(ValueError, match="does not match"):
        Model.from_json(json.dumps(data))


def test_shipped_settings() -> None:
    """learned reads two later stages and the recurrent one; learned-blind one stage, no recurrent stage and no
    openers (the settings the weights were made with)."""
    assert settings_for(False) == FitSettings() and FitSettings().stages == 2 and FitSettings().sequence
    assert settings_for(True) == FitSettings(strip_openers=True, stages=1, sequence=0)
    assert shipped_model("learned").sequence is not None and shipped_model("learned-blind").sequence is None
    for name, settings in (("learned", settings_for(False)), ("learned-blind", settings_for(True))):
        recorded = shipped_model(name).info["settings"]  # files written before `causal` existed lack it
        assert {**asdict(FitSettings()), **recorded} == asdict(settings) and not settings.causal
    assert shipped_model("learned-causal").info["settings"] == asdict(settings_for(False, causal=True))


@pytest.mark.parametrize("causal", [False, True])
def test_recurrent_stage_in_numpy_equals_torch(runs: list[labelset.Run], causal: bool) -> None:
    """The recurrent stage labels in numpy with torch.nn.GRU's arithmetic: both directions (forward only for
    a causal model), each run's backward pass from its own end, runs of different lengths in one pass."""
    import torch

    model = fit(runs, FitSettings(steps=20, causal=causal, sequence=8, sequence_epochs=2, sequence_nets=1))
    assert model.sequence is not None and model.sequence.causal == causal
    net = model.sequence.nets[0]
    assert ("ih_r" in net) != causal
    inputs = [trace_inputs(r.question, r.steps) for r in runs[:4]]
    stacked = Model(model.keys, model.words, model.weights, model.stages, model.info)
    dense = [np.array([s.dense for s in (left_only(x) if causal else x)]) for x in inputs]
    xs = [
        (x - model.sequence.mean) / model.sequence.std for x in raw_inputs(stacked.scores_many(inputs), dense, causal)
    ]
    gru = torch.nn.GRU(xs[0].shape[1], 8, batch_first=True, bidirectional=not causal).double()
    names = {"ih": "weight_ih_l0", "hh": "weight_hh_l0", "b_ih": "bias_ih_l0", "b_hh": "bias_hh_l0"}
    state = {
        names[k.removesuffix("_r")] + ("_reverse" if k.endswith("_r") else ""): torch.tensor(v)
        for k, v in net.items()
        if k.removesuffix("_r") in names
    }
    gru.load_state_dict(state)
    for x, got in zip(xs, model.scores_many(inputs), strict=True):
        with torch.no_grad():
            out, _ = gru(torch.tensor(x)[None])
        expected = torch.cat([out[0], torch.tensor(x)], dim=1).numpy() @ net["head"].T + net["head_b"]
        assert np.allclose(got, expected, atol=1e-9)


def test_recurrent_stage_survives_json_and_labelling_never_imports_torch(runs: list[labelset.Run]) -> None:
    model = fit(runs, FitSettings(steps=20, sequence=8, sequence_epochs=2, sequence_nets=2))
    stored = Model.from_json(model.to_json())
    assert stored.sequence is not None and len(stored.sequence.nets) == 2
    steps = [(r.question, r.steps) for r in runs]
    assert LearnedLabeler(stored).label_many(steps) == LearnedLabeler(model).label_many(steps)
    code = (
        "import sys; from molspec.structure.label import get_labeler; "
        "get_labeler('learned').label(None, ['Let x = 2.', 'Wait, check: 2 + 2 = 4.']); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2], timeout=120)
