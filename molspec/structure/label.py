"""Label reasoning steps with bonds: `deep`, `reflect`, `explore`, `normal`.

Two labelers share the `Labeler` protocol:

* `CueLabeler` ("cue"): fast and deterministic. Each step gets a score per bond from:
  - cue phrases in its opening words ("Wait", "Alternatively", "Therefore", "The problem asks");
  - cue words in its body, per word and scaled down for long steps;
  - equation density (deep) and digit ratio (plain arithmetic is normal);
  - how much it repeats earlier steps. Reflection folds back onto earlier work, so it re-uses
    text from two or more steps back. Text repeated from the question is restating (normal);
  - its position (the first step restates the problem);
  - the previous step's bond when the step opens with no check or branch cue (a verification
    or a derivation runs over several paragraphs).
  The highest score wins; ties go to the order in `TIE_ORDER`. Weights: `CueWeights`.
* `LearnedLabeler` ("learned", the default, in `molspec.structure.learned`): a linear model over
  these cue signals plus text features, trained from the hand labels (`scripts/train_labeler.py`).
* `LLMLabeler` ("llm", in `molspec.structure.llm_label`): a few-shot judge run through an Engine.

Bond names and kinds follow the standard vocabulary: deep = covalent, reflect = hydrogen,
explore = vdw, normal = plain.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, runtime_checkable

from molspec.structure.cues import (
    BODY_CUES,
    DEEP_HEAD,
    EQUALS,
    EXPLORE_HEAD,
    HEAD_CHARS,
    LIST_ITEM,
    NORMAL_HEAD,
    REFLECT_HEAD,
)

# The fixed bond order used by every structure table (matrices, .mol rows, JSON).
BONDS: tuple[str, ...] = ("explore", "deep", "reflect", "normal")
BOND_KINDS: dict[str, str] = {"explore": "vdw", "deep": "covalent", "reflect": "hydrogen", "normal": "plain"}
BOND_TITLES: dict[str, str] = {
    "explore": "Self-exploration",
    "deep": "Deep reasoning",
    "reflect": "Self-reflection",
    "normal": "Normal operation",
}


@runtime_checkable
class Labeler(Protocol):
    """Gives every step of a trace one bond name from `BONDS`."""

    @property
    def name(self) -> str:
        """The labeler's name ("cue", "llm"), recorded with extracted graphs."""
        ...

    def label(self, question: str | None, steps: Sequence[str]) -> list[str]:
        """One bond per step, in order; `question` may be None when the trace has none."""
        ...

    def label_many(self, traces: Sequence[tuple[str | None, Sequence[str]]]) -> list[list[str]]:
        """Label many traces at once (an engine-backed labeler batches all their steps)."""
        ...


class NextLabel(NamedTuple):
    """A step labeler's reading of a new step: its label, the walk with the step kept (`StepLabeler.then`), and
    how sure it is: its probability of each bond, in `BONDS` order."""

    label: str
    walk: object
    probs: tuple[float, ...]


@runtime_checkable
class StepLabeler(Protocol):
    """A labeler that can read a walk one new step at a time (a causal one): it keeps what it has read of a
    walk, so labelling a new step reads that step alone. The fidelity gate uses it where a labeler offers it
    (`step_labeler`); a walk's state is the labeler's own (opaque) object."""

    def walk(self, question: str | None) -> object:
        """The state of a walk with no steps yet."""
        ...

    def then(self, walk: object, step: str) -> object:
        """The state of `walk` with `step` kept at its end."""
        ...

    def label_next(self, items: Sequence[tuple[object, str]]) -> list[NextLabel]:
        """Per item (a walk, a new step): the step's label read after the walk, the walk with the step kept
        (what `then` gives) and the bonds' probabilities, in one pass for a round's attempts."""
        ...

    @property
    def reads_left_only(self) -> bool:
        """Whether this labeler reads a step and the steps before it only (else it has no walk state)."""
        ...


