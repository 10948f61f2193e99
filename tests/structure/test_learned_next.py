"""The causal learned labeler one new step at a time (`learned_next`): labelling a walk's new step from what it
kept of the walk equals re-reading the whole walk, whatever the walk."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from molspec.structure import learned_next
from molspec.structure.features import DENSE, trace_inputs
from molspec.structure.label import BONDS, StepLabeler, get_labeler, step_labeler
from molspec.structure.labelset import FIXTURES
from molspec.structure.learned import LearnedLabeler, context_features, shipped_model
from tests.structure.test_label import TRACE


def _generated_steps() -> list[str]:
    """Steps of SmolLM2 builds (fixtures): short and long, with leads, quotes and equations."""
    out: list[str] = []
    with (FIXTURES / "generated" / "smollm2-fidelity-bench.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            walk = json.loads(line)
            out += [walk["thinking"][a:b] for a, b in walk["step_spans"]]
    return out[:400]


STEPS = [*TRACE, *_generated_steps()]
step_texts = st.one_of(st.sampled_from(STEPS), st.sampled_from(STEPS).map(lambda s: s[: len(s) // 3]), st.just(""))


@settings(max_examples=60, deadline=None)
@given(st.lists(step_texts, min_size=1, max_size=24), st.sampled_from([None, "What is 3 times 4 apples?"]))
def test_one_step_at_a_time_equals_reading_the_whole_walk(steps: list[str], question: str | None) -> None:
    model = shipped_model("learned-causal")
    whole = model.scores(trace_inputs(question, steps))
    walk = learned_next.start(model, question)
    for i, text in enumerate(steps):
        np.testing.assert_allclose(learned_next.scores_next(model, [(walk, text)])[0], whole[i], atol=1e-9)
        walk = learned_next.then(model, walk, text)


def test_a_round_of_attempts_is_labelled_in_one_pass() -> None:
    labeler = get_labeler("learned-causal")
    stepper = step_labeler(labeler)
    assert isinstance(stepper, StepLabeler)
    walks = []
    for n in (0, 1, 3, 9, 12):  # tails shorter and longer than the context features' reach
        w = stepper.walk("Find the sum.")
        for text in (TRACE * 3)[:n]:
            w = stepper.then(w, text)
        walks.append(w)
    new = STEPS[20:25]
    read = stepper.label_next(list(zip(walks, new, strict=True)))
    got = [n.label for n in read]
    want = [labeler.label("Find the sum.", [*(TRACE * 3)[:n], t])[-1] for n, t in zip((0, 1, 3, 9, 12), new,
                                                                                       strict=True)]
    assert got == want
    assert stepper.label_next([]) == []
    for n in read:  # the bonds' probabilities, the label the likeliest
        assert len(n.probs) == len(BONDS) and abs(sum(n.probs) - 1.0) < 1e-9
        assert n.label == BONDS[max(range(len(BONDS)), key=lambda i: n.probs[i])]
    # the walk returned with each label is the walk with that step kept
    after = [n.walk for n in read]
    nxt = "So the answer is 7."
    def labels(items: list[tuple[object, str]]) -> list[str]:
        return [n.label for n in stepper.label_next(items)]

    assert labels([(w, nxt) for w in after]) == labels([(stepper.then(w, t), nxt) for w, t in zip(walks, new,
                                                                                              strict=True)])


def test_last_context_is_the_last_row_of_context_features() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 4, 5, 8, 9, 13):  # a step with no step before it, some, and more than the features reach
        probs = rng.dirichlet(np.ones(4), size=n)
        for log_chars in (0.1, 0.9):  # a short step and a long one (the second half of the columns)
            dense = np.zeros((n, len(DENSE)))
            dense[:, DENSE.index("log_chars")] = log_chars
            want = context_features(probs, dense, causal=True)[-1]
            got = learned_next.last_context([probs[:-1]], probs[-1:], dense[-1:])[0]
            np.testing.assert_allclose(got, want, atol=1e-12)


def test_only_a_causal_model_has_walks() -> None:
    assert step_labeler(get_labeler("learned")) is None  # it reads the steps after a step too
    assert step_labeler(get_labeler("cue")) is None
    assert step_labeler(None) is None
    with pytest.raises(ValueError, match="causal"):
        LearnedLabeler(name="learned").walk("q")
    with pytest.raises(TypeError):
        LearnedLabeler(name="learned-causal").label_next([("not a walk", "x")])
