"""A seeded mutation corpus of the examples, and the checks every mutant must pass.

Each mutant goes through load -> check -> fmt -> compile. Only MolspecError may escape; every
diagnostic's line and column must be those of its offset in the text shown, and the caret must sit
under that character; no mutant may take MAX_SECONDS of CPU time (wall time on a shared machine
measures the neighbours). The corpus is a pure function of the
seed, so a failure names a mutant that can be replayed.

    python -m tests.lang.fuzz --per-example 2000     # the counts reported in docs/limits.md
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import molspec
from molspec.diagnostics import Diagnostic, MolspecError, Span, line_text, render
from molspec.lang.fmt import format_text
from tests.lang.corpus import EXAMPLES, ROOT

MAX_SECONDS = 2.0
SEED = 20261129
PIECES_ALPHABET = 'abxyz_019 \n\t{}[]()"=:|-><.,#\\'
HOSTILE_CHARS = ["\f", "\v", "\x85", "\u2028", "\u2029", "\r", "\x00", "\ufeff", "é", "\u00a0", "\x1b"]
HOSTILE_TOKENS = [
    "molspec", "use", "dataset", "source", "model", "bond", "graph", "template", "answer", "output", "start", "end",
    "steps", "split", "true", "false", "energy", "->", "|", "..", "0.5", "-1", "1e400", "9..3", "999999999999999",
    "1000000000", '"' + "x" * 3000 + '"', "{" * 80, "}", "[" * 70, '"../data/gsm8k.jsonl"', '"/dev/zero"',
    '"""{{ 3 ** 999999999 }}"""', '"""{{ lipsum(10**6) }}"""', '"""{{ question * 100000 }}"""',
    '"""{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}"""',
    '"""{% if sample > 0 %}{{ bond.nope }}{% endif %}"""', '"""{{ ' + "(" * 300 + "1" + ")" * 300 + ' }}"""',
    '"a\\u0000b.mol"', '"' + "y" * 300 + '.mol"',
]


@dataclass
class Tally:
    """What the mutants did."""

    mutants: int = 0
    by_example: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    diagnostics: int = 0
    slowest: float = 0.0


def mutants(per_example: int, seed: int = SEED) -> Iterator[tuple[Path, str]]:
    """`per_example` mutants of each example file, in a fixed order."""
    rng = random.Random(seed)
    for path in EXAMPLES:
        text = path.read_text(encoding="utf-8")
        for _ in range(per_example):
            yield path, mutate(rng, text)


def mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 4)):
        text = rng.choice((_char, _char, _token, _token, _hostile, _line_ends))(rng, text)
    return text


def _char(rng: random.Random, text: str) -> str:
    i = rng.randrange(len(text) + 1)
    kind = rng.choice(("delete", "insert", "duplicate", "swap"))
    if kind == "delete":
        return text[:i] + text[i + 1:]
    if kind == "insert":
        return text[:i] + rng.choice(PIECES_ALPHABET) + text[i:]
    j = min(len(text), i + rng.randint(1, 40))
    if kind == "duplicate":
        return text[:j] + text[i:j] + text[j:]
    return text[:i] + text[j:j + 1] + text[i + 1:j] + text[i:i + 1] + text[j + 1:] if j > i else text


def _token(rng: random.Random, text: str) -> str:
    tokens = text.split(" ")
    i, j = rng.randrange(len(tokens)), rng.randrange(len(tokens))
    kind = rng.choice(("delete", "duplicate", "swap", "replace"))
    if kind == "delete":
        del tokens[i]
    elif kind == "duplicate":
        tokens.insert(i, tokens[i])
    elif kind == "swap":
        tokens[i], tokens[j] = tokens[j], tokens[i]
    else:
        tokens[i] = rng.choice(HOSTILE_TOKENS)
    return " ".join(tokens)


def _hostile(rng: random.Random, text: str) -> str:
    i = rng.randrange(len(text) + 1)
    return text[:i] + rng.choice(HOSTILE_CHARS) + text[i:]


def _line_ends(rng: random.Random, text: str) -> str:
    kind = rng.choice(("crlf", "cr", "bom"))
    if kind == "bom":
        return "\ufeff" + text
    return text.replace("\n", "\r\n" if kind == "crlf" else "\r")


def exercise(path: Path, text: str, tally: Tally) -> None:
    """Every stage on one mutant (paths as in a copy of examples/); raises AssertionError on a fault."""
    started = time.process_time()  # CPU time: a hang shows, a busy machine does not
    outcome = _stage(tally, lambda: _load_and_compile(path, text, tally))
    _stage(tally, lambda: format_text(text, str(path)) and "formatted")
    elapsed = time.process_time() - started
    assert elapsed < MAX_SECONDS, f"took {elapsed:.2f} s of CPU time"
    tally.mutants += 1
    tally.by_example[path.name] += 1
    tally.outcomes[outcome] += 1
    tally.slowest = max(tally.slowest, elapsed)


def _load_and_compile(path: Path, text: str, tally: Tally) -> str:
    doc = molspec.load(path, text=text)
    doc.check()
    _located(doc.diagnostics, doc.sources, tally)
    if doc.ok and doc.spec is not None and doc.spec.dataset is not None:
        doc.compile(samples=16).walks()
        return "compiled"
    return "diagnostics" if doc.diagnostics else "ok"


def _stage(tally: Tally, run_stage: Callable[[], str]) -> str:
    """A stage's outcome; a MolspecError is an outcome ("refused") once its diagnostics are checked."""
    try:
        return run_stage()
    except MolspecError as err:
        assert err.diagnostics, "a MolspecError without diagnostics"
        _located(err.diagnostics, err.sources, tally)
        err.render()
        return "refused"


