"""The echo engine: deterministic text naming bond, step and sample; length cuts; speed."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import molspec.engines
from molspec.engines import Request, SamplingParams
from molspec.engines.echo import EchoEngine, create, echo_text

MESSAGES = ({"role": "system", "content": "You are a careful reasoner."},
            {"role": "user", "content": "What is 6 x 7?"})
DEEP = {"sample": 17, "step": 3, "bond": "deep", "kind": "covalent"}


def request(meta: dict[str, Any] | None = None, content: str | None = None, **params: Any) -> Request:
    messages = MESSAGES if content is None else ({"role": "user", "content": content},)
    meta = DEEP if meta is None else meta
    return Request(key="17:3", messages=messages, params=SamplingParams(**params), meta=meta)


def one(req: Request) -> molspec.engines.Completion:
    return create(model=None, options={}, seed=0).generate([req])[0]


def test_text_names_bond_step_and_sample() -> None:
    out = one(request())
    # a literal: CRC-32 is the same in every process and on every platform
    assert out.text == ("[deep · step 3 · sample 17] Push the current line of reasoning one step deeper. "
                        "(echo 77626ecc)")
    assert (out.key, out.finish_reason, out.error) == ("17:3", "stop", None)
    assert out.n_tokens == len(out.text.split())


def test_each_kind_has_its_own_sentence() -> None:
    kinds = ("covalent", "hydrogen", "vdw", "plain")
    texts = {kind: echo_text(request({**DEEP, "kind": kind})) for kind in kinds}
    assert len(set(texts.values())) == 4
    assert "Check an earlier step" in texts["hydrogen"]
    assert "Take the next step." in echo_text(request({**DEEP, "kind": "unheard-of"}))


def test_missing_meta_still_gives_text() -> None:
    assert one(request(meta={})).text.startswith("[? · step ? · sample ?]")


def test_same_request_same_text_different_prompt_different_text() -> None:
    a, b = create(model=None, options={}, seed=0), create(model="ignored", options={"x": 1}, seed=99)
    assert a.generate([request()]) == b.generate([request()])
    assert one(request(content="one prompt")).text != one(request(content="another prompt")).text


def test_answer_step_is_a_boxed_number() -> None:
    answer = {"sample": 17, "step": 9, "bond": "answer", "kind": "answer"}
    out = one(request(answer))
    assert out.text == "The answer is \\boxed{596}."
    assert one(request(answer)).text == out.text
    assert one(request(answer, content="another question")).text != out.text


def test_max_tokens_cuts_words() -> None:
    out = one(request(max_tokens=3))
    assert (out.text, out.n_tokens, out.finish_reason) == ("[deep · step", 3, "length")
    empty = one(request(max_tokens=0))
    assert (empty.text, empty.n_tokens, empty.finish_reason) == ("", 0, "length")


def test_stop_strings_cut_the_text() -> None:
    out = one(request(stop=("Push", "nowhere-to-be-found")))
    assert out.text == "[deep · step 3 · sample 17] " and out.finish_reason == "stop"


def test_batch_keeps_order() -> None:
    reqs = [dataclasses.replace(request({**DEEP, "sample": i}), key=f"{i}:3") for i in range(50)]
    out = create(model=None, options={}, seed=0).generate(reqs)
    assert [c.key for c in out] == [r.key for r in reqs]
    assert all(f"sample {i}]" in c.text for i, c in enumerate(out))


@given(max_tokens=st.integers(0, 40), content=st.text(max_size=200), step=st.integers(0, 99))
def test_token_count_is_word_count_and_within_limit(max_tokens: int, content: str, step: int) -> None:
    req = request({**DEEP, "step": step}, content=content, max_tokens=max_tokens)
    out = one(req)
    assert out.n_tokens == len(out.text.split()) <= max_tokens
    full = echo_text(req).split()
    assert out.finish_reason == ("length" if len(full) > max_tokens else "stop")
    assert out.text.split() == full[:max_tokens]


def test_registry_describe_close() -> None:
    engine = molspec.engines.create("echo", "some/model", {"temperature": 0.2}, seed=3)
    assert isinstance(engine, EchoEngine) and isinstance(engine, molspec.engines.Engine)
    assert engine.describe() == {"engine": "echo", "model": "some/model", "options": {"temperature": 0.2}}
    engine.close()


def test_fast_enough_for_the_runtime() -> None:
    # the runtime targets >= 5,000 steps/s overall; echo itself must be a small part of that
    long_prompt = "Natalia sold clips to 48 of her friends in April. " * 40
    reqs = [request({**DEEP, "sample": i}, content=long_prompt) for i in range(20_000)]
    engine = create(model=None, options={}, seed=0)
    start = time.perf_counter()
    engine.generate(reqs)
    assert 20_000 / (time.perf_counter() - start) > 20_000  # measured ~150,000/s on 2 cores
