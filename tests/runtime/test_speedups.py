"""The build's speed-ups change nothing: each cache or shortcut gives what the slow path gives.

- template renders skip the line budget's trace only when the generated code proves the trace could never
  act: the static bound is checked against the events the real trace counts;
- hygiene's word n-grams and the prompt frames (fidelity.py) equal a plain recount;
- the gate labels a round's attempts in one batched call: same steps, labels and retries as one at a time.
"""

from __future__ import annotations

import random
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import molspec
from molspec.check.defaults import ANSWER_TEMPLATE, STEP_TEMPLATE
from molspec.engines.echo import EchoEngine
from molspec.pipeline import build_plan
from molspec.records import Failure, Row
from molspec.runtime.build import BuildOptions, jobs, prepare, run_config
from molspec.runtime.hygiene import DUPLICATE_SHARE, ECHO_SHARE, check_text, grams3, hygiene
from molspec.runtime.runconfig import Progress
from molspec.runtime.scheduler import run
from molspec.structure.label import get_labeler
from molspec.template_bound import TRACE_FREE
from molspec.templating import (
    MAX_LINES,
    TemplateLimitError,
    TemplateRenderError,
    _LineBudget,
    compile_template,
    render_template,
)
from tests.runtime.buildtools import OneAtATime
from tests.runtime.conftest import write_spec


def _steps(n: int) -> list[dict[str, str]]:
    return [{"bond": "deep", "kind": "covalent", "title": "Deep reasoning", "text": f"Step {i} text. It goes on."}
            for i in range(n)]


def _context(n: int, partner: bool = False, approach: bool = False) -> dict[str, Any]:
    steps = _steps(n)
    return {"question": "What is 7 times 3?", "steps": steps, "step": n + 1, "n_steps": n + 1,
            "bond": {"name": "deep", "kind": "covalent", "title": "Deep reasoning", "instruct": "Go deeper."},
            "bonds": ["deep"] * (n + 1), "sample": 3, "split": "train", "graph": "g", "instruct": "Answer.",
            "partner": {"step": 1, **steps[0]} if partner and steps else None,
            "approach": "An approach." if approach else None}


def _counted(source: str, context: dict[str, Any]) -> tuple[str, int]:
    """The render and the events the line budget counts for it (the traced path, run by hand)."""
    template = compile_template(source)
    budget = _LineBudget()
    previous = sys.gettrace()
    sys.settrace(budget.on_call)
    try:
        text = "".join(template.root_render_func(template.new_context(dict(context))))
    finally:
        sys.settrace(previous)
    return text, budget.lines


TEMPLATES = {
    "step": STEP_TEMPLATE,
    "answer": ANSWER_TEMPLATE,
    "nested": "{% for s in steps %}{% for b in bonds %}{{ b }}{{ s.text }}\n{% endfor %}{% endfor %}",
    "filters": "{{ steps | map(attribute='text') | join(' ') | upper }} {{ question | replace('7', 'seven') }}",
    "branches": "{% if step > 2 %}{{ steps[-1].text }}{% else %}{{ question }}{% endif %}{{ '%d' % step }}",
    "two loops": "{% for s in steps %}{{ s.text }}{% endfor %}\n{% for b in bonds %}{{ b }}{% else %}none{% endfor %}",
    "filter block": "{% filter upper %}{% for s in steps %}{{ s.text }}{% endfor %}{% endfilter %}",
    "namespace": "{% set ns = namespace(n=0) %}{% for s in steps %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}",
    "set block": "{% set acc %}{% for s in steps %}{{ s.text }}{% endfor %}{% endset %}{{ acc }}{{ acc }}",
    "three deep": ("{% for b in bonds %}{% for s in steps %}{% for c in bonds %}{{ c }}{% endfor %}{% endfor %}"
                   "{% endfor %}"),
}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
@pytest.mark.parametrize("n", [0, 1, 5, 16, 40])
def test_the_static_bound_covers_every_event_the_trace_counts(name: str, n: int) -> None:
    source = TEMPLATES[name]
    shape = compile_template(source).shape
    assert shape is not None, f"{name}: these templates are all provably bounded"
    for ctx in (_context(n), _context(n, partner=True), _context(n, approach=True)):
        try:
            text, events = _counted(source, ctx)
        except TemplateLimitError:  # a runaway (three loops deep over 40 steps): it is traced, and stopped
            assert shape.bound(ctx) >= TRACE_FREE
            continue
        assert events <= shape.bound(ctx)
        assert render_template(source, ctx) == text  # the untraced render writes the same prompt


@pytest.mark.parametrize("source", [
    "{% for i in range(5000) %}x{% endfor %}",  # a loop over a made-up range
    "{% set xs = steps + steps %}{% for s in xs %}{{ s.text }}{% endfor %}",  # a rebound variable
    "{% macro m(x) %}{{ x }}{% endmacro %}{% for s in steps %}{{ m(s.text) }}{% endfor %}",  # a macro
    "{% for s in steps recursive %}{{ s.text }}{% endfor %}",  # a recursive loop
    "{% for s in steps if s.text %}{{ s.text }}{% endfor %}",  # a filtered loop (a generator)
    "{% for s in steps %}{{ loop.index }}{% endfor %}",  # a LoopContext
    "{% for s in steps %}{% for t in s.text %}{{ t }}{% endfor %}{% endfor %}",  # a loop over an attribute
    "{% block b %}{{ question }}{% endblock %}",  # a block: a second function
])
def test_templates_that_cannot_be_bounded_keep_the_trace(source: str) -> None:
    assert compile_template(source).shape is None


