"""What the learned labeler reads of each step: dense signals plus sparse text keys.

Dense signals (`DENSE`, fixed order): the cue labeler's per-bond scores and its label, the opening
and body cue counts, equation density, digit ratio, length, position in the trace, and how much the
step repeats the question, the step just before, the step just after, and steps two or more back
(a reflection folds back onto earlier work; a derivation builds on the step just before).

Sparse keys (tuples, looked up in the model's vocabulary; unseen keys are ignored):
  ("o", w) / ("o2", w1, w2) / ("o3", w1, w2, w3)  the opening tokens;
  ("c", abc)                                     character trigrams of the opening characters;
  the step's distinct tokens (presence; a vocabulary of their own);
  ("p", w) / ("p2", ..) / ("n", w) / ("n2", ..)   the previous / next step's opening;
  ("len", k) / ("cue", prev, this)                a length bucket and the cue labels' transition.
Body keys are weighted 1/sqrt(their count), so a paragraph and a sentence weigh the same in total:
the same model reads paragraph-sized and sentence-sized steps.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from molspec.structure.label import BONDS, CueLabeler, StepFeatures, step_features

Key = tuple[str, ...]
OPEN_CHARS = 24  # the opening characters that give character trigrams
DENSE: tuple[str, ...] = (
    ("bias",)
    + tuple(f"cue_score_{b}" for b in BONDS)
    + tuple(f"cue_label_{b}" for b in BONDS)
    + tuple(f"head_{b}" for b in BONDS)
    + tuple(f"body_{b}" for b in BONDS)
    + ("equations", "digits", "log_chars", "recall", "restate", "overlap_prev", "overlap_next")
    + ("first", "last", "relative_position")
    + ("numbers_earlier", "numbers_prev", "numbers_new", "words_earlier", "words_prev", "asks")
    + tuple(f"prev_cue_{b}" for b in BONDS)
    + tuple(f"next_cue_{b}" for b in BONDS)
)
_CUE = CueLabeler()
# Discourse markers at the start of a step ("Wait,", "Alternatively,", "Let me check:"). bench/labelers.py
# scores held-out traces with them removed (`strip_opener`): keywords are not the structure.
OPENER = re.compile(
    r"^\W*(?:(?:wait|hmm+|alternatively|but|so|okay|ok|actually|hold on|therefore|thus|hence|however|also|"
    r"maybe|perhaps|now|then|first|next|finally|oh|no|yes|right|alright|"
    r"let me (?:check|verify|double-check|recheck|see))\b[,.:;!]*\s*)+",
    re.IGNORECASE,
)


def strip_opener(text: str) -> str:
    """`text` without its opening discourse markers (unchanged if that would leave nothing)."""
    return OPENER.sub("", text, count=1) or text


@dataclass(frozen=True, slots=True)
class StepInput:
    """One step as the model reads it.

    Attributes:
        dense: `DENSE` values, in order.
        keys: opening, context, length and cue-transition keys (weight 1 each).
        words: the step's distinct tokens. Each weighs `body_weight`, 1/sqrt(their number), so long
            and short steps weigh the same in total.
    """

    dense: tuple[float, ...]
    keys: tuple[Key, ...]
    words: frozenset[str]
    body_weight: float


def trace_inputs(question: str | None, steps: Sequence[str]) -> list[StepInput]:
    """The model input of every step of one trace (each step sees its neighbours)."""
    feats = [step_features(text) for text in steps]
    asked = step_features(question).trigrams if question else frozenset()
    cue_labels, cue_scores, recalls, restates = _cue_pass(feats, asked)
    openings = [_opening(f.tokens) for f in feats]
    words = [frozenset(f.tokens) for f in feats]
    recurrence = _recurrence(words)
    n, last = len(steps), max(len(steps) - 1, 1)
    out: list[StepInput] = []
    for i, (text, f) in enumerate(zip(steps, feats, strict=True)):
        own = f.trigrams
        s, head, body, scale = cue_scores[i], f.head, f.body, 60.0 / max(f.words, 60)
        dense: list[float] = [1.0, s["explore"] / 5.0, s["deep"] / 5.0, s["reflect"] / 5.0, s["normal"] / 5.0]
        dense += _ONE_HOT[cue_labels[i]]
        dense += [float(head["explore"]), float(head["deep"]), float(head["reflect"]), float(head["normal"])]
        dense += [min(body[b], 6) * scale for b in BONDS]
        dense += [min(f.equation_density, 4.0) / 4.0, f.digit_ratio, math.log1p(len(text)) / 8.0]
        dense += [recalls[i], restates[i]]
        dense += [
            _share(own, feats[i - 1].trigrams) if i else 0.0,
            _share(own, feats[i + 1].trigrams) if i + 1 < n else 0.0,
        ]
        dense += [float(i == 0), float(i == n - 1), i / last]
        dense += recurrence[i]
        dense.append(float(text.rstrip().endswith("?")))
        dense += _ONE_HOT[cue_labels[i - 1]] if i else _NONE
        dense += _ONE_HOT[cue_labels[i + 1]] if i + 1 < n else _NONE
        size = len(words[i])
        out.append(StepInput(tuple(dense), _keys(text, openings, cue_labels, i), words[i], size**-0.5 if size else 0.0))
    return out


_NONE = (0.0,) * len(BONDS)
_ONE_HOT = {b: tuple(float(b == c) for c in BONDS) for b in BONDS}


def _recurrence(words: Sequence[frozenset[str]]) -> list[tuple[float, ...]]:
    """Per step: shares of its numbers seen two or more steps back, in the step before, and never
    before; shares of its content words (4+ letters) seen two or more steps back and in the step before.
    A check re-uses earlier numbers; a derivation makes new ones from the step before."""
    nums = [{t for t in w if t.isdigit()} for w in words]
    content = [{t for t in w if len(t) > 3 and t.isalpha()} for w in words]
    seen_n: set[str] = set()
    seen_w: set[str] = set()
    out: list[tuple[float, ...]] = []
    for i in range(len(words)):
        prev_n, prev_w = (nums[i - 1], content[i - 1]) if i else (set(), set())
        if i >= 2:
            seen_n |= nums[i - 2]
            seen_w |= content[i - 2]
        own_n, own_w = nums[i], content[i]
        k, m = max(len(own_n), 1), max(len(own_w), 1)
        out.append(
            (
                len(own_n & seen_n) / k,
                len(own_n & prev_n) / k,
                len(own_n - seen_n - prev_n) / k if own_n else 0.0,
                len(own_w & seen_w) / m,
                len(own_w & prev_w) / m,
            )
        )
    return out


def _share(own: frozenset[Key], other: frozenset[Key]) -> float:
    return len(own & other) / len(own) if own and other else 0.0


def _cue_pass(
    feats: Sequence[StepFeatures], asked: frozenset[Key]
) -> tuple[list[str], list[dict[str, float]], list[float], list[float]]:
    """The cue labeler's labels and scores, with the recall and restate signals it uses
    (the same loop as `CueLabeler.label`, keeping what it computes on the way)."""
    labels: list[str] = []
    scores: list[dict[str, float]] = []
    recalls: list[float] = []
    restates: list[float] = []
    earlier: set[Key] = set()
    for index, f in enumerate(feats):
        if index >= 2:
            earlier |= feats[index - 2].trigrams
        own = f.trigrams
        recall = len((own & earlier) - asked) / len(own) if own else 0.0
        restate = len(own & asked) / len(own) if own else 0.0
        s = _CUE.score(f, index, labels[-1] if labels else None, recall, restate)
        labels.append(max(BONDS, key=lambda b: (s[b], -_TIE[b])))
        scores.append(s)
        recalls.append(recall)
        restates.append(restate)
    return labels, scores, recalls, restates


_TIE = {b: i for i, b in enumerate(("deep", "normal", "reflect", "explore"))}  # label.TIE_ORDER


def _opening(tokens: Sequence[str]) -> tuple[str, ...]:
    """The first three tokens after any leading markup (`#`, `*`, `-`, quotes)."""
    start = 0
    while start < len(tokens) and start < 4 and not tokens[start][0].isalnum():
        start += 1
    return tuple(tokens[start : start + 3])


def _keys(text: str, openings: Sequence[tuple[str, ...]], cue: Sequence[str], i: int) -> tuple[Key, ...]:
    o = openings[i]
    keys: list[Key] = [("o", *o[:1]), ("o2", *o[:2]), ("o3", *o)]
    head = text[:OPEN_CHARS].lower()
    keys += [("c", head[j : j + 3]) for j in range(max(len(head) - 2, 0))]
    if i:
        p = openings[i - 1]
        keys += [("p", *p[:1]), ("p2", *p[:2]), ("cue", cue[i - 1], cue[i])]
    else:
        keys.append(("cue", "start", cue[i]))
    if i + 1 < len(openings):
        nx = openings[i + 1]
        keys += [("n", *nx[:1]), ("n2", *nx[:2])]
    keys.append(("len", str(min(int(math.log2(len(text) + 1)), 12))))
    return tuple(keys)
