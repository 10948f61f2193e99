"""Default prompt templates, and the variables every template may use.

The step template is the Mole-Syn frame: the question, the reasoning so far, then the instruction of
the sampled bond. The instruction comes last so that consecutive steps of a sample share a long
prompt prefix (the engine's prefix cache turns that into saved compute).
"""

from __future__ import annotations

STEP_TEMPLATE = """\
You are writing one step of a long, careful chain of thought that solves the problem below.

Problem:
{{ question }}
{% if steps %}
Reasoning so far:
{% for s in steps %}
{{ s.text }}
{% endfor %}
{% endif %}
Next step ({{ step }} of {{ n_steps }}), {{ bond.title | lower }}: {{ bond.instruct }}
{% if partner %}The step to re-check is step {{ partner.step }}: "{{ partner.text }}"
{% endif %}{% if approach %}The approach already on the table: "{{ approach }}" Take a different one.
{% endif %}Write only this step: a short paragraph of first-person thinking. Do not state the final answer yet."""

ANSWER_TEMPLATE = """\
Problem:
{{ question }}

Reasoning:
{% for s in steps %}
{{ s.text }}
{% endfor %}

{{ instruct }}"""

# name -> description; docs/language.md lists the same.
STEP_VARIABLES = {
    "question": "the seed question (string)",
    "steps": "the steps written so far: a list of {bond, kind, title, text}",
    "bond": "the bond of this step: {name, kind, title, instruct}",
    "step": "this step's number, from 1",
    "n_steps": "the number of bond steps in this walk",
    "bonds": "the whole walk: a list of bond names",
    "partner": "reflect (hydrogen) steps after the first: the earlier step to re-check, {step, bond, kind, title, "
               "text, claim (its first sentence)}; otherwise none",
    "approach": "explore (vdw) steps after the first: the first sentence of the latest exploring step (or of "
                "step 1); otherwise none",
    "sample": "the sample index",
    "split": "the split name",
    "graph": "the graph (isomer) name",
}
ANSWER_VARIABLES = {
    "question": STEP_VARIABLES["question"],
    "steps": "every step of the walk: a list of {bond, kind, title, text}",
    "instruct": "the answer block's instruction",
    "n_steps": STEP_VARIABLES["n_steps"],
    "bonds": STEP_VARIABLES["bonds"],
    "sample": STEP_VARIABLES["sample"],
    "split": STEP_VARIABLES["split"],
    "graph": STEP_VARIABLES["graph"],
}
# "gold" is deliberately absent: a generator that sees the reference answer writes fake reasoning.