def test_a_long_walk_or_a_foreign_context_value_keeps_the_trace() -> None:
    shape = compile_template(STEP_TEMPLATE).shape
    assert shape is not None
    assert shape.bound(_context(16)) < TRACE_FREE
    assert shape.bound(_context(400)) >= TRACE_FREE  # traced, so its CPU clock is read as before
    assert shape.bound({**_context(3), "steps": iter(_steps(3))}) == float("inf")  # not a list: unknown length
    assert shape.bound({**_context(3), "extra": object()}) == float("inf")


def test_a_runaway_template_is_still_stopped_by_the_line_budget() -> None:
    source = ("{% for a in steps %}{% for b in steps %}{% for c in steps %}{% if c.text == 'no' %}x{% endif %}"
              "{% endfor %}{% endfor %}{% endfor %}")
    with pytest.raises(TemplateRenderError) as info:
        render_template(source, _context(int(MAX_LINES ** (1 / 3)) + 5))
    assert "template lines" in info.value.reason


# ---------------------------------------------------------------- hygiene: n-grams counted once, frames spaced


def _plain_grams(text: str, n: int) -> set[tuple[str, ...]]:
    """The definition: the set of runs of n consecutive lower-cased words (\\w+)."""
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def _plain_problems(text: str, frame: str, question: str, earlier: Sequence[str]) -> list[str]:
    mine4, mine3 = _plain_grams(text, 4), _plain_grams(text, 3)
    out = []
    if mine4 and any(len(mine4 & _plain_grams(src, 4)) >= ECHO_SHARE * len(mine4) for src in (frame, question)):
        out.append("echo")
    if mine3 and any(len(mine3 & _plain_grams(e, 3)) >= DUPLICATE_SHARE * len(mine3) for e in earlier):
        out.append("duplicate")
    return out


def test_hygiene_equals_a_plain_recount_of_the_n_grams() -> None:
    rng = random.Random(7)
    vocab = ["a", "b", "The", "c.", "d!", "x_y", "12", "Straße", "É", "-", "\n", "  ", "(echo", "1f)", "step;"]
    echoes = duplicates = 0
    for _ in range(4000):
        def words(k: int) -> str:
            return " ".join(rng.choice(vocab) for _ in range(rng.randrange(k)))
        frame, question, earlier = words(30), words(10), [words(12) for _ in range(rng.randrange(4))]
        text = words(12)
        if rng.random() < 0.3:  # copied from the frame or an earlier step: echoes and duplicates happen
            source = rng.choice([frame, *earlier])
            text = source[rng.randrange(len(source) + 1):][:50]
        kept, problems, _repair, grams = hygiene(text, "stop", frame, question, [grams3(e) for e in earlier])
        want = _plain_problems(kept, frame, question, earlier) if kept else ["empty"]
        assert list(problems) == want, (text, frame, question, earlier)
        assert grams == _plain_grams(kept, 3) == grams3(kept)
        assert check_text(text, "stop", frame, question, [grams3(e) for e in earlier]) == (kept, problems, None)
        echoes += "echo" in problems
        duplicates += "duplicate" in problems
    assert echoes > 100 and duplicates > 100  # both checks were exercised


# ---------------------------------------------------------------- the gate: a round labelled in one call


def _rows(tmp_path: Path, engine: Any, labeler: str) -> list[Row]:
    spec = write_spec(tmp_path / "spec", samples=40, steps="4..9")
    spec.write_text(spec.read_text().replace("max_tokens = 40", "max_tokens = 15"))  # cut, trimmed and re-asked
    opts = BuildOptions(out=tmp_path / "out", gate=True)
    p = prepare(build_plan(molspec.load(spec)), opts)
    cfg = run_config(p, opts, engine.describe())
    cfg.labeler = get_labeler(labeler)
    out: list[Row | Failure] = []
    run(p.spec, engine, jobs(p, list(range(40))), cfg, out.extend, Progress())
    assert all(isinstance(r, Row) for r in out)
    return sorted((r for r in out if isinstance(r, Row)), key=lambda r: r.sample_index)


@pytest.mark.parametrize("labeler", ["cue", "learned"])
def test_a_round_labelled_in_one_call_equals_one_attempt_at_a_time(tmp_path: Path, labeler: str) -> None:
    batched = _rows(tmp_path / "rounds", EchoEngine(None, {}, 0), labeler)
    single = _rows(tmp_path / "single", OneAtATime(EchoEngine(None, {}, 0)), labeler)
    assert [r.model_dump() for r in batched] == [r.model_dump() for r in single]
    steps = [st for r in batched for st in r.steps]
    assert any(st.attempts > 1 for st in steps) and any(st.repair for st in steps)  # the gate and repairs ran
    assert all(st.label is not None for st in steps)

