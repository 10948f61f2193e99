"""The build's speed-ups change nothing: each cache or shortcut gives what the slow path gives.

- template renders skip the line budget's trace only when the generated code proves the trace could never
  act: the static bound is checked against the events the real trace counts;
- hygiene's word n-grams and the prompt frames (fidelity.py) equal a plain recount;
- the gate labels a round's attempts in one batched call: same steps, labels and retries as one at a time.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from molspec.check.defaults import ANSWER_TEMPLATE, STEP_TEMPLATE
from molspec.template_bound import TRACE_FREE
from molspec.templating import MAX_LINES, TemplateRenderError, _LineBudget, compile_template, render_template


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
}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
@pytest.mark.parametrize("n", [0, 1, 5, 16, 40])
def test_the_static_bound_covers_every_event_the_trace_counts(name: str, n: int) -> None:
    source = TEMPLATES[name]
    shape = compile_template(source).shape
    assert shape is not None, f"{name}: these templates are all provably bounded"
    for ctx in (_context(n), _context(n, partner=True), _context(n, approach=True)):
        text, events = _counted(source, ctx)
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
