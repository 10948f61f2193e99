"""Issue 10 "what it must show": a seeded mutation corpus of every example through load, check, fmt and
compile. Only MolspecError escapes, every diagnostic's line, column and caret point at the text it names,
and no mutant takes MAX_SECONDS. `python -m tests.lang.fuzz --per-example 2000` runs the larger corpus
whose counts docs/limits.md reports."""

from __future__ import annotations

import pytest

from tests.lang.corpus import EXAMPLES
from tests.lang.fuzz import Tally, mutants, run

PER_EXAMPLE = 300  # 2,100 mutants in all: about 30 s on one core


@pytest.mark.timeout(300)
def test_mutants_of_every_example() -> None:
    tally: Tally = run(PER_EXAMPLE)
    assert tally.mutants == PER_EXAMPLE * len(EXAMPLES) >= 2000
    assert set(tally.by_example) == {p.name for p in EXAMPLES}
    assert tally.outcomes["compiled"] > 0 and tally.outcomes["refused"] > 0  # both paths exercised
    assert len(tally.codes) >= 20


def test_the_corpus_is_a_function_of_the_seed() -> None:
    assert list(mutants(3, seed=1)) == list(mutants(3, seed=1))
    assert list(mutants(3, seed=1)) != list(mutants(3, seed=2))
