"""The one engine registry: name -> how to start it, its options model and its defaults.

Every other list of engine names (the spec check, the `--engine` choices, the batch windows, Ray's
GPU planning) reads `ENGINE_NAMES` / `ENGINES` from here. Concrete engines are imported lazily, so
`check` and `plan` never pay for (or need) torch, vLLM or httpx.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from molspec.engines.base import Engine, EngineError
from molspec.engines.options import EchoOptions, EngineOptions, OpenAIOptions, TransformersOptions, VllmOptions
from molspec.engines.options import parse_options as _parse


@dataclass(frozen=True, slots=True)
class EngineEntry:
    """One engine in the registry.

    Attributes:
        name: what a spec writes (`engine = "vllm"`) and `--engine` takes.
        module: the module whose `create(model=, options=, seed=)` starts it (imported on first use).
        options: the pydantic model of its options.
        extra: the pip extra that provides its dependencies (None: always installed).
        window: the default batch window (samples in flight) of a build on this engine.
        uses_gpu: whether a replica wants a GPU when the machine has one (Ray's resource planning).
    """

    name: str
    module: str
    options: type[EngineOptions]
    extra: str | None
    window: int
    uses_gpu: bool

    def parse_options(self, options: Mapping[str, Any]) -> Any:
        """The validated options model. Raises EngineError naming each bad option."""
        return _parse(self.name, self.options, options)

    def create(self, model: str | None, options: Mapping[str, Any], seed: int) -> Engine:
        """Import the engine's module and start it."""
        result: Engine = importlib.import_module(self.module).create(model=model, options=dict(options), seed=seed)
        return result


_ENTRIES = (
    EngineEntry("vllm", "molspec.engines.vllm", VllmOptions, "vllm", window=1024, uses_gpu=True),
    EngineEntry("transformers", "molspec.engines.transformers", TransformersOptions, "transformers",
                window=16, uses_gpu=True),
    EngineEntry("openai", "molspec.engines.openai", OpenAIOptions, None, window=256, uses_gpu=False),
    EngineEntry("echo", "molspec.engines.echo", EchoOptions, None, window=4096, uses_gpu=False),
)
ENGINES: Mapping[str, EngineEntry] = MappingProxyType({entry.name: entry for entry in _ENTRIES})
ENGINE_NAMES: tuple[str, ...] = tuple(ENGINES)  # in the order users see them: vllm first
DEFAULT_ENGINE = "vllm"
DEFAULT_WINDOW = 256  # for a name the registry does not know (never reached after validation)


def entry(name: str) -> EngineEntry:
    """The registry entry of `name`.

    Raises:
        EngineError: unknown engine (the message lists the known ones).
    """
    found = ENGINES.get(name)
    if found is None:
        raise EngineError(f"unknown engine '{name}'; choose one of: {', '.join(ENGINE_NAMES)}")
    return found


def default_window(name: str) -> int:
    """The default batch window of a build on engine `name`."""
    found = ENGINES.get(name)
    return found.window if found is not None else DEFAULT_WINDOW


def create(engine: str, model: str | None, options: Mapping[str, Any], seed: int) -> Engine:
    """Start the named engine on `model` (a hub id, a local path, or a built-in alias).

    Options are validated against the engine's options model before anything is imported or loaded.

    Raises:
        EngineError: unknown engine, bad options, missing optional dependency, model not found, out of memory.
    """
    found = entry(engine)
    found.parse_options(options)
    return found.create(model, options, seed)
