"""The fidelity gate: every generated step is checked, repaired or asked again before it joins its walk.

    completion ──hygiene (cut, echo, duplicate, empty, restart)──▶ label with context ──▶ keep, or ask again
    (new seed, instruction restated), up to `retries` times; the best attempt is kept and every retry's reason recorded.

Hygiene runs on every build; the label gate runs when `fidelity.gate` is on (the default) and uses a CPU
labeler. Attempts use seeds derived from (seed, sample, step, attempt), so a resumed build on a deterministic
engine writes the same steps as an uninterrupted one (vLLM's numerics also depend on the batch it runs in).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from molspec.engines.base import starts_reply
from molspec.records import FidelityInfo, Row, Step
from molspec.runtime.hygiene import grams3, hygiene, restarts, unechoed
from molspec.spec import BondSpec, Spec
from molspec.structure.label import BOND_KINDS, BONDS, Labeler, NextLabel

# Earlier steps a labeler that re-reads the walk for each attempt sees with a new step: the stacked stages'
# look back (neighbours up to 8 steps away each, so 16 in all). With the bidirectional `learned`, gate labels of
# R1-like text agreed with the label the card gives the finished walk on 50% of steps with 2 earlier steps, 72%
# with 8, 75% with 16 and with all of them. The default `learned-causal` keeps each walk instead
# (`label.StepLabeler`) and reads every step before, at a constant cost per attempt; its recurrent stage reaches
# further than 16 steps (held-out 0.644 with 16, 0.694 with all, on an earlier split).
CONTEXT_STEPS = 16

REASON_HINTS = {
    "empty": "The last attempt was empty: write the step.",
    "cut": "The last attempt stopped mid-sentence or before its working: write a short step that ends with a full "
           "sentence.",
    "echo": "The last attempt repeated the problem or these instructions: write new reasoning in your own words.",
    "duplicate": "The last attempt repeated an earlier step: move the reasoning forward instead.",
    "restart": "The last attempt started a new reply: carry on the text from where it stops.",
}


@dataclass(frozen=True)
class Attempt:
    """One generation of a step, after hygiene: its kept text, what was wrong, its label."""

    text: str
    n_tokens: int
    finish_reason: str
    problems: tuple[str, ...]  # empty, cut, echo, duplicate, restart, label:<bond>, unsure (below min_fit)
    repair: str | None  # "trimmed": cut back to its last complete sentence; "unechoed": copied sentences removed
    label: str | None
    grams: frozenset[tuple[str, ...]] = field(default=frozenset(), compare=False)  # the text's grams3, counted once
    read: object = field(default=None, compare=False)  # a step labeler's walk with this attempt kept (`StepLabeler`)
    fit: float | None = field(default=None, compare=False)  # a step labeler's probability of the bond's kind

    def score(self) -> tuple[bool, int, bool, float]:
        """Higher is better: the right bond, then fewer hygiene problems, then not repaired, then the labeler's
        probability of the bond's kind (so that of three attempts it reads as wrong, the one nearest the bond
        is kept, not the first)."""
        hygiene = [p for p in self.problems if not missed_bond(p)]
        return (len(hygiene) == len(self.problems), -len(hygiene), self.repair is None, self.fit or 0.0)


@dataclass
class StepTrial:
    """The attempts at one step of a walk so far."""

    attempts: list[Attempt] = field(default_factory=list)

    def reasons(self) -> list[str]:
        """Why each retry happened (one entry per attempt that was not the last)."""
        return [",".join(a.problems) for a in self.attempts[:-1]]

    def reasons_last(self) -> str:
        return ",".join(self.attempts[-1].problems)

    def best(self) -> Attempt:
        if len(self.attempts) == 1:
            return self.attempts[0]
        return max(self.attempts, key=lambda a: a.score())  # max keeps the earliest of equals


def attempt_of(text: str, n_tokens: int, finish_reason: str, bond: BondSpec, frame: str, question: str,
               earlier: Sequence[str], labeler: Labeler | None,
               earlier_grams: Sequence[frozenset[tuple[str, ...]]] | None = None) -> Attempt:
    """One completion checked: hygiene, then (when a labeler is given) its label read in context.

    `earlier_grams`: the earlier steps' word 3-grams, when the caller keeps them (`grams3`), so that a long
    walk does not count them again at every step. The scheduler does the same in two halves (`checked`,
    then `label_last` over a whole round, then `labelled`)."""
    grams = earlier_grams if earlier_grams is not None else [grams3(e) for e in earlier]
    attempt = checked(text, n_tokens, finish_reason, frame, question, grams)
    if labeler is None or not attempt.text:
        return attempt
    return labelled(attempt, label_last(labeler, [(question, earlier, attempt.text)])[0], bond)


def checked(text: str, n_tokens: int, finish_reason: str, frame: str, question: str,
            earlier_grams: Sequence[frozenset[tuple[str, ...]]]) -> Attempt:
    """A completion after hygiene, not yet labelled. A step that echoes the prompt loses the sentences it copied
    when what is left is reasoning of its own (repair "unechoed"); otherwise it keeps its `echo` problem."""
    checks = hygiene(text, finish_reason, frame, question, earlier_grams)
    if "echo" in checks[1]:
        checks = unechoed(checks, frame, question, earlier_grams)
    kept, problems, repair, grams = checks
    return Attempt(kept, n_tokens, finish_reason, problems, repair, None, grams)


def label_last(labeler: Labeler, items: Sequence[tuple[str, Sequence[str], str]]) -> list[str]:
    """The label of each item's new step, read after its last earlier steps: items are (question, earlier steps,
    new step). One `label_many` call for them all, so that a labeler can batch a round's attempts."""
    # CONTEXT_STEPS earlier steps are all the labelers' context features reach, and keep each attempt O(1)
    traces: list[tuple[str | None, Sequence[str]]] = [(q, [*earlier[-CONTEXT_STEPS:], text])
                                                       for q, earlier, text in items]
    return [labels[-1] for labels in labeler.label_many(traces)] if traces else []


