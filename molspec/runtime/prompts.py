"""Prompts of a walk: the chat messages of each bond step and of the answer step.

Templates come from the spec (sandboxed Jinja, strict undefined variables); a bond's own template
overrides the step frame for that bond. A step may also start the model's reply (the `reply` template, then
the bond's `lead`): the messages then end with that assistant message, which the engine continues.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from molspec.runtime.partners import claim, first_sentence
from molspec.spec import BondSpec, Spec
from molspec.templating import render_template


@dataclass(frozen=True, slots=True)
class StepText:
    """A finished step as templates see it."""

    bond: str
    kind: str
    title: str
    text: str

    def view(self) -> dict[str, str]:
        return {"bond": self.bond, "kind": self.kind, "title": self.title, "text": self.text}


@dataclass(frozen=True, slots=True)
class WalkContext:
    """What stays fixed over one sample's walk."""

    question: str
    bonds: tuple[str, ...]
    sample: int
    split: str
    graph: str


@dataclass(frozen=True, slots=True)
class StepPrompt:
    """The messages that ask for one bond step.

    Attributes:
        messages: system?, user, then (when the step starts the reply) the assistant message to continue.
        lead: the words the step starts with ("" for none): the end of that assistant message, and the
            start of the step's text (the completion follows it).
    """

    messages: tuple[dict[str, str], ...]
    lead: str = ""


def _render(spec: Spec, name: str, ctx: Mapping[str, Any], bond: BondSpec | None = None) -> str:
    """A template of the spec rendered; TemplateRenderError (a located MolspecError) fails only this sample."""
    if bond is not None and bond.template is not None:
        return render_template(bond.template, ctx, f"bond '{bond.name}'", bond.template_span, spec.files)
    source = {"step": spec.templates.step, "answer": spec.templates.answer, "system": spec.templates.system,
              "reply": spec.templates.reply}[name]
    assert source is not None
    return render_template(source, ctx, name, spec.templates.spans.get(name), spec.files)


def _messages(spec: Spec, user: str, ctx: Mapping[str, Any]) -> tuple[dict[str, str], ...]:
    msgs: list[dict[str, str]] = []
    if spec.templates.system is not None:
        msgs.append({"role": "system", "content": _render(spec, "system", ctx).strip()})
    msgs.append({"role": "user", "content": user.strip()})
    return tuple(msgs)


def step_prompt(spec: Spec, walk: WalkContext, steps: Sequence[StepText], bond: BondSpec,
                partner: int | None = None) -> StepPrompt:
    """The prompt asking for step len(steps)+1 of the walk, with the instruction of `bond`.

    A reflect step is shown the earlier step it re-checks (`partner`); an explore step is told which approach
    is already on the table, so that it opens a different one."""
    ctx = {"question": walk.question, "steps": [s.view() for s in steps],
           "bond": {"name": bond.name, "kind": bond.kind, "title": bond.title, "instruct": bond.instruct},
           "step": len(steps) + 1, "n_steps": len(walk.bonds), "bonds": list(walk.bonds),
           "sample": walk.sample, "split": walk.split, "graph": walk.graph,
           "partner": None if partner is None else {"step": partner + 1, **steps[partner].view(),
                                                    "claim": claim(steps[partner].text)},
           "approach": _approach(steps) if bond.kind == "vdw" else None}
    msgs = _messages(spec, _render(spec, "step", ctx, bond), ctx)
    reply = _render(spec, "reply", ctx).strip() if spec.templates.reply is not None else ""
    lead = _lead(spec, bond, ctx)
    if not reply and not lead:
        return StepPrompt(msgs)
    # A blank line ends the reasoning so far, as `thinking` joins steps; the lead (never ending in a space, which
    # some chat templates strip) is where the step's own words begin.
    started = f"{reply}\n\n{lead}" if reply else lead
    return StepPrompt((*msgs, {"role": "assistant", "content": started}), lead)


def _lead(spec: Spec, bond: BondSpec, ctx: Mapping[str, Any]) -> str:
    if bond.lead is None:
        return ""
    text = render_template(bond.lead, ctx, f"bond '{bond.name}' lead", bond.lead_span, spec.files)
    return " ".join(text.split())  # one line: a lead is the opening of a paragraph


def _approach(steps: Sequence[StepText]) -> str | None:
    explored = [s for s in steps if s.kind == "vdw"] or list(steps[:1])
    return first_sentence(explored[-1].text) if explored else None


def answer_messages(spec: Spec, walk: WalkContext, steps: Sequence[StepText]) -> tuple[dict[str, str], ...]:
    ctx = {"question": walk.question, "steps": [s.view() for s in steps], "instruct": spec.answer.instruct,
           "n_steps": len(walk.bonds), "bonds": list(walk.bonds), "sample": walk.sample, "split": walk.split,
           "graph": walk.graph}
    return _messages(spec, _render(spec, "answer", ctx), ctx)


def thinking(steps: Sequence[StepText]) -> str:
    """The steps as one reasoning text (blank line between steps, nothing summarised)."""
    return "\n\n".join(s.text.strip() for s in steps)


def sft_messages(question: str, think: str, answer: str, with_think: bool) -> list[dict[str, str]]:
    """The conversation TRL's SFTTrainer takes: the question, then the reasoning and the answer."""
    content = f"<think>\n{think}\n</think>\n\n{answer}" if with_think else answer
    return [{"role": "user", "content": question}, {"role": "assistant", "content": content}]