def step_labeler(labeler: Labeler | None) -> StepLabeler | None:
    """`labeler` when it can read a walk one new step at a time, else None."""
    if isinstance(labeler, StepLabeler) and labeler.reads_left_only:
        return labeler
    return None


@dataclass(frozen=True, slots=True)
class CueWeights:
    """How much each signal counts. Defaults were set on the `tune` half of the hand labels
    (tests/structure/fixtures/hand_labels.jsonl) by small grid searches, choosing values in the
    middle of flat regions. The `heldout` half was only scored: once before the last change
    (normal_head 1.6 -> 2.4, normal_body 0.35 -> 0.6, both chosen on `tune`) and once after.

    Attributes:
        reflect_head / explore_head / deep_head / normal_head: an opening cue for that bond.
        reflect_body / explore_body / deep_body / normal_body: per cue word in the body (capped).
        body_cap: the most body cue words that count, per bond.
        equation: per unit of equation density ("=" signs per 100 characters, capped at 4).
        recall: times the share of the step's trigrams already written two or more steps earlier.
        restate: times the share of the step's trigrams found in the question (restating is normal).
        numeric: times the digit ratio (digits over digits + letters): plain arithmetic is normal.
        first_step: the first step of a trace is usually a restatement (normal).
        inherit: bonus for the previous step's bond when this step has no opening cue.
    """

    reflect_head: float = 3.0
    explore_head: float = 2.6
    deep_head: float = 1.2
    normal_head: float = 2.4
    reflect_body: float = 0.45
    explore_body: float = 0.3
    deep_body: float = 0.22
    normal_body: float = 0.6
    body_cap: int = 6
    equation: float = 0.35
    numeric: float = 1.5
    recall: float = 5.0
    restate: float = 2.0
    first_step: float = 3.0
    inherit: float = 0.5


# Ties are broken towards the more common, less specific behaviour.
TIE_ORDER: tuple[str, ...] = ("deep", "normal", "reflect", "explore")


@dataclass(frozen=True, slots=True)
class StepFeatures:
    """The signals of one step that the cue labeler scores (kept for inspection and tests).

    Attributes:
        head: bond -> whether the step opens with one of its cues.
        body: bond -> how many of its cue words or phrases the step contains.
        equation_density: "=" (and ≡, ≈) per 100 characters.
        digit_ratio: digits over digits + letters.
        words: words of two or more letters.
        trigrams: lower-cased token trigrams (words, numbers, single symbols).
        tokens: the lower-cased tokens themselves (the learned labeler's text features).
    """

    head: dict[str, bool]
    body: dict[str, int]
    equation_density: float
    digit_ratio: float
    words: int
    trigrams: frozenset[tuple[str, ...]]
    tokens: tuple[str, ...] = ()


def step_features(text: str) -> StepFeatures:
    """Extract the cue signals of one step (one tokenisation feeds every body signal)."""
    head = text[:HEAD_CHARS]
    low = text.lower()
    tokens = _TOKEN.findall(low)
    body = _body_counts(tokens)
    body["normal"] += len(LIST_ITEM.findall(text))
    # map/filter keep the per-token work in C: labelling runs over millions of steps.
    runs = list(map(len, filter(str.isalpha, tokens)))
    letters, digits = sum(runs), sum(map(len, filter(str.isdigit, tokens)))
    return StepFeatures(
        head={
            "reflect": bool(REFLECT_HEAD.match(head)),
            "explore": bool(EXPLORE_HEAD.match(head)),
            "deep": bool(DEEP_HEAD.match(head)),
            "normal": bool(NORMAL_HEAD.match(head)),
        },
        body=body,
        equation_density=100.0 * len(EQUALS.findall(text)) / max(len(text), 1),
        digit_ratio=digits / (digits + letters) if digits + letters else 0.0,
        words=len(runs) - runs.count(1),
        trigrams=frozenset(zip(tokens, tokens[1:], tokens[2:], strict=False)),
        tokens=tuple(tokens),
    )


