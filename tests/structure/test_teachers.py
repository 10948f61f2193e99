"""Extraction on the real R1 and QwQ sample traces, and their structural correlation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from molspec.structure.compare import compare
from molspec.structure.extract import extract
from molspec.structure.label import BONDS


def test_extract_both_teachers_and_compare(shared_traces: dict[str, Path], tmp_path: Path) -> None:
    r1 = extract([shared_traces["r1"]], alpha=0.5)
    qwq = extract([shared_traces["qwq"]], alpha=0.5)
    assert (r1.graph.n_traces, qwq.graph.n_traces) == (50, 110)
    for ex in (r1, qwq):
        g = ex.graph
        assert np.allclose(np.asarray(g.transitions).sum(axis=1) + np.asarray(g.end), 1.0)
        assert g.n_steps == sum(len(t.bonds) for t in ex.traces)
        assert all(set(t.bonds) <= set(BONDS) for t in ex.traces)
        assert "graph teacher {" in g.to_mol("teacher")
    assert r1.graph.teacher == "deepseek-ai/DeepSeek-R1" and qwq.graph.teacher == "Qwen/QwQ-32B"
    result = compare(r1.graph, qwq.graph)
    print(f"\nR1 vs QwQ: {result.summary()}")
    for name, g in (("R1", r1.graph), ("QwQ", qwq.graph)):
        print(f"{name}: shares " + ", ".join(f"{b} {p:.3f}" for b, p in zip(g.bonds, g.shares, strict=True)))
    assert math.isfinite(result.r)
    # Two strong teachers labelled by the same labeler: the paper finds r > 0.9 across teachers.
    assert result.r > 0.8
