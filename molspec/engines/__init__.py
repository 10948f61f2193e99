"""Engines behind one interface; concrete engines are imported lazily so that `check` and `plan`
never pay for (or need) torch or vLLM.

`ENGINES` / `ENGINE_NAMES` (molspec.engines.registry) are the one list of engines; `request_seed`
(molspec.engines.common) is the one per-request seed; `redact` / `redact_options`
(molspec.engines.redact) are the one secret redactor.
"""

from __future__ import annotations

from molspec.engines.base import Completion, Engine, EngineError, Request, SamplingParams, StreamingEngine
from molspec.engines.common import EngineInfo, request_seed
from molspec.engines.redact import redact, redact_options
from molspec.engines.registry import DEFAULT_ENGINE, ENGINE_NAMES, ENGINES, EngineEntry, create, default_window

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "ENGINE_NAMES",
    "Completion",
    "Engine",
    "EngineEntry",
    "EngineError",
    "EngineInfo",
    "Request",
    "SamplingParams",
    "StreamingEngine",
    "create",
    "default_window",
    "redact",
    "redact_options",
    "request_seed",
]