_TOKEN = re.compile(r"[a-z]+|\d+|[^\sa-z\d]")


def _tokens(text: str) -> list[str]:
    """Lower-cased tokens: runs of ASCII letters, runs of digits, and single other characters."""
    return _TOKEN.findall(text.lower())


def _split_cues(
    table: dict[str, tuple[str, ...]],
) -> tuple[dict[str, str], tuple[tuple[str, str, str], ...]]:
    """Single-word cues (word -> bond) and phrase cues (first token, " tok tok ", bond)."""
    singles: dict[str, str] = {}
    phrases: list[tuple[str, str, str]] = []
    for bond, entries in table.items():
        for entry in entries:
            toks = _tokens(entry)
            if len(toks) == 1:
                singles[toks[0]] = bond
            else:
                phrases.append((toks[0], " " + " ".join(toks) + " ", bond))
    return singles, tuple(phrases)


_SINGLE_CUES, _PHRASE_CUES = _split_cues(BODY_CUES)
_SINGLE_WORDS = frozenset(_SINGLE_CUES)


def _body_counts(tokens: Sequence[str]) -> dict[str, int]:
    """Cue words and phrases per bond. Phrases are counted on the space-joined tokens, so two
    back-to-back occurrences of one phrase count once; they are rare enough not to matter."""
    counts = dict.fromkeys(BONDS, 0)
    tally = Counter(tokens)
    for word in _SINGLE_WORDS.intersection(tally):
        counts[_SINGLE_CUES[word]] += tally[word]
    joined = " " + " ".join(tokens) + " "
    for first, phrase, bond in _PHRASE_CUES:
        if first in tally:  # most phrases cannot occur: skip the substring search
            counts[bond] += joined.count(phrase)
    return counts


@dataclass(frozen=True, slots=True)
class CueLabeler:
    """The `cue` labeler: discourse cues + position + simple features; deterministic and fast."""

    weights: CueWeights = field(default_factory=CueWeights)
    name: str = "cue"

    def label(self, question: str | None, steps: Sequence[str]) -> list[str]:
        labels: list[str] = []
        asked = step_features(question).trigrams if question else frozenset()
        features = [step_features(text) for text in steps]
        earlier: set[tuple[str, ...]] = set()  # trigrams of steps 0..i-2
        for index, f in enumerate(features):
            if index >= 2:
                earlier |= features[index - 2].trigrams
            own = f.trigrams
            # Repeating the question is restating (normal), not folding back onto earlier work.
            recall = len((own & earlier) - asked) / len(own) if own else 0.0
            restate = len(own & asked) / len(own) if own else 0.0
            labels.append(_argmax(self.score(f, index, labels[-1] if labels else None, recall, restate)))
        return labels

    def label_many(self, traces: Sequence[tuple[str | None, Sequence[str]]]) -> list[list[str]]:
        return [self.label(question, steps) for question, steps in traces]

    def scores(
        self, text: str, index: int, previous: str | None, recall: float = 0.0, restate: float = 0.0
    ) -> dict[str, float]:
        """Per-bond scores of one step (see `score`)."""
        return self.score(step_features(text), index, previous, recall, restate)

    def score(
        self, f: StepFeatures, index: int, previous: str | None, recall: float = 0.0, restate: float = 0.0
    ) -> dict[str, float]:
        """Per-bond scores of one step.

        Args:
            f: the step's features.
            index: its position in the trace (0 = first).
            previous: the bond given to the step before, None for the first step.
            recall: share of the step's token trigrams already written two or more steps earlier.
                Reflection folds back onto earlier work (re-deriving, re-checking), so it repeats
                earlier text; deep reasoning builds on the step just before, exploration moves away.
            restate: share of the step's token trigrams found in the question.
        """
        w = self.weights
        # Body cue counts are normalised by length so a long step does not win on volume alone.
        scale = 60.0 / max(f.words, 60)
        scores = {
            "reflect": w.reflect_head * f.head["reflect"]
            + w.reflect_body * _cap(f.body["reflect"], w) * scale
            + w.recall * recall,
            "explore": w.explore_head * f.head["explore"] + w.explore_body * _cap(f.body["explore"], w) * scale,
            "deep": w.deep_head * f.head["deep"]
            + w.deep_body * _cap(f.body["deep"], w) * scale
            + w.equation * min(f.equation_density, 4.0),
            "normal": w.normal_head * f.head["normal"]
            + w.normal_body * _cap(f.body["normal"], w) * scale
            + w.numeric * f.digit_ratio
            + w.restate * restate,
        }
        if index == 0:
            scores["normal"] += w.first_step
        # A check or a new branch announces itself; a step that opens with neither continues the
        # behaviour of the step before (a verification pass runs over several paragraphs).
        if previous is not None and not (f.head["reflect"] or f.head["explore"]):
            scores[previous] += w.inherit
        return scores


