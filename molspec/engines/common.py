"""What every engine shares: the per-request seed, prompt fitting, failed completions, stop strings,
the closed-engine error and `describe()`.

Kept free of torch, vLLM and httpx so that the runtime and `check` can import it cheaply.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from molspec.engines.base import Completion, EngineError, Request, starts_reply
from molspec.engines.redact import redact_options


def request_seed(seed: int, *parts: object) -> int:
    """The seed of one request: 63 bits of blake2b over ``"seed:part:..."``.

    `request_seed(plan_seed, sample, step)` is the seed the scheduler gives each request, and an engine
    that gets a request without one uses `request_seed(engine_seed, request.key)`; the runtime's keys
    are ``"sample:step"``, so both spell the same string and give the same number.
    """
    text = ":".join(str(part) for part in (seed, *parts))
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def seed_of(request: Request, engine_seed: int) -> int:
    """The request's own seed, else one derived from the engine seed and its key (never its position)."""
    own = request.params.seed
    return own if own is not None else request_seed(engine_seed, request.key)


def failed(key: str, error: str, prompt_tokens: int | None = None) -> Completion:
    """A completion that failed on its own; the rest of the batch goes on."""
    return Completion(key=key, text="", n_tokens=0, finish_reason="error", error=error, prompt_tokens=prompt_tokens)


def closed_error(engine: str) -> EngineError:
    """The error for work given to an engine after `close()`."""
    return EngineError(f"the {engine} engine was closed; create a new one")


def render_prompt(tokenizer: Any, messages: Sequence[Mapping[str, str]]) -> list[int]:
    """Chat-template `messages` and return the prompt's token ids.

    A list that ends with an assistant message is a prefill: the reply continues that message (no new
    turn is opened), so a step can start with text the runtime chose.
    """
    prefill = starts_reply(messages)
    text = tokenizer.apply_chat_template(
        [dict(m) for m in messages], add_generation_prompt=not prefill, continue_final_message=prefill, tokenize=False
    )
    # The template already wrote any BOS/special tokens; adding them again would double the BOS.
    ids: list[int] = tokenizer.encode(text, add_special_tokens=False)
    return ids


@dataclass(frozen=True, slots=True)
class FittedPrompt:
    """A prompt that fits the context, and how many new tokens may follow it."""

    prompt_ids: list[int]
    budget: int


def fit_prompt(request: Request, tokenizer: Any, max_model_len: int) -> FittedPrompt | Completion:
    """Render the prompt and fit it in `max_model_len`; a prompt that cannot fit fails only its request."""
    try:
        prompt_ids = render_prompt(tokenizer, request.messages)
    except Exception as exc:  # a template may reject a message list (roles, order)
        return failed(request.key, f"chat template failed: {type(exc).__name__}: {exc}")
    room = max_model_len - len(prompt_ids)
    if room < 1:
        return failed(request.key, prompt_too_long(len(prompt_ids), max_model_len), prompt_tokens=len(prompt_ids))
    return FittedPrompt(prompt_ids, max(1, min(request.params.max_tokens, room)))


def prompt_too_long(prompt_tokens: int, max_model_len: int) -> str:
    return (
        f"prompt is {prompt_tokens} tokens but max_model_len is {max_model_len}; raise max_model_len "
        "in the model's options { } (if the model allows) or shorten the prompt"
    )


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` before its earliest stop string; say whether one was found."""
    hits = [pos for pos in (text.find(s) for s in stop if s) if pos >= 0]
    return (text[: min(hits)], True) if hits else (text, False)


class EngineInfo(BaseModel):
    """What `Engine.describe()` reports, as build metadata (never a secret).

    Attributes:
        engine: the registry name ("vllm", "transformers", "openai", "echo").
        model: the model as the spec named it (a Hub id, a path, an alias; echo: whatever was named).
        options: the engine options, credential values masked.
        version: the version of the library that ran the model, where there is one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: str
    model: str | None
    options: dict[str, Any]
    version: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The `describe()` dict: no `version` key for engines without a library behind them."""
        return self.model_dump(exclude_none=True) | {"model": self.model}


def describe(engine: str, model: str | None, options: Mapping[str, Any], version: str | None = None,
             secrets: Sequence[str | None] = ()) -> dict[str, Any]:
    """The common `describe()`: engine name, model, redacted options, and the library version if any."""
    return EngineInfo(engine=engine, model=model, options=redact_options(options, secrets), version=version).as_dict()
