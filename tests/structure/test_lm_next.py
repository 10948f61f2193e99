"""`learned-lm-causal` one new step at a time: SmolLM2's cached reading of a walk equals reading it whole."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from molspec.engines.base import EngineError
from molspec.spec import FIDELITY_LABELERS
from molspec.structure import lm_next, lm_probe
from molspec.structure.label import LABELERS, NextLabel, get_labeler, labeler_identity, step_labeler
from molspec.structure.lm_probe import LmProbeLabeler, Reader, StepWalk

QUESTION = "Natalia sold clips to 48 friends in April, and half as many in May. How many clips did she sell?"
STEPS = ["First, the May sales: half of 48 is 24.", "Wait, let me check: 48 / 2 = 24. Yes, that holds.",
         "Alternatively, add 48 and 48 / 2 directly.", "So the total is 48 + 24 = 72 clips."]  # fmt: skip


@pytest.fixture(scope="module")
def reader() -> Reader:
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    return Reader()


def test_registered_for_the_gate() -> None:
    assert "learned-lm-causal" in LABELERS and "learned-lm-causal" in FIDELITY_LABELERS
    labeler = get_labeler("learned-lm-causal")
    assert isinstance(labeler, LmProbeLabeler) and step_labeler(labeler) is labeler  # loads nothing yet
    assert step_labeler(get_labeler("learned-lm")) is None  # its base reads the steps after a step too
    ident = labeler_identity("learned-lm-causal").split()[1]
    assert ident not in (labeler_identity("learned-lm").split()[1], labeler_identity("learned-causal").split()[1])


def test_each_step_read_after_the_walk_equals_the_whole_reading(reader: Reader) -> None:
    whole = reader.features(QUESTION, STEPS)
    walk = lm_next.start(QUESTION)
    for i, step in enumerate(STEPS):
        row, walk = lm_next.read(reader, walk, step)
        np.testing.assert_allclose(row[0], whole[i], rtol=1e-4, atol=1e-4)
    assert len(walk.chunks) == len(STEPS)  # one shared chunk per kept step: nothing was copied whole
    assert walk.cached == len(walk.ids)  # the last joiner is left to the next step's tokens


def test_windows_past_the_first_are_read_as_the_whole_reading_reads_them(reader: Reader) -> None:
    long_steps = [f"Step {i}: we add 12 + 13 = 25, then carry the sum forward once more. " * 6 for i in range(12)]
    whole = reader.features(QUESTION, long_steps)
    walk = lm_next.start(QUESTION)
    for i, step in enumerate(long_steps):
        row, walk = lm_next.read(reader, walk, step)
        np.testing.assert_allclose(row[0], whole[i], rtol=1e-4, atol=1e-4)
    assert len(walk.ids) > 2 * lm_next.STRIDE and walk.lo > 0  # three windows, the cache holds the last one's


def test_attempts_of_one_walk_do_not_disturb_it(reader: Reader) -> None:
    labeler = LmProbeLabeler(name="learned-lm-causal", reader=reader)
    walk = labeler.walk(QUESTION)
    for step in STEPS[:2]:
        walk = labeler.then(walk, step)
    tries = ["Alternatively, count the clips month by month.", "So she sold 72 clips.", STEPS[2]]
    first = labeler.label_next([(walk, t) for t in tries])
    again = labeler.label_next([(walk, t) for t in reversed(tries)])
    for a, b in zip(first, reversed(again), strict=True):
        assert a.label == b.label
        np.testing.assert_allclose(a.probs, b.probs, rtol=1e-5, atol=1e-6)


def test_label_next_equals_labelling_the_whole_walk(reader: Reader) -> None:
    labeler = LmProbeLabeler(name="learned-lm-causal", reader=reader)
    walk = labeler.walk(QUESTION)
    whole = labeler.scores_many([(QUESTION, STEPS)])[0]
    for i, step in enumerate(STEPS):
        got: NextLabel = labeler.label_next([(walk, step)])[0]
        expect = np.exp(whole[i] - whole[i].max())
        np.testing.assert_allclose(got.probs, expect / expect.sum(), rtol=1e-3, atol=1e-4)
        assert isinstance(got.walk, StepWalk)
        walk = got.walk


def test_label_next_refuses_a_walk_it_did_not_make() -> None:
    with pytest.raises(TypeError):
        LmProbeLabeler(name="learned-lm-causal").label_next([(object(), "A step.")])


def test_without_transformers_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # `from transformers import ...` fails as uninstalled
    lm_probe._reader.cache_clear()  # another test's loaded model must not answer for it
    with pytest.raises(EngineError, match=r"pip install 'molspec\[transformers\]'"):
        LmProbeLabeler(name="learned-lm-causal").label(QUESTION, STEPS)
