"""Fixtures for the openai engine tests: loopback servers and engines that are always closed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from molspec.engines import Request, SamplingParams
from molspec.engines.openai import OpenAIEngine, create
from tests.support.openai_server import DEFAULT_MODEL, LoopbackOpenAIServer

# Fast retries so failure tests take milliseconds.
FAST = {"backoff_s": 0.001, "max_backoff_s": 0.01}

EngineFactory = Callable[..., OpenAIEngine]


@pytest.fixture
def server() -> Iterator[LoopbackOpenAIServer]:
    with LoopbackOpenAIServer() as srv:
        yield srv


@pytest.fixture
def make_engine() -> Iterator[EngineFactory]:
    """`make_engine(model=..., seed=..., **options)`; every engine made is closed after the test."""
    made: list[OpenAIEngine] = []

    def make(model: str | None = DEFAULT_MODEL, seed: int = 0, **options: Any) -> OpenAIEngine:
        engine = create(model=model, options={**FAST, **options}, seed=seed)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close()


def requests(n: int, max_tokens: int = 64, **params: Any) -> list[Request]:
    """`n` requests whose prompts name their index, so replies can be matched to requests."""
    return [
        Request(key=f"{i}:0", messages=({"role": "user", "content": f"question number {i}"},),
                params=SamplingParams(max_tokens=max_tokens, **params), meta={"sample": i, "step": 0})
        for i in range(n)
    ]
