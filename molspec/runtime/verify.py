"""Answer checking against the gold answer: math-verify for math, normalised text for `exact`."""

from __future__ import annotations

import re
from typing import Literal

Verifier = Literal["math", "exact", "none"]
_BOXED = re.compile(r"\\boxed\s*\{")


def boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} in `text` (braces balanced), or None."""
    starts = [m.end() for m in _BOXED.finditer(text)]
    if not starts:
        return None
    i = depth = 0
    start = starts[-1]
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            if depth == 0:
                return text[start:i].strip()
            depth -= 1
    return None


def _normalise(s: str) -> str:
    s = s.strip().strip("$").replace(",", "").replace(" ", "").lower()
    return s.rstrip(".")


def verify(answer: str, gold: str | None, how: Verifier) -> bool | None:
    """True/False when there is a gold answer and a verifier; None otherwise."""
    if gold is None or how == "none":
        return None
    if how == "exact":
        got = boxed(answer) or answer
        return _normalise(got) == _normalise(gold)
    return _math(answer, gold)


_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def _as_number(text: str | None) -> float | None:
    if text is None:
        return None
    t = text.strip().strip("$").replace(",", "").replace("\\,", "").replace(" ", "").rstrip(".")
    return float(t) if _NUMBER.fullmatch(t) else None


def _math(answer: str, gold: str) -> bool:
    # Plain numbers (all of GSM8K) need no symbolic parse; math-verify costs milliseconds per call.
    g_num, a_num = _as_number(gold), _as_number(boxed(answer))
    if g_num is not None and a_num is not None:
        return abs(g_num - a_num) <= 1e-9 * max(1.0, abs(g_num))
    return _symbolic(answer, gold)


def _symbolic(answer: str, gold: str) -> bool:
    from math_verify import parse
    from math_verify import verify as mv_verify

    # Gold answers are bare values ("18", "2,125", "\\frac{1}{2}"): wrap them so math-verify reads them as
    # a final answer; the candidate is read from its \boxed{} (or its last number).
    gold_text = gold if "\\boxed" in gold else f"\\boxed{{{gold.replace(',', '')}}}"
    try:
        g = parse(gold_text, parsing_timeout=5)
        a = parse(answer, parsing_timeout=5)
        return bool(g and a and mv_verify(g, a, timeout_seconds=5))
    except Exception:  # noqa: BLE001  (math-verify raises on odd LaTeX; a failed parse is a wrong answer)
        return False
