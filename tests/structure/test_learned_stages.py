"""The learned labeler's later stages: how many are trained, what they change, and how they are stored."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from molspec.structure import labelset
from molspec.structure.features import DENSE, trace_inputs
from molspec.structure.learned import CONTEXT, LearnedLabeler, Model, shipped_model
from molspec.structure.learned_fit import FitSettings, fit, settings_for


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
    """learned reads two later stages; learned-blind one and no openers (the settings the weights were made with)."""
    assert settings_for(False) == FitSettings() and FitSettings().stages == 2
    assert settings_for(True) == FitSettings(strip_openers=True, stages=1)
    for name, settings in (("learned", settings_for(False)), ("learned-blind", settings_for(True))):
        recorded = shipped_model(name).info["settings"]  # files written before `causal` existed lack it
        assert {**asdict(FitSettings()), **recorded} == asdict(settings) and not settings.causal
    assert shipped_model("learned-causal").info["settings"] == asdict(settings_for(False, causal=True))
