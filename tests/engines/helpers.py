"""Small builders shared by the engine tests."""

from __future__ import annotations

from typing import Any

from molspec.engines import Request, SamplingParams


def chat(key: str, text: str, **params: Any) -> Request:
    """A request holding one user message; `params` are SamplingParams fields."""
    return Request(key=key, messages=({"role": "user", "content": text},), params=SamplingParams(**params))


def long_text(words: int) -> str:
    """A prompt far longer than the tiny model's context (each word is several tokens)."""
    return " ".join(["reflect"] * words)
