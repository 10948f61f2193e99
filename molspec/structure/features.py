"""What the learned labeler reads of each step: dense signals plus sparse text keys.

Dense signals (`DENSE`, fixed order): the opening and body cue counts of the step (and the opening
cues of the steps just before and after), equation density, digit ratio, length, position in the
trace, and how much the step repeats the question, the text just before, the text just after, and
earlier work (a reflection folds back onto earlier work; a derivation builds on what came just before).
"Just before" and "earlier" are measured in characters, so sentence-sized and paragraph-sized steps
look back equally far. The cue labeler's scores and labels are not inputs: they were tuned on
paragraphs of two teachers and read most short equation lines as checks (without them: held-out
sentences 0.53 -> 0.55 macro-F1, paragraphs 0.68 -> 0.70, cross-validation on the train split unchanged).

Sparse keys (tuples, looked up in the model's vocabulary; unseen keys are ignored):
  ("o", w) / ("o2", w1, w2) / ("o3", w1, w2, w3)  the opening tokens;
  ("c", abc)                                     character trigrams of the opening characters;
  the step's distinct tokens (presence; a vocabulary of their own);
  ("p", w) / ("p2", ..) / ("n", w) / ("n2", ..)   the previous / next step's opening;
  ("len", k)                                     a length bucket.
Body keys are weighted 1/sqrt(their count), so a paragraph and a sentence weigh the same in total:
the same model reads paragraph-sized and sentence-sized steps.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from molspec.structure.label import BONDS, StepFeatures, step_features

Key = tuple[str, ...]
OPEN_CHARS = 24  # the opening characters that give character trigrams
DENSE: tuple[str, ...] = (
    ("bias",)
    + tuple(f"head_{b}" for b in BONDS)
    + tuple(f"body_{b}" for b in BONDS)
    + ("equations", "digits", "log_chars", "recall", "restate", "overlap_prev", "overlap_next")
    + ("first", "last", "relative_position")
    + ("numbers_earlier", "numbers_prev", "numbers_new", "words_earlier", "words_prev", "asks")
    + tuple(f"prev_head_{b}" for b in BONDS)
    + tuple(f"next_head_{b}" for b in BONDS)
)
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
        keys: opening, context and length keys (weight 1 each).
        words: the step's distinct tokens, sorted. Each weighs `body_weight`, 1/sqrt(their number), so long
            and short steps weigh the same in total. Sorted, not a set: a set's order follows the process's
            string hashing, and the order of the weights summed per step then moved scores by an ulp between
            processes (enough to change a GRU weight trained on them by one float16 step).
    """

    dense: tuple[float, ...]
    keys: tuple[Key, ...]
    words: tuple[str, ...]
    body_weight: float


def trace_inputs(question: str | None, steps: Sequence[str]) -> list[StepInput]:
    """The model input of every step of one trace (each step sees its neighbours)."""
    feats = [step_features(text) for text in steps]
    asked = step_features(question).trigrams if question else frozenset()
    back = _recent_starts([len(t) for t in steps])
    ahead = _recent_ends([len(t) for t in steps])
    recalls, restates = _recall_pass(feats, asked, back)
    heads = [_head(f) for f in feats]
    openings = [_opening(f.tokens) for f in feats]
    words = [frozenset(f.tokens) for f in feats]
    recurrence = _recurrence(words, back)
    n, last = len(steps), max(len(steps) - 1, 1)
    out: list[StepInput] = []
    for i, (text, f) in enumerate(zip(steps, feats, strict=True)):
        own = f.trigrams
        around = (
            recalls[i], restates[i],
            _share(own, _union(feats, back[i], i)) if i else 0.0,
            _share(own, _union(feats, i + 1, ahead[i])) if i + 1 < n else 0.0,
            float(i == 0), float(i == n - 1), i / last,
        )  # fmt: skip
        dense = _dense(text, f, heads[i], around, recurrence[i], heads[i - 1] if i else _NONE,
                       heads[i + 1] if i + 1 < n else _NONE)
        out.append(_input(text, dense, _keys(text, openings, i), words[i]))
    return out