def _cap(count: int, weights: CueWeights) -> int:
    return min(count, weights.body_cap)


def _argmax(scores: dict[str, float]) -> str:
    best = max(scores.values())
    return next(bond for bond in TIE_ORDER if scores[bond] == best)


DEFAULT_LABELER = "learned"
# The CLI's and the spec's copies of this list (structure/cli.py LABELER_CHOICES, spec.FidelityLabeler) change
# with it (tested).
LEARNED_LABELERS: tuple[str, ...] = ("learned", "learned-blind", "learned-causal")  # shipped weights each
LM_LABELER = "learned-lm"  # `learned` plus a probe over SmolLM2's reading (structure/lm_probe.py); opt-in, ~11 steps/s
LM_CAUSAL_LABELER = "learned-lm-causal"  # the same over `learned-causal`: a step labeler the fidelity gate can use
LM_LABELERS: dict[str, str] = {LM_LABELER: "learned", LM_CAUSAL_LABELER: "learned-causal"}  # name: its base
LABELERS: tuple[str, ...] = (*LEARNED_LABELERS, *LM_LABELERS, "cue", "llm")


def labeler_identity(name: str) -> str:
    """What a CPU labeler's judgements depend on: its name and, for the learned ones, a digest of the shipped
    weights (retrained weights label the same text differently); the cue labeler's rules are molspec's code."""
    if name in (*LEARNED_LABELERS, *LM_LABELERS):
        from molspec.structure.learned import weights_path

        files = (LM_LABELERS[name], LM_LABELER) if name in LM_LABELERS else (name,)
        digest = hashlib.sha256(b"".join(weights_path(f).read_bytes() for f in files)).hexdigest()[:12]
        return f"{name} {digest}"
    from molspec.version import __version__

    return f"{name} (molspec {__version__})"


def get_labeler(name: str = DEFAULT_LABELER, **options: object) -> Labeler:
    """A labeler by name: "learned" (the default; shipped weights, or `model=`), "learned-blind" (the
    same model trained and applied without steps' opening discourse markers), "learned-causal" (reads only
    the question and the steps before each step: for labelling a step before the next exists), "learned-lm"
    (`learned` plus a probe over the built-in SmolLM2's reading: better, ~11 steps/s on a CPU; `lm_probe`), "cue"
    (no options) or "llm" (needs `engine=`; see `llm_label.LLMLabeler`)."""
    if name == "cue":
        return CueLabeler()
    if name in LEARNED_LABELERS:
        from molspec.structure.learned import LearnedLabeler

        return LearnedLabeler(name=name, **options)  # type: ignore[arg-type]
    if name in LM_LABELERS:
        from molspec.structure.lm_probe import LmProbeLabeler

        return LmProbeLabeler(name=name, **options)  # type: ignore[arg-type]
    if name == "llm":
        from molspec.structure.llm_label import LLMLabeler

        return LLMLabeler(**options)  # type: ignore[arg-type]
    raise ValueError(f"unknown labeler '{name}'; choose one of: {', '.join(LABELERS)}")