def _located(diags: Sequence[Diagnostic], sources: dict[str, str], tally: Tally | None) -> None:
    for d in diags:
        if tally is not None:
            tally.diagnostics += 1
            tally.codes[d.code] += 1
        text = sources.get(d.span.file)
        if text is None:
            continue
        for label in (d.primary, *d.secondary):
            if label.span.file == d.span.file:
                _same_position(label.span, text, d.code)
        _caret_under(d, sources, text)


def _same_position(span: Span, text: str, code: str) -> None:
    assert 0 <= span.start <= len(text) and span.start <= span.end, f"{code}: span {span} outside the text"
    again = Span.at(span.file, text, span.start)
    assert (again.line, again.col) == (span.line, span.col), f"{code}: {span} but its offset is at {again}"


def _caret_under(d: Diagnostic, sources: dict[str, str], text: str) -> None:
    """The first caret of the render sits under the character the span starts at."""
    s = d.span
    line = line_text(text, s.line)
    if s.col > len(line) or "\t" in line[: s.col] or len(line) > 160 or not line[s.col - 1].isprintable():
        return
    shown = render(d, sources).splitlines()
    source_row = next(i for i, row in enumerate(shown) if row.lstrip().startswith(f"{s.line} |"))
    marks = next(row for row in shown[source_row + 1:] if "^" in row)  # secondary '-' rows may come first
    caret = marks.index("^")
    assert shown[source_row][caret] == line[s.col - 1], f"{d.code}: the caret is not under {line[s.col - 1]!r}"


def workdir() -> Path:
    """A copy of examples/, so that mutants resolve their imports and data as the originals do."""
    root = Path(tempfile.mkdtemp(prefix="molspec-fuzz-"))
    shutil.copytree(ROOT / "examples", root / "examples")
    return root / "examples"


def run(per_example: int, seed: int = SEED) -> Tally:
    tally = Tally()
    work = workdir()
    for path in EXAMPLES:  # builds the parsers and imports the engines' dependencies: not a mutant's time
        exercise(work / path.relative_to(ROOT / "examples"), path.read_text(encoding="utf-8"), Tally())
    try:
        for i, (path, text) in enumerate(mutants(per_example, seed)):
            try:
                exercise(work / path.relative_to(ROOT / "examples"), text, tally)
            except AssertionError as exc:  # name the mutant, so that it can be replayed
                raise AssertionError(f"mutant {i} (of {path.name}, seed {seed}): {exc}") from exc
    finally:
        shutil.rmtree(work.parent, ignore_errors=True)
    return tally


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--per-example", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()
    started = time.perf_counter()
    t = run(args.per_example, args.seed)
    print(f"{t.mutants} mutants of {len(t.by_example)} example files in {time.perf_counter() - started:.0f} s; "
          f"slowest {t.slowest:.2f} s of CPU time")
    print("outcomes:", dict(t.outcomes.most_common()))
    print(f"diagnostics: {t.diagnostics} of {len(t.codes)} codes;", dict(t.codes.most_common(12)))


if __name__ == "__main__":
    main()
