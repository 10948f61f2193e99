"""Engines behind one interface; concrete engines are imported lazily so that `check` and `plan`
never pay for (or need) torch or vLLM."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from molspec.engines.base import Completion, Engine, EngineError, Request, SamplingParams, StreamingEngine

# engine name -> (module, factory function, pip extra that provides its dependencies)
ENGINES: dict[str, tuple[str, str, str | None]] = {
    "echo": ("molspec.engines.echo", "create", None),
    "openai": ("molspec.engines.openai", "create", None),
    "transformers": ("molspec.engines.transformers", "create", "transformers"),
    "vllm": ("molspec.engines.vllm", "create", "vllm"),
}


def create(engine: str, model: str | None, options: Mapping[str, Any], seed: int) -> Engine:
    """Start the named engine on `model` (a hub id, a local path, or a built-in alias).

    Raises:
        EngineError: unknown engine, missing optional dependency, model not found, out of memory.
    """
    if engine not in ENGINES:
        raise EngineError(f"unknown engine '{engine}'; choose one of: {', '.join(sorted(ENGINES))}")
    module_name, factory, _extra = ENGINES[engine]
    module = importlib.import_module(module_name)
    result: Engine = getattr(module, factory)(model=model, options=dict(options), seed=seed)
    return result


__all__ = ["ENGINES", "Completion", "Engine", "EngineError", "Request", "SamplingParams", "StreamingEngine", "create"]
