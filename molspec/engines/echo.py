"""The echo engine: no model, deterministic text that names the bond and the step.

Used for previews (`molspec build --engine echo`) and for pipeline tests. A thinking step reads
``[deep · step 3 · sample 17] Push the current line of reasoning one step deeper. (echo 5f3a09c1)``;
the answer step (bond ``"answer"``) reads ``The answer is \\boxed{42}.``. The hex suffix and the
answer are a CRC-32 of the request messages, so different prompts give different text and the same
prompt always gives the same text, in any process. A request costs a few microseconds.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from molspec.engines.base import Completion, FinishReason, Request, starts_reply
from molspec.engines.common import closed_error, cut_at_stop, describe
from molspec.engines.options import EchoOptions, parse_options

# One canned sentence per bond kind (the paper's four behaviours), so previews read sensibly.
KIND_TEXT: dict[str, str] = {
    "covalent": "Push the current line of reasoning one step deeper.",
    "hydrogen": "Check an earlier step; it holds.",
    "vdw": "Explore a different way to attack the problem.",
    "plain": "Carry out the next routine step.",
}
DEFAULT_TEXT = "Take the next step."
ANSWER_BOND = "answer"


def digest(messages: Sequence[Mapping[str, str]]) -> int:
    """A stable 32-bit hash of chat messages (roles and contents); CRC-32 is cheap and process-independent."""
    crc = 0
    for message in messages:
        crc = zlib.crc32(message.get("role", "").encode(), crc)
        crc = zlib.crc32(message.get("content", "").encode(), crc)
    return crc


def echo_text(request: Request) -> str:
    """The full (uncut) text the echo engine writes for `request`."""
    meta = request.meta
    crc = digest(request.messages)
    bond = meta.get("bond", "?")
    if bond == ANSWER_BOND:
        return f"The answer is \\boxed{{{crc % 1000}}}."
    phrase = KIND_TEXT.get(meta.get("kind", ""), DEFAULT_TEXT)
    where = f"{bond} · step {meta.get('step', '?')} · sample {meta.get('sample', '?')}"
    return f"[{where}] {phrase} (echo {crc:08x})"


def complete(request: Request) -> Completion:
    """Answer one request: echo text, cut by stop strings, then by max_tokens (one token = one word).
    With `choices`, one of them, picked by a stable hash of the request."""
    if request.params.choices:
        choices = request.params.choices
        pick = zlib.crc32(echo_text(request).encode()) % len(choices)
        # logprobs: the picked choice first (log 0.7), the others after it in order, all distinct
        top = ((choices[pick], -0.357),) + tuple((c, -3.0 - i) for i, c in enumerate(choices) if i != pick)
        top = top[: request.params.logprobs]
        return Completion(key=request.key, text=choices[pick], n_tokens=1, finish_reason="stop", top_logprobs=top)
    text = echo_text(request)
    finish: FinishReason = "stop"
    if request.params.stop:
        text, _found = cut_at_stop(text, request.params.stop)
    words = text.split()
    limit = max(request.params.max_tokens, 0)
    if len(words) > limit:
        words = words[:limit]
        text = " ".join(words)
        finish = "length"
    if text and starts_reply(request.messages):
        text = " " + text  # a started reply is continued after a space, as a tokenizer's next word would be
    top = ((words[0], 0.0),) if words and request.params.logprobs > 0 else ()
    return Completion(key=request.key, text=text, n_tokens=len(words), finish_reason=finish, top_logprobs=top)


class EchoEngine:
    """An engine without a model; see the module docstring for the text it writes."""

    name = "echo"

    def __init__(self, model: str | None, options: Mapping[str, Any], seed: int) -> None:
        self.model = model
        self.options = dict(options)
        self.seed = seed
        self._closed = False

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        """One completion per request, in order; a request never fails (a closed engine refuses)."""
        if self._closed:
            raise closed_error(self.name)
        return [complete(request) for request in requests]

    def describe(self) -> dict[str, Any]:
        """Build metadata; echo has no model, so `model` is whatever the spec named (or None)."""
        return describe(self.name, self.model, self.options)

    def close(self) -> None:
        """Nothing to release; later work is refused, like on every engine."""
        self._closed = True

    def __repr__(self) -> str:
        return f"EchoEngine(model={self.model!r})"


def create(model: str | None, options: Mapping[str, Any], seed: int) -> EchoEngine:
    """Factory used by `molspec.engines.create`; echo accepts (and ignores) any options."""
    return EchoEngine(model=model, options=parse_options("echo", EchoOptions, options).given(), seed=seed)