@dataclass(frozen=True)
class Before:
    """The question and the steps before a new step, as a causal model reads them (`next_input`). A walk that
    grows one step at a time keeps one (`then`), so labelling each new attempt reads only the new step."""

    asked: frozenset[Key] = frozenset()
    feats: tuple[StepFeatures, ...] = ()
    lengths: tuple[int, ...] = ()  # the steps' lengths in characters
    numbers: tuple[set[str], ...] = ()  # per step, its numbers (`_numbers`), made once
    content: tuple[set[str], ...] = ()  # per step, its content words (`_content`), made once

    @staticmethod
    def of(question: str | None) -> Before:
        return Before(step_features(question).trigrams if question else frozenset())

    def then(self, text: str, f: StepFeatures | None = None) -> Before:
        """This, with one more step at the end (`f`: its features, when the caller has them)."""
        f = f or step_features(text)
        words = [frozenset(f.tokens)]
        return Before(self.asked, (*self.feats, f), (*self.lengths, len(text)), (*self.numbers, *_numbers(words)),
                      (*self.content, *_content(words)))

    @cached_property
    def _context(self) -> tuple[frozenset[Key], frozenset[Key], tuple[set[str], set[str], set[str], set[str]]]:
        """(trigrams of earlier work, trigrams of the recent context, the numbers and content words of both)."""
        feats, i, nums, content = self.feats, len(self.feats), self.numbers, self.content
        start = _recent_start(self.lengths, i)
        return (
            _union(feats, 0, start) if start else frozenset(),
            _union(feats, start, i) if i else frozenset(),
            (set().union(*nums[:start]), set().union(*content[:start]),
             set().union(*nums[start:i]), set().union(*content[start:i])),
        )  # fmt: skip


def next_input(before: Before, text: str, f: StepFeatures | None = None) -> StepInput:
    """`left_only(trace_inputs(question, steps + [text]))[-1]` read from `before` (the question and `steps`)
    without reading the steps again: what a causal model reads of a new step."""
    f = f or step_features(text)
    i, own = len(before.feats), f.trigrams
    earlier, recent, (seen_n, seen_w, prev_n, prev_w) = before._context
    around = (
        len((own & earlier) - before.asked) / len(own) if own else 0.0,
        len(own & before.asked) / len(own) if own else 0.0,
        _share(own, recent) if i else 0.0, 0.0, float(i == 0), 0.0, 0.0,
    )  # fmt: skip
    words = frozenset(f.tokens)
    recurrence = _recurrence_of(_numbers([words])[0], _content([words])[0], seen_n, seen_w, prev_n, prev_w)
    dense = _dense(text, f, _head(f), around, recurrence, _head(before.feats[-1]) if i else _NONE, _NONE)
    openings = [_opening(before.feats[-1].tokens), _opening(f.tokens)] if i else [_opening(f.tokens)]
    return _input(text, dense, _keys(text, openings, min(i, 1)), words)


Floats = tuple[float, ...]


def _dense(text: str, f: StepFeatures, head: Floats, around: Floats, recurrence: Floats, prev_head: Floats,
           next_head: Floats) -> Floats:
    """One step's `DENSE` values; `around`: recall, restate, overlap with the steps before and after, first,
    last, relative position."""
    body, scale = f.body, 60.0 / max(f.words, 60)
    dense: list[float] = [1.0, *head]
    dense += [min(body[b], 6) * scale for b in BONDS]
    dense += [min(f.equation_density, 4.0) / 4.0, f.digit_ratio, math.log1p(len(text)) / 8.0]
    dense += around
    dense += recurrence
    dense.append(float(text.rstrip().endswith("?")))
    dense += prev_head
    dense += next_head
    return tuple(dense)


def _input(text: str, dense: tuple[float, ...], keys: tuple[Key, ...], words: frozenset[str]) -> StepInput:
    size = len(words)
    return StepInput(dense, keys, tuple(sorted(words)), size**-0.5 if size else 0.0)


def _head(f: StepFeatures) -> tuple[float, ...]:
    return tuple(float(f.head[b]) for b in BONDS)


_NONE = (0.0,) * len(BONDS)

# What a causal model ("learned-causal") may not read: anything of the steps after a step, and where the
# trace ends. The fidelity gate labels each new step before any later step exists.
RIGHT_DENSE: frozenset[int] = frozenset(
    i
    for i, name in enumerate(DENSE)
    if name in ("overlap_next", "last", "relative_position") or name.startswith("next_")
)
_RIGHT_KEYS = ("n", "n2")


def left_only(inputs: Sequence[StepInput]) -> list[StepInput]:
    """`inputs` with every right-side signal zeroed and the next step's opening keys dropped, so each step's
    input depends on it and the steps before it only."""
    return [
        StepInput(
            tuple(0.0 if j in RIGHT_DENSE else v for j, v in enumerate(s.dense)),
            tuple(k for k in s.keys if k[0] not in _RIGHT_KEYS),
            s.words,
            s.body_weight,
        )
        for s in inputs
    ]


# "The step before" and "earlier" are measured in characters, not steps, so that a sentence-sized step
# looks back as far as a paragraph-sized one: the steps just before a step, back to RECENT_CHARS
# characters (at least one step), are its recent context; everything before them is earlier work.
# (Counted in steps, a derivation cut into sentences re-uses "earlier" numbers all the time and reads
# like a check.)
RECENT_CHARS = 300


def _recent_starts(lengths: Sequence[int]) -> list[int]:
    """Per step i: the index where its recent context starts (i - 1 or further back)."""
    return [_recent_start(lengths, i) for i in range(len(lengths))]


