"""The cue labeler (determinism, obvious cases) and the llm judge: a fake engine, the echo engine and a
tiny real transformers model (first-token logprobs)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from molspec.engines.base import Completion, Request, SamplingParams
from molspec.structure.label import BONDS, CueLabeler, Labeler, get_labeler, step_features
from molspec.structure.llm_label import LLMLabeler, bond_scores

TRACE = [
    "Okay, the problem asks for the sum of two numbers whose product is 12 and difference is 1.",
    "Let me denote them a and b with a > b. Then a - b = 1 and a * b = 12.",
    "Since a = b + 1, substituting gives b(b + 1) = 12, so b^2 + b - 12 = 0, therefore b = 3 and a = 4.",
    "Wait, let me check that: 4 * 3 = 12 and 4 - 3 = 1. Yes, correct.",
    "Alternatively, maybe we could guess small factor pairs of 12 and see which differ by one.",
    "So the answer is 7.",
]


def test_cue_labels_are_bonds_and_deterministic() -> None:
    labeler = CueLabeler()
    first = labeler.label("Find the sum.", TRACE)
    assert len(first) == len(TRACE) and set(first) <= set(BONDS)
    assert all(labeler.label("Find the sum.", TRACE) == first for _ in range(3))
    assert CueLabeler().label_many([("Find the sum.", TRACE), (None, TRACE[:2])]) == [
        first,
        labeler.label(None, TRACE[:2]),
    ]


def test_cue_labeler_reads_obvious_cues() -> None:
    labels = CueLabeler().label("Two numbers have product 12 and difference 1. Find their sum.", TRACE)
    assert labels[0] == "normal"  # restating the problem
    assert labels[2] == "deep"  # since / substituting / therefore
    assert labels[3] == "reflect"  # wait, let me check
    assert labels[4] == "explore"  # alternatively, maybe
    assert labels[5] == "normal"  # stating the answer


def test_empty_trace_and_protocol() -> None:
    assert CueLabeler().label(None, []) == []
    assert isinstance(CueLabeler(), Labeler)
    assert get_labeler("cue").name == "cue"
    with pytest.raises(ValueError, match="unknown labeler"):
        get_labeler("regex")


def test_step_features() -> None:
    f = step_features("Wait, is that right? 2 + 2 = 4.")
    assert f.head["reflect"] and not f.head["explore"]
    assert f.equation_density > 0 and 0 < f.digit_ratio < 1


class FakeJudge:
    """Test double for an Engine: answers from a script keyed by the step text it finds in the prompt."""

    name = "fake-judge"

    def __init__(self, replies: dict[str, str], fail: Sequence[str] = ()) -> None:
        self.replies = replies
        self.fail = set(fail)
        self.batches: list[list[Request]] = []

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        self.batches.append(list(requests))
        out = []
        for r in requests:
            step = r.messages[-1]["content"].split("Step to label", 1)[1]
            reply = next((v for k, v in self.replies.items() if k in step), "I am not sure.")
            if any(k in step for k in self.fail):
                out.append(Completion(r.key, "", 0, "error", error="boom"))
            else:
                out.append(Completion(r.key, reply, 2, "stop"))
        return out

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name}

    def close(self) -> None:
        pass


def test_llm_labeler_batches_parses_and_falls_back() -> None:
    judge = FakeJudge(
        {"product is 12": " Normal.", "denote": "deep", "substituting": "Label: DEEP", "check": "reflect"},
        fail=["Alternatively"],
    )
    labeler = LLMLabeler(judge)
    question = "Find the sum."
    labels = labeler.label_many([(question, TRACE), (None, TRACE[:1])])
    assert len(judge.batches) == 1 and len(judge.batches[0]) == len(TRACE) + 1  # one engine call
    cue = CueLabeler().label(question, TRACE)
    assert labels[0][:4] == ["normal", "deep", "deep", "reflect"]
    assert labels[0][4] == cue[4]  # failed request: cue fallback
    assert labels[0][5] == cue[5]  # reply names no bond: cue fallback
    assert labeler.fallbacks == 2


def test_llm_prompt_has_definitions_context_and_question() -> None:
    labeler = LLMLabeler(FakeJudge({}), context_steps=2, max_chars=40)
    request = labeler.request(0, 3, "What is 4 + 3?", TRACE)
    system, user = request.messages[0]["content"], request.messages[1]["content"]
    assert all(b in system for b in BONDS) and "Examples:" in system
    assert "What is 4 + 3?" in user
    assert "[2]" in user and "[3]" in user and "[1]" not in user  # two steps of context
    assert "Step to label [4 of 6]" in user and "[...]" in user  # long steps are cut
    assert request.params.temperature == 0.0 and request.meta["step"] == 3


def test_get_labeler_llm_takes_an_engine() -> None:
    labeler = get_labeler("llm", engine=FakeJudge({"": "explore"}))
    assert labeler.name == "llm"
    assert labeler.label(None, ["anything"]) == ["explore"]


def test_bond_scores_from_first_token_logprobs() -> None:
    top = [(" Deep", -0.2), ("ref", -1.5), ("normal", -1.0), (" ", -0.1), ("x", -0.05), ("deep", -0.9)]
    assert bond_scores(top) == {"deep": -0.2, "reflect": -1.5, "normal": -1.0}
    assert bond_scores([]) == {}


class LogprobJudge(FakeJudge):
    """Answers with first-token logprobs only (an empty reply text), like a one-token request."""

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        self.batches.append(list(requests))
        out = []
        for r in requests:
            step = r.messages[-1]["content"].split("Step to label", 1)[1]
            bond = next((v for k, v in self.replies.items() if k in step), "")
            top = ((f" {bond.capitalize()}", -0.3), ("deep", -2.0)) if bond else (("zzz", -0.1), ("De", -2.5))
            out.append(Completion(r.key, "", 1, "length", top_logprobs=top))
        return out


def test_llm_judge_uses_one_token_and_its_logprobs() -> None:
    judge = LogprobJudge({"product is 12": "normal", "check": "reflect", "Alternatively": "explore"})
    labeler = LLMLabeler(judge)
    labels = labeler.label("Find the sum.", TRACE)
    (batch,) = judge.batches
    assert all(r.params.max_tokens == 1 and r.params.logprobs >= 4 and r.params.temperature == 0 for r in batch)
    assert labels[0] == "normal" and labels[3] == "reflect" and labels[4] == "explore"
    assert labels[1] == "deep"  # only "deep" among the top tokens
    assert labeler.fallbacks == 0


def test_llm_judge_on_the_echo_engine() -> None:
    from molspec.engines import create

    params = SamplingParams(max_tokens=1, temperature=0.0, logprobs=4, choices=BONDS)
    engine = create("echo", None, {}, 0)
    labeler = LLMLabeler(engine, params=params)
    first = labeler.label("Find the sum.", TRACE)
    assert first == labeler.label("Find the sum.", TRACE) and labeler.fallbacks == 0
    replies = engine.generate([labeler.request(0, i, "Find the sum.", TRACE) for i in range(len(TRACE))])
    assert first == [c.text for c in replies]  # the echo engine's top token is its reply
    assert all(len(c.top_logprobs) == 4 for c in replies)


@pytest.mark.slow
def test_llm_judge_on_a_tiny_transformers_model(tmp_path: Path) -> None:
    """One forward pass per step on a real (random, tiny) model: 20 ranked first-token logprobs come back."""
    pytest.importorskip("transformers")
    from molspec.engines import create
    from tests.support.tiny_model import build_tiny_model

    engine = create("transformers", str(build_tiny_model(tmp_path)), {"max_model_len": 2048, "batch_size": 4}, 0)
    try:
        labeler = LLMLabeler(engine, max_chars=80, context_steps=1)
        labels = labeler.label(None, TRACE[:3])
        (done,) = engine.generate([labeler.request(0, 1, None, TRACE[:3])])
    finally:
        engine.close()
    assert len(labels) == 3 and set(labels) <= set(BONDS)
    assert done.n_tokens == 1 and len(done.top_logprobs) == 20
    values = [lp for _, lp in done.top_logprobs]
    assert values == sorted(values, reverse=True) and all(v <= 0 for v in values)
    assert sum(math.exp(v) for v in values) <= 1.0 + 1e-6
