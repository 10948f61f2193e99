"""The structure a build actually produced: bond shares, transitions, lengths and tokens of its rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from molspec.graphmath import row_normalise, summary
from molspec.records import Distribution, RealisedInfo, Row, TokenDistribution, Transitions


def realised_stats(rows: Sequence[Row], bonds: Sequence[str]) -> RealisedInfo:
    k = len(bonds)
    pos = {b: i for i, b in enumerate(bonds)}
    counts = np.zeros(k, dtype=np.int64)
    trans = np.zeros((k, k), dtype=np.int64)
    tokens: dict[str, list[int]] = {b: [] for b in bonds}
    cut: Counter[str] = Counter()
    lengths = []
    for r in rows:
        seq = [pos[s.bond] for s in r.steps]
        lengths.append(len(seq))
        for a, b in zip(seq, seq[1:], strict=False):
            trans[a, b] += 1
        for s in r.steps:
            counts[pos[s.bond]] += 1
            tokens[s.bond].append(s.n_tokens)
            cut[s.bond] += s.finish_reason == "length"
    total = max(int(counts.sum()), 1)
    matrix = row_normalise(trans)
    graded = [r.correct for r in rows if r.correct is not None]
    return RealisedInfo(
        samples=len(rows),
        bond_shares={b: round(float(c) / total, 4) for b, c in zip(bonds, counts, strict=True) if c},
        transitions=Transitions(bonds=list(bonds), matrix=[[round(float(x), 4) for x in row] for row in matrix]),
        steps=distribution(lengths),
        tokens={b: TokenDistribution(**distribution(v).model_dump(), cut_by_max_tokens=cut[b])
                for b, v in tokens.items() if v},
        accuracy=round(sum(graded) / len(graded), 4) if graded else None,
        graded=len(graded),
    )


def distribution(values: Sequence[int]) -> Distribution:
    return Distribution.model_validate(summary(values))
