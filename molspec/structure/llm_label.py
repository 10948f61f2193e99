"""The `llm` labeler: a few-shot judge that labels each step through any `molspec.engines` Engine.

Each step becomes one chat request: bond definitions and a few short examples (written for this
module, not taken from any trace), the question, the few steps before it, and the step itself.

The judge reads the model's answer from ONE forward pass: the request asks for a single token with
its top-`logprobs` first-token log-probabilities (`SamplingParams.logprobs`; vLLM's `logprobs`, an
OpenAI-compatible server's `top_logprobs`, the transformers engine's raw logits, the echo engine's
deterministic stand-in). Each bond scores the best log-probability among the listed tokens that
begin its name (" deep", "Deep", "ex" for explore; the four names start with different letters), and
the best-scoring bond wins. An engine that reports no log-probabilities falls back to reading the
reply text for a bond name. A step with neither (or a failed request) takes the cue labeler's
label, and the number of such steps is kept in `LLMLabeler.fallbacks`. All steps of all traces go
to the engine in one `generate` call, so batching engines (vLLM) see the whole workload at once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from molspec.engines.base import Completion, Engine, Request, SamplingParams
from molspec.structure.label import BONDS, CueLabeler, Labeler

DEFINITIONS = """\
Label one step of a long chain of thought with exactly one behaviour:
- explore: opens a new direction without committing to it: another method, a guess, a special case,
  a different reading of the problem, or (in a debate) a new argument or angle.
- deep: extends the current line of reasoning: each claim follows from the previous ones
  (derives, solves, substitutes, proves, weighs arguments to reach a judgement).
- reflect: looks back at earlier work to test it: checks, re-computes, plugs a result back in,
  doubts or corrects an earlier step or premise.
- normal: routine work with little inference: restating the problem, setting up notation,
  plain arithmetic, listing or summarising, stating the final answer."""

# (step, label): short illustrations written for this prompt.
EXAMPLES: tuple[tuple[str, str], ...] = (
    ("The problem gives a triangle with sides 5, 12 and 13 and asks for its area.", "normal"),
    ("Maybe it is easier to count the complement: strings with no repeated letter.", "explore"),
    ("Since the roots sum to 7 and multiply to 10, they must be 2 and 5, so the sides are 2 and 5.", "deep"),
    ("Wait, let me re-add that: 17 + 26 is 43, not 42, so the earlier total was off by one.", "reflect"),
    ("Another angle is the cost to taxpayers, which neither side has raised yet.", "explore"),
    ("12 times 15 is 180, and 180 minus 36 is 144.", "normal"),
)
_BOND_WORD = re.compile(r"\b(" + "|".join(BONDS) + r")\b", re.IGNORECASE)


@dataclass
class LLMLabeler:
    """Label steps with an LLM judge.

    Attributes:
        engine: any Engine (vllm, transformers, openai, or a test double).
        context_steps: how many preceding steps the judge sees.
        max_chars: each step (and the question) is cut to this many characters in the prompt.
        params: decoding settings: greedy, one token, the top 20 first-token log-probabilities. (Replies
            without log-probabilities are parsed for a bond name.)
        fallback: the labeler used where the reply names no bond (default: the cue labeler).
        fallbacks: how many steps fell back in the last `label_many` call.
    """

    engine: Engine
    context_steps: int = 3
    max_chars: int = 1500
    params: SamplingParams = SamplingParams(max_tokens=1, temperature=0.0, logprobs=20)
    fallback: Labeler | None = None
    name: str = "llm"
    fallbacks: int = 0

    def label(self, question: str | None, steps: Sequence[str]) -> list[str]:
        return self.label_many([(question, steps)])[0]

    def label_many(self, traces: Sequence[tuple[str | None, Sequence[str]]]) -> list[list[str]]:
        requests = [
            self.request(t, i, question, steps) for t, (question, steps) in enumerate(traces) for i in range(len(steps))
        ]
        completions = {c.key: c for c in self.engine.generate(requests)} if requests else {}
        fallback = self.fallback or CueLabeler()
        self.fallbacks = 0
        results: list[list[str]] = []
        for t, (question, steps) in enumerate(traces):
            backup = fallback.label(question, steps)
            labels = [self._parse(completions.get(_key(t, i)), backup[i]) for i in range(len(steps))]
            results.append(labels)
        return results

    def request(self, trace: int, index: int, question: str | None, steps: Sequence[str]) -> Request:
        """The judge request for step `index` of trace number `trace`."""
        return Request(
            key=_key(trace, index),
            messages=(
                {"role": "system", "content": self._system()},
                {"role": "user", "content": self._user(question, steps, index)},
            ),
            params=self.params,
            meta={"labeler": self.name, "trace": trace, "step": index},
        )

    def _system(self) -> str:
        shots = "\n".join(f'Step: "{text}"\nLabel: {label}' for text, label in EXAMPLES)
        return f"{DEFINITIONS}\n\nExamples:\n{shots}\n\nReply with the label only: {', '.join(BONDS)}."

    def _user(self, question: str | None, steps: Sequence[str], index: int) -> str:
        parts = []
        if question:
            parts.append(f"Question:\n{self._cut(question)}")
        first = max(0, index - self.context_steps)
        if index > first:
            before = "\n\n".join(f"[{j + 1}] {self._cut(steps[j])}" for j in range(first, index))
            parts.append(f"Previous steps:\n{before}")
        parts.append(f"Step to label [{index + 1} of {len(steps)}]:\n{self._cut(steps[index])}")
        parts.append("Label:")
        return "\n\n".join(parts)

    def _cut(self, text: str) -> str:
        return text if len(text) <= self.max_chars else text[: self.max_chars] + " [...]"

    def _parse(self, completion: Completion | None, backup: str) -> str:
        if completion is not None and completion.finish_reason != "error":
            scores = bond_scores(completion.top_logprobs)
            if scores:
                return max(scores, key=lambda b: (scores[b], -BONDS.index(b)))
            match = _BOND_WORD.search(completion.text)
            if match:
                return match.group(1).lower()
        self.fallbacks += 1
        return backup


def bond_scores(top: Sequence[tuple[str, float]]) -> dict[str, float]:
    """Bond -> the best log-probability among the first tokens that begin its name (case and
    surrounding spaces ignored); bonds with no such token are left out."""
    scores: dict[str, float] = {}
    for token, logprob in top:
        piece = token.strip().lower()
        if not piece:
            continue
        for bond in BONDS:
            if bond.startswith(piece) and logprob > scores.get(bond, float("-inf")):
                scores[bond] = logprob
    return scores


def _key(trace: int, index: int) -> str:
    return f"{trace}:{index}"