def _recent_start(lengths: Sequence[int], i: int) -> int:
    """Where step i's recent context starts: it reads only the lengths of the steps before i."""
    j, total = i - 1, 0
    while j >= 0:
        total += lengths[j]
        if total >= RECENT_CHARS:
            break
        j -= 1
    return max(j, 0) if i else 0


def _recent_ends(lengths: Sequence[int]) -> list[int]:
    """Per step i: the end (exclusive) of the steps just after it, up to RECENT_CHARS characters."""
    n = len(lengths)
    out: list[int] = []
    for i in range(n):
        j, total = i + 1, 0
        while j < n:
            total += lengths[j]
            j += 1
            if total >= RECENT_CHARS:
                break
        out.append(j)
    return out


def _union(feats: Sequence[StepFeatures], start: int, end: int) -> frozenset[Key]:
    if end - start == 1:
        return feats[start].trigrams
    return frozenset().union(*(f.trigrams for f in feats[start:end]))


def _recurrence(words: Sequence[frozenset[str]], back: Sequence[int]) -> list[tuple[float, ...]]:
    """Per step: `_recurrence_of` its numbers and content words against the steps before its recent context
    (earlier work) and in it."""
    nums, content = _numbers(words), _content(words)
    seen_n: set[str] = set()
    seen_w: set[str] = set()
    done = 0  # steps before `done` are in seen_n / seen_w
    out: list[tuple[float, ...]] = []
    for i in range(len(words)):
        start = back[i]
        while done < start:
            seen_n |= nums[done]
            seen_w |= content[done]
            done += 1
        prev_n = set().union(*nums[start:i]) if i else set()
        prev_w = set().union(*content[start:i]) if i else set()
        out.append(_recurrence_of(nums[i], content[i], seen_n, seen_w, prev_n, prev_w))
    return out


def _recurrence_of(own_n: set[str], own_w: set[str], seen_n: set[str], seen_w: set[str], prev_n: set[str],
                   prev_w: set[str]) -> tuple[float, ...]:
    """Shares of a step's numbers seen earlier (before its recent context), in its recent context, and never
    before; shares of its content words (4+ letters) seen earlier and in its recent context. A check re-uses
    earlier numbers; a derivation makes new ones from what is just before."""
    k, m = max(len(own_n), 1), max(len(own_w), 1)
    return (
        len(own_n & seen_n) / k,
        len(own_n & prev_n) / k,
        len(own_n - seen_n - prev_n) / k if own_n else 0.0,
        len(own_w & seen_w) / m,
        len(own_w & prev_w) / m,
    )


def _numbers(words: Sequence[frozenset[str]]) -> list[set[str]]:
    return [{t for t in w if t.isdigit()} for w in words]


def _content(words: Sequence[frozenset[str]]) -> list[set[str]]:
    return [{t for t in w if len(t) > 3 and t.isalpha()} for w in words]


def _share(own: frozenset[Key], other: frozenset[Key]) -> float:
    return len(own & other) / len(own) if own and other else 0.0


def _recall_pass(
    feats: Sequence[StepFeatures], asked: frozenset[Key], back: Sequence[int]
) -> tuple[list[float], list[float]]:
    """Per step: the share of its trigrams seen in earlier work (before its recent context) but not in
    the question, and the share seen in the question (the cue labeler's recall and restate signals)."""
    recalls: list[float] = []
    restates: list[float] = []
    earlier: set[Key] = set()
    done = 0
    for index, f in enumerate(feats):
        while done < back[index]:
            earlier |= feats[done].trigrams
            done += 1
        own = f.trigrams
        recalls.append(len((own & earlier) - asked) / len(own) if own else 0.0)
        restates.append(len(own & asked) / len(own) if own else 0.0)
    return recalls, restates


def _opening(tokens: Sequence[str]) -> tuple[str, ...]:
    """The first three tokens after any leading markup (`#`, `*`, `-`, quotes)."""
    start = 0
    while start < len(tokens) and start < 4 and not tokens[start][0].isalnum():
        start += 1
    return tuple(tokens[start : start + 3])


def _keys(text: str, openings: Sequence[tuple[str, ...]], i: int) -> tuple[Key, ...]:
    o = openings[i]
    keys: list[Key] = [("o", *o[:1]), ("o2", *o[:2]), ("o3", *o)]
    head = text[:OPEN_CHARS].lower()
    keys += [("c", head[j : j + 3]) for j in range(max(len(head) - 2, 0))]
    if i:
        p = openings[i - 1]
        keys += [("p", *p[:1]), ("p2", *p[:2])]
    else:
        keys.append(("start",))
    if i + 1 < len(openings):
        nx = openings[i + 1]
        keys += [("n", *nx[:1]), ("n2", *nx[:2])]
    keys.append(("len", str(min(int(math.log2(len(text) + 1)), 12))))
    return tuple(keys)
