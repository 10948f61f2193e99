"""Split thinking text into reasoning steps, keeping each step's character offsets.

The rule (every threshold and word list lives in `SegmentConfig`):

1. Split on blank lines: each paragraph is a fragment (leading/trailing whitespace trimmed).
2. A fragment longer than `max_chars` is cut at sentence boundaries (after `.`, `?`, `!` or at a
   line break). The cut goes just before a strong cue ("Wait", "But", "Alternatively", "Hmm",
   "Let me check", ...) if there is one in range, else before a soft opener ("Now", "Next",
   "Let's", ...), else at the last boundary within `max_chars`. Neither side of a cut is shorter
   than `min_chars`; a paragraph with no usable boundary stays whole.
3. Fragments are grouped into steps left to right. For each fragment, in order of precedence:
   - the current step ends with ":" -> join it (it introduces what follows);
   - the fragment opens with a strong cue -> start a new step. If the current step is shorter
     than `min_chars` it is too small to stand alone: a cue-opened one ("Wait.") keeps the
     fragment, any other folds back into the step before it;
   - the current step is shorter than `min_chars` -> join it;
   - the fragment is at least `min_chars` long, or opens with a soft opener -> new step;
   - otherwise (a short tail such as an equation line) -> join, unless the step would pass
     `max_chars`, so long derivations of short lines still break into steps.
   A last step shorter than `min_chars` ("Final answer: 33") joins the step before it.

Every step is a half-open span: `text[step.start:step.end] == step.text`; spans never overlap,
are in order, and together cover all non-whitespace characters of the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

# Strong cues: a change of behaviour (check, doubt, new angle). Matched case-insensitively at a
# sentence or paragraph start; a cue ending in a letter must end a word ("but", not "button").
DEFAULT_CUES: tuple[str, ...] = (
    "wait",
    "but",
    "however",
    "alternatively",
    "on the other hand",
    "hmm",
    "hold on",
    "let me check",
    "let me verify",
    "let me double-check",
    "let me re-",
    "let me recheck",
    "let me recalculate",
    "let me recompute",
    "double-check",
    "maybe",
    "perhaps",
    "what if",
    "actually",
    "oh",
    "no,",
)

# Soft openers: the start of a new sub-step in a plan ("Now, ...", "Next, ..."). They start a new
# step only once the current one has reached min_chars, so routine derivations of many short
# lines break at their natural joints instead of at max_chars.
DEFAULT_OPENERS: tuple[str, ...] = (
    "now",
    "next",
    "then",
    "first",
    "second",
    "third",
    "finally",
    "similarly",
    "also",
    "another",
    "additionally",
    "okay",
    "alright",
    "let's",
    "let me",
    "in conclusion",
    "to summarize",
    "so the answer",
    "therefore, the answer",
)

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
# A sentence boundary: whitespace after terminal punctuation (optionally closing quote/bracket),
# or any line break. The boundary offset is where the next sentence starts.
_SENTENCE_BOUNDARY = re.compile(r"(?:(?<=[.!?])[\"')\]]*[ \t]+|[ \t]*\n\s*)(?=\S)")


@dataclass(frozen=True, slots=True)
class SegmentConfig:
    """How thinking text is cut into steps.

    Attributes:
        min_chars: fragments shorter than this are merged into a neighbour (see the module doc).
        max_chars: paragraphs longer than this are cut at sentence boundaries; joins stop here.
        cues: lower-case strong cues (a change of behaviour); a fragment opening with one always
            starts a new step, and cutting a long paragraph before one is preferred.
        openers: lower-case soft openers (a new sub-step); a fragment opening with one starts a
            new step once the current step is at least `min_chars` long.
    """

    min_chars: int = 120
    max_chars: int = 900
    cues: tuple[str, ...] = DEFAULT_CUES
    openers: tuple[str, ...] = DEFAULT_OPENERS
    _cue_re: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _opener_re: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.min_chars < 0:
            raise ValueError(f"SegmentConfig.min_chars must be >= 0, got {self.min_chars}")
        if self.max_chars <= self.min_chars:
            raise ValueError(
                f"SegmentConfig.max_chars ({self.max_chars}) must be greater than min_chars ({self.min_chars})"
            )
        # frozen dataclass: the compiled patterns are derived state, set once here
        object.__setattr__(self, "_cue_re", _opening_pattern(self.cues))
        object.__setattr__(self, "_opener_re", _opening_pattern(self.openers))

    def opens_with_cue(self, text: str, pos: int = 0) -> bool:
        """Whether a strong cue starts at `pos` (leading punctuation such as '**' is skipped)."""
        return self._cue_re.match(text, pos) is not None

    def opens_with_soft(self, text: str, pos: int = 0) -> bool:
        """Whether a soft opener starts at `pos`."""
        return self._opener_re.match(text, pos) is not None


def _opening_pattern(words: Sequence[str]) -> re.Pattern[str]:
    """Match any of `words` at a position, after optional markup such as '**' or '- '."""
    if not words:
        return re.compile(r"(?!)")

    # A word ending in a letter must end there ("but", not "button"); "let me re-" is a prefix.
    def one(word: str) -> str:
        return re.escape(word) + (r"(?![a-z'])" if word[-1:].isalpha() else "")

    alternatives = "|".join(one(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"[\W_]*(?:{alternatives})", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Step:
    """One reasoning step: `text == source[start:end]`."""

    start: int
    end: int
    text: str


def segment(text: str, config: SegmentConfig | None = None) -> list[Step]:
    """Cut `text` into steps by the rule in the module docstring."""
    cfg = config or SegmentConfig()
    spans = [piece for para in _paragraphs(text) for piece in _split_long(text, para, cfg)]
    return [Step(a, b, text[a:b]) for a, b in _group(text, spans, cfg)]


def segment_spans(text: str, config: SegmentConfig | None = None) -> list[tuple[int, int]]:
    """Only the (start, end) offsets of `segment(text, config)`."""
    return [(s.start, s.end) for s in segment(text, config)]


def step_texts(text: str, config: SegmentConfig | None = None) -> list[str]:
    """Only the texts of `segment(text, config)`."""
    return [s.text for s in segment(text, config)]


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """The sentences of `text[start:end]` as offsets into `text`: cut after `.`, `?`, `!` (and a closing
    quote or bracket) followed by a space, and at line breaks; whitespace is trimmed. Used for
    sentence-sized steps (sentence units of the hand labels)."""
    stop = len(text) if end is None else end
    cuts = [start] + [m.end() + start for m in _SENTENCE_BOUNDARY.finditer(text[start:stop])] + [stop]
    return [span for a, b in zip(cuts, cuts[1:], strict=False) for span in _trimmed(text, a, b)]


def _paragraphs(text: str) -> Iterator[tuple[int, int]]:
    start = 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        yield from _trimmed(text, start, match.start())
        start = match.end()
    yield from _trimmed(text, start, len(text))


def _trimmed(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        yield (start, end)


def _split_long(text: str, span: tuple[int, int], cfg: SegmentConfig) -> Iterator[tuple[int, int]]:
    start, end = span
    if end - start <= cfg.max_chars:
        yield span
        return
    boundaries = [m.end() + start for m in _SENTENCE_BOUNDARY.finditer(text[start:end])]
    cur = start
    while end - cur > cfg.max_chars:
        cut = _choose_cut(text, boundaries, cur, end, cfg)
        if cut is None:
            break
        yield from _trimmed(text, cur, cut)
        cur = cut
    yield from _trimmed(text, cur, end)


def _choose_cut(text: str, boundaries: Sequence[int], cur: int, end: int, cfg: SegmentConfig) -> int | None:
    # Cuts leave both sides at least min_chars long, and always move forward (min_chars may be 0).
    usable = [b for b in boundaries if cur + max(cfg.min_chars, 1) <= b <= end - cfg.min_chars]
    window = [b for b in usable if b <= cur + cfg.max_chars]
    for prefers in (cfg.opens_with_cue, cfg.opens_with_soft):
        preferred = [b for b in window if prefers(text, b)]
        if preferred:
            return preferred[-1]
    if window:
        return window[-1]
    later = [b for b in usable if b > cur + cfg.max_chars]
    return later[0] if later else None  # a sentence longer than max_chars: cut as soon as possible


def _group(text: str, spans: Sequence[tuple[int, int]], cfg: SegmentConfig) -> list[tuple[int, int]]:
    steps: list[tuple[int, int]] = []
    for frag in spans:
        if not steps:
            steps.append(frag)
            continue
        action = _action(text, steps, frag, cfg)
        if action == "join":
            steps[-1] = (steps[-1][0], frag[1])
        elif action == "fold_back":  # the short step before a cue closes the step before it
            short = steps.pop()
            steps[-1] = (steps[-1][0], short[1])
            steps.append(frag)
        else:
            steps.append(frag)
    if len(steps) > 1 and steps[-1][1] - steps[-1][0] < cfg.min_chars:
        last = steps.pop()  # a short closing line ("Final answer: 33") ends the last step
        steps[-1] = (steps[-1][0], last[1])
    return steps


def _action(text: str, steps: Sequence[tuple[int, int]], frag: tuple[int, int], cfg: SegmentConfig) -> str:
    """What to do with `frag`: "join" the current step, "new" step, or "fold_back" then new."""
    cur = steps[-1]
    cur_len, frag_len = cur[1] - cur[0], frag[1] - frag[0]
    if text[cur[1] - 1] == ":":
        return "join"  # "So now we have:" belongs with what it introduces
    if cfg.opens_with_cue(text, frag[0]):
        if cur_len >= cfg.min_chars:
            return "new"
        # A short step that itself opens with a cue ("Wait.") keeps what follows; otherwise it is
        # the tail of the step before and folds back into it.
        if len(steps) == 1 or cfg.opens_with_cue(text, cur[0]):
            return "join"
        return "fold_back"
    if cur_len < cfg.min_chars:
        return "join"
    if frag_len >= cfg.min_chars or cfg.opens_with_soft(text, frag[0]):
        return "new"
    return "join" if frag[1] - cur[0] <= cfg.max_chars else "new"
