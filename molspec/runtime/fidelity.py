"""The fidelity gate: every generated step is checked, repaired or asked again before it joins its walk.

    completion ──hygiene (cut, echo, duplicate, empty, restart)──▶ label with context ──▶ keep, or ask again
    (new seed, instruction restated), up to `retries` times; the best attempt is kept and every retry's reason recorded.

Hygiene runs on every build; the label gate runs when `fidelity.gate` is on (the default) and uses a CPU
labeler. Attempts use seeds derived from (seed, sample, step, attempt), so a resumed build on a deterministic
engine writes the same steps as an uninterrupted one (vLLM's numerics also depend on the batch it runs in).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from molspec.engines.base import starts_reply
from molspec.records import FidelityInfo, Row, Step
from molspec.spec import BondSpec, Spec
from molspec.structure.label import BOND_KINDS, BONDS, Labeler, NextLabel

NUMBER = re.compile(r"\d")
CLAIM_LIMIT = 240
SENTENCE_END = re.compile(r"""[.!?](?:["')\]]|\$\$?)?(?=\s|$)|\n""")
WORD = re.compile(r"\w+")
NOT_WORD = re.compile(r"\W+")  # the complement of WORD: what separates its words
OPENING_WORD = re.compile(r"[A-Za-z]+")
ECHO_SHARE = 0.5  # of a step's word 4-grams found in the prompt frame or the question
DUPLICATE_SHARE = 0.7  # of a step's word 3-grams found in one earlier step of the walk
# Earlier steps a labeler that re-reads the walk for each attempt sees with a new step: the stacked stages'
# look back (neighbours up to 8 steps away each, so 16 in all). With the bidirectional `learned`, gate labels of
# R1-like text agreed with the label the card gives the finished walk on 50% of steps with 2 earlier steps, 72%
# with 8, 75% with 16 and with all of them. The default `learned-causal` keeps each walk instead
# (`label.StepLabeler`) and reads every step before, at a constant cost per attempt; its recurrent stage reaches
# further than 16 steps (held-out 0.644 with 16, 0.694 with all, on an earlier split).
CONTEXT_STEPS = 16
MIN_KEPT = 0.3  # a cut step is trimmed only when its complete sentences keep this share of it
MIN_OWN_WORDS = 8  # an echoing step is repaired only when this many words of its own remain

REASON_HINTS = {
    "empty": "The last attempt was empty: write the step.",
    "cut": "The last attempt stopped mid-sentence or before its working: write a short step that ends with a full "
           "sentence.",
    "echo": "The last attempt repeated the problem or these instructions: write new reasoning in your own words.",
    "duplicate": "The last attempt repeated an earlier step: move the reasoning forward instead.",
    "restart": "The last attempt started a new reply: carry on the text from where it stops.",
}
# Words that open a reply of its own, and not a clause that carries on a lead cut mid-sentence ("This means that
# The total..."): a continuing model writes them lower-case there. Of the 3,257 stored SmolLM2 lead-build steps
# (vLLM continuing), 2 open so, each a real start-over; on a server that answers anew, 29 of 29 (bench/restarts.py).
RESTART_WORDS = frozenset(
    "after alright an another as based before certainly first for given great hello here hi however if in it let "
    "my next now of okay one our since so step sure that thank thanks the there these this to using we well what "
    "when with yes you your".split()
)


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


Checks = tuple[str, tuple[str, ...], str | None, frozenset[tuple[str, ...]]]  # what `hygiene` returns


def unechoed(checks: Checks, frame: str, question: str, earlier_grams: Sequence[frozenset[tuple[str, ...]]]) -> Checks:
    """`checks` of an echoing step with its copied sentences removed, or `checks` unchanged when fewer than
    MIN_OWN_WORDS words of its own remain or the rest still echoes."""
    text, _problems, repair, _grams = checks
    own = "".join(p for p in sentences(text) if not _echo(_ngrams(_words(p), 4), question, frame)).strip()
    if len(_words(own)) < MIN_OWN_WORDS:
        return checks
    rest, problems, _none, grams = hygiene(own, "stop", frame, question, earlier_grams)
    if "echo" in problems:
        return checks
    return rest, problems, f"{repair}, unechoed" if repair else "unechoed", grams


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


def frame_of(user: str, question: str, earlier: Sequence[str]) -> str:
    """The prompt's own words: the user turn without the question and the earlier steps (echo checks)."""
    for part in (question, *earlier):
        if part:
            user = user.replace(part, " ")
    return user


def check_text(text: str, finish_reason: str, frame: str, question: str,
               earlier: Sequence[frozenset[tuple[str, ...]]]) -> tuple[str, tuple[str, ...], str | None]:
    """Hygiene of one completion: (kept text, problems, repair); `earlier` holds the earlier steps' 3-grams."""
    kept, problems, repair, _grams3 = hygiene(text, finish_reason, frame, question, earlier)
    return kept, problems, repair


def hygiene(text: str, finish_reason: str, frame: str, question: str, earlier: Sequence[frozenset[tuple[str, ...]]],
            ) -> tuple[str, tuple[str, ...], str | None, frozenset[tuple[str, ...]]]:
    """`check_text`, and the kept text's word 3-grams (`grams3`), counted once for this check and later ones."""
    text = text.strip()
    problems: list[str] = []
    repair = None
    if (finish_reason == "length" or dangles(text)) and text:
        trimmed = trim_to_sentence(text)
        if trimmed is None:
            problems.append("cut")
        else:
            text, repair = trimmed, "trimmed"
    if not text:
        return text, ("empty",), None, frozenset()
    words = _words(text)
    if _echo(_ngrams(words, 4), question, frame):
        problems.append("echo")
    mine = _ngrams(words, 3)
    if mine and any(len(mine & e) >= DUPLICATE_SHARE * len(mine) for e in earlier):
        problems.append("duplicate")
    return text, tuple(problems), repair, mine


def dangles(text: str) -> bool:
    """The step ends by announcing what follows ("Here's a step-by-step breakdown:"): a paragraph stops at a
    blank line, so the list or working it announced was never part of it (a third of the quickstart's
    unfinished steps with leads at seed 9, the rest of them ends with a bare equation)."""
    return text.rstrip().endswith(":")


def trim_to_sentence(text: str) -> str | None:
    """`text` cut after its last complete sentence, or None when that would keep too little of it; a sentence
    that ends with a colon (`dangles`) is not complete."""
    ends = [m.end() for m in SENTENCE_END.finditer(text) if not dangles(text[:m.end()])]
    if not ends:
        return None
    kept = text[:ends[-1]].rstrip()
    return kept if len(kept) >= MIN_KEPT * len(text) else None


def _words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def _ngrams(words: Sequence[str], n: int) -> frozenset[tuple[str, ...]]:
    return frozenset(zip(*[words[i:] for i in range(n)], strict=False))  # stops at the shortest: full n-grams only


@functools.lru_cache(maxsize=4096)  # questions (and frames) repeat over a build's samples; step texts are not cached
def _grams(text: str, n: int) -> frozenset[tuple[str, ...]]:
    return _ngrams(_words(text), n)


def _spaced(source: str) -> str:
    """`source`'s words (`WORD`), lower-cased, with single spaces between them and a space (or two) around.

    A word n-gram is one of the source's exactly when its words joined by spaces, with a space either side, occur
    in this string (words hold no spaces, and only single spaces separate them): testing a step's few n-grams so
    is cheaper than making the set of a long prompt frame's."""
    return " " + NOT_WORD.sub(" ", source.lower()) + " "


def _echo(mine: frozenset[tuple[str, ...]], question: str, frame: str) -> bool:
    """Most of the step's word 4-grams (`mine`) come from the question or from the prompt frame."""
    if not mine:
        return False
    if len(mine & _grams(question, 4)) >= ECHO_SHARE * len(mine):
        return True
    spaced = _spaced(frame)
    return sum(f" {' '.join(g)} " in spaced for g in mine) >= ECHO_SHARE * len(mine)


def echoes(text: str, source: str) -> bool:
    """Most of the step's word 4-grams come from `source` (the prompt frame, or the question)."""
    mine = _ngrams(_words(text), 4)
    return bool(mine) and len(mine & _grams(source, 4)) >= ECHO_SHARE * len(mine)


def grams3(text: str) -> frozenset[tuple[str, ...]]:
    """A step's word 3-grams (what near-duplicate checks compare)."""
    return _ngrams(_words(text), 3)


def near_duplicate(text: str, other: str) -> bool:
    mine = grams3(text)
    return bool(mine) and len(mine & _grams(other, 3)) >= DUPLICATE_SHARE * len(mine)


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


def restarts(lead: str, completion: str) -> bool:
    """The model's words open a new reply where the lead stops mid-sentence: a capital glued to the lead
    ("...would be to useTo solve", what a server that ignores a started reply gives), or a sentence opener
    (`RESTART_WORDS`) after it ("This means that The total")."""
    if not (lead[-1:].isalnum() or lead[-1:] in ",;"):
        return False  # the lead ends a sentence, a quote or a label: anything may follow
    first = completion.lstrip()
    if not first[:1].isupper():
        return False
    if not completion[:1].isspace():
        return True  # a continuing tokenizer writes a space before a new word
    word = OPENING_WORD.match(first)
    return word is not None and len(word[0]) > 1 and word[0].lower() in RESTART_WORDS


def partner(kinds: Sequence[str], texts: Sequence[str], step: int) -> int | None:
    """The earlier step a reflection re-checks (`texts`: the walk's steps so far). A hydrogen bond folds back
    over a distance, so the most recent covalent (deep) step at least two steps back, else the step two back,
    else the previous one; but a step that states a number comes first, nearest that order: a quoted method
    ("A different method would be to use...") gives nothing to recompute, and people read a re-check of a
    number as a reflection 0.85 of the time against 0.61 of a sentence without one (754 labels, seeds 12-15)."""
    if step == 0:
        return None
    far = list(range(step - 2, -1, -1))
    order = [i for i in far if kinds[i] == "covalent"] + [i for i in far if kinds[i] != "covalent"] + [step - 1]
    stated = next((i for i in order if NUMBER.search(texts[i])), None)
    return stated if stated is not None else order[0]


def claim(text: str) -> str:
    """What a reflection quotes of the step it re-checks: its first sentence that states a number, else its first."""
    stated = next((s for s in sentences(text) if NUMBER.search(s)), None)
    return stated.strip()[:CLAIM_LIMIT] if stated is not None else first_sentence(text)


def sentences(text: str) -> list[str]:
    """`text` cut after each sentence end, blank pieces left out (the pieces keep their spacing)."""
    ends = [0] + [m.end() for m in SENTENCE_END.finditer(text)] + [len(text)]
    return [text[a:b] for a, b in zip(ends, ends[1:], strict=False) if text[a:b].strip()]


def first_sentence(text: str, limit: int = CLAIM_LIMIT) -> str:
    m = SENTENCE_END.search(text)
    head = text[:m.end()] if m else text
    return head.strip()[:limit]


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