def labelled(attempt: Attempt, label: str | None, bond: BondSpec, read: NextLabel | None = None,
             min_fit: float = 0.0) -> Attempt:
    """The attempt with its label (and a step labeler's reading: the walk with it kept, the probability of the
    bond's kind); a label of another kind than the bond's is a problem, and so is the bond's own kind read with
    less than `min_fit` probability ("unsure")."""
    problems = attempt.problems
    fit = sum(p for b, p in zip(BONDS, read.probs, strict=True) if BOND_KINDS[b] == bond.kind) if read else None
    if label is not None and BOND_KINDS[label] != bond.kind:
        problems = (*problems, f"label:{label}")
    elif label is not None and fit is not None and fit < min_fit:
        problems = (*problems, "unsure")
    return Attempt(attempt.text, attempt.n_tokens, attempt.finish_reason, problems, attempt.repair, label,
                   attempt.grams, read.walk if read else None, fit)


def missed_bond(problem: str) -> bool:
    """Whether `problem` is the labeler's (the bond missed, or read too unsure), not one of hygiene."""
    return problem.startswith("label:") or problem == "unsure"


def fidelity(steps: Sequence[Step], spec: Spec) -> float | None:
    """Share of a walk's steps whose label has the kind of their planned bond (None: nothing labelled)."""
    labelled = [s for s in steps if s.label is not None]
    if not labelled:
        return None
    return round(sum(BOND_KINDS[s.label] == spec.bonds[s.bond].kind for s in labelled if s.label) / len(labelled), 4)


def restated(user: str, bond: BondSpec, problems: Sequence[str]) -> str:
    """The user turn of a retry: the same prompt, with what went wrong and the bond's instruction restated."""
    hints = [REASON_HINTS[p] for p in problems if p in REASON_HINTS]
    if any(missed_bond(p) for p in problems) or not hints:
        hints.append(f"This step must be {bond.title.lower()}: {bond.instruct}")
    return user.rstrip() + "\n\n" + " ".join(hints)


def restated_prompt(messages: Sequence[Mapping[str, str]], bond: BondSpec,
                    problems: Sequence[str]) -> tuple[dict[str, str], ...]:
    """A retry's messages: the last user turn `restated`; a started reply after it stays as it was."""
    last = max(i for i, m in enumerate(messages) if m["role"] == "user")
    out = [dict(m) for m in messages]
    out[last]["content"] = restated(out[last]["content"], bond, problems)
    return tuple(out)


def prompt_words(messages: Sequence[Mapping[str, str]], lead: str) -> str:
    """The user turn and any started reply, without the lead (which opens the step itself): what `frame_of`
    reads for the words a step must not echo."""
    user = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    reply = messages[-1]["content"] if starts_reply(messages) else ""
    if lead and reply.endswith(lead):
        reply = reply[:-len(lead)]
    return f"{user}\n\n{reply}" if reply else user


def led(attempt: Attempt, lead: str, completion: str) -> Attempt:
    """The attempt with the step's lead in front. Hygiene judged the model's own words (`completion`, after
    the lead); an empty completion stays empty, so a lead alone is never a step. Words that start a reply of
    their own instead of carrying on the lead (`restarts`) are a `restart` problem."""
    if not lead or not attempt.text:
        return attempt
    # A tokenizer writes the space after the lead into the completion; "," or "s" follow the lead directly.
    sep = " " if completion[:1].isspace() else ""
    problems = (*attempt.problems, "restart") if restarts(lead, completion) else attempt.problems
    return replace(attempt, text=f"{lead}{sep}{attempt.text}", problems=problems)


def fidelity_info(rows: Sequence[Row], spec: Spec) -> FidelityInfo:
    """The build's fidelity: overall and per bond, with what the gate retried and what it could not mend."""
    hit: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    problems: Counter[str] = Counter()
    retries = repaired = 0
    for r in rows:
        for st in r.steps:
            retries += st.attempts - 1
            repaired += st.repair is not None
            reasons.update(p.split(":")[0] for why in st.retries for p in why.split(","))
            problems.update(p.split(":")[0] for p in st.problems)
            if st.label is not None:
                seen[st.bond] += 1
                hit[st.bond] += BOND_KINDS[st.label] == spec.bonds[st.bond].kind
    total = sum(seen.values())
    return FidelityInfo(
        labeler=spec.fidelity.labeler, gate=spec.fidelity.gate,
        overall=round(sum(hit.values()) / total, 4) if total else None,
        per_bond={b: round(hit[b] / n, 4) for b, n in seen.items()}, labelled=total, retries=retries,
        reasons=dict(reasons), problems=dict(problems), repaired=repaired)
