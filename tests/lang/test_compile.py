"""Compiler fixture pairs: `fixtures/compile/<case>.mol` plans exactly as `<case>.plan.json`.

The JSON holds the first walks and the statistics of the spec's own plan (its seed and sample count),
as canonical JSON with sorted keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from molspec.api import load
from molspec.plan.compile import Plan
from molspec.plan.stats import plan_stats
from tests.lang.golden import check_golden

HERE = Path(__file__).parent / "fixtures" / "compile"
CASES = sorted(HERE.glob("*.mol"))
SHOWN = 20


def plan_json(plan: Plan) -> dict[str, Any]:
    w = plan.walks(0, SHOWN)
    walks = [{"index": int(w.index[i]), "split": plan.splits[int(w.split[i])].spec.name,
              "graph": plan.graphs[int(w.graph[i])], "question": int(w.question[i]),
              "bonds": " ".join(plan.bond_names(w.bonds[i], int(w.lengths[i])))} for i in range(len(w))]
    return {"seed": plan.seed, "samples": plan.samples, "bonds": list(plan.bonds), "graphs": list(plan.graphs),
            "walks": walks, "stats": plan_stats(plan).to_json()}


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_plan_fixture(case: Path, update_goldens: bool) -> None:
    doc = load(case)
    assert doc.ok, [d.message for d in doc.diagnostics if d.is_error]
    check_golden(case.with_suffix(".plan.json"), canonical(plan_json(doc.compile())), update_goldens)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_fixture_walks_are_valid(case: Path) -> None:
    """Every planned walk respects its graph: lengths in bounds, bonds of that graph, positive edges."""
    plan = load(case).compile()
    w = plan.walks()
    for g, c in enumerate(plan.chains):
        rows = w.graph == g
        lengths = w.lengths[rows]
        assert ((lengths >= c.min_steps) & (lengths <= c.max_steps)).all()
        local = {plan.bonds.index(b): i for i, b in enumerate(c.bonds)}
        for bonds, n in zip(w.bonds[rows], lengths, strict=True):
            seq = [local[int(b)] for b in bonds[:n]]
            assert (bonds[n:] == -1).all()
            assert c.start[seq[0]] > 0
            assert all(c.trans[a, b] > 0 for a, b in zip(seq, seq[1:], strict=False))
