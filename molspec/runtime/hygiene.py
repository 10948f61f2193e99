"""Step hygiene: what is wrong with a completion's text, on every build and every engine, before any labeler reads it.

A step cut by `max_tokens` (or ending on a colon that announces what never came) is trimmed back to its last
complete sentence, or flagged `cut`; a step whose words come mostly from the prompt frame or the question is
`echo` (its copied sentences are dropped when enough of its own remain); one that repeats an earlier step of
its walk is `duplicate`; an empty one is `empty`; words that start a new reply after a lead are `restart`.
The fidelity gate (`runtime.fidelity`) asks again for any of these.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

SENTENCE_END = re.compile(r"""[.!?](?:["')\]]|\$\$?)?(?=\s|$)|\n""")
WORD = re.compile(r"\w+")
NOT_WORD = re.compile(r"\W+")  # the complement of WORD: what separates its words
OPENING_WORD = re.compile(r"[A-Za-z]+")
ECHO_SHARE = 0.5  # of a step's word 4-grams found in the prompt frame or the question
DUPLICATE_SHARE = 0.7  # of a step's word 3-grams found in one earlier step of the walk
MIN_KEPT = 0.3  # a cut step is trimmed only when its complete sentences keep this share of it
MIN_OWN_WORDS = 8  # an echoing step is repaired only when this many words of its own remain

# Words that open a reply of its own, and not a clause that carries on a lead cut mid-sentence ("This means that
# The total..."): a continuing model writes them lower-case there. Of the 3,257 stored SmolLM2 lead-build steps
# (vLLM continuing), 2 open so, each a real start-over; on a server that answers anew, 29 of 29 (bench/restarts.py).
RESTART_WORDS = frozenset(
    "after alright an another as based before certainly first for given great hello here hi however if in it let "
    "my next now of okay one our since so step sure that thank thanks the there these this to using we well what "
    "when with yes you your".split()
)


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


Checks = tuple[str, tuple[str, ...], str | None, frozenset[tuple[str, ...]]]  # what `hygiene` returns


def hygiene(text: str, finish_reason: str, frame: str, question: str,
            earlier: Sequence[frozenset[tuple[str, ...]]]) -> Checks:
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


def sentences(text: str) -> list[str]:
    """`text` cut after each sentence end, blank pieces left out (the pieces keep their spacing)."""
    ends = [0] + [m.end() for m in SENTENCE_END.finditer(text)] + [len(text)]
    return [text[a:b] for a, b in zip(ends, ends[1:], strict=False) if text[a:b].strip()]


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
