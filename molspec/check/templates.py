"""Checks of Jinja templates: they parse, use only known variables, and render on a sample."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from jinja2 import TemplateSyntaxError, UndefinedError, meta
from jinja2.exceptions import SecurityError

from molspec.check.defaults import ANSWER_VARIABLES, STEP_VARIABLES
from molspec.diagnostics import Diagnostic, Label, Span, did_you_mean
from molspec.spec import Spec
from molspec.templating import (
    MAX_NESTING,
    TemplateLimitError,
    compile_template,
    environment,
    nesting_depth,
    render_error,
    template_body_start,
    template_line_span,
)

_SAMPLE_STEP = {"bond": "deep", "kind": "covalent", "title": "Deep reasoning", "text": "So x = 2."}


def check_templates(spec: Spec) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for name, source, span, variables, kind in _templates(spec):
        out += _check_one(spec, name, source, span, variables, kind)
    return out


def _templates(spec: Spec) -> Iterator[tuple[str, str, Span | None, dict[str, str], str | None]]:
    """(name, source, span, variables, the bond kind it renders for: None for every kind)."""
    t = spec.templates
    yield "step", t.step, t.spans.get("step"), STEP_VARIABLES, None
    yield "answer", t.answer, t.spans.get("answer"), ANSWER_VARIABLES, None
    if t.system is not None:
        yield "system", t.system, t.spans.get("system"), STEP_VARIABLES, None
    if t.reply is not None:
        yield "reply", t.reply, t.spans.get("reply"), STEP_VARIABLES, None
    for bond in spec.bonds.values():
        if bond.template is not None:
            yield f"bond '{bond.name}'", bond.template, bond.template_span, STEP_VARIABLES, bond.kind
        if bond.lead is not None:
            yield f"bond '{bond.name}' lead", bond.lead, bond.lead_span, STEP_VARIABLES, bond.kind


def _check_one(spec: Spec, name: str, source: str, span: Span | None,
               variables: dict[str, str], kind: str | None = None) -> list[Diagnostic]:
    if span is None:  # a built-in default: known good
        return []
    try:
        depth = nesting_depth(source)
        if depth > MAX_NESTING:
            raise TemplateLimitError(f"it nests {depth} blocks or brackets deep (the limit is {MAX_NESTING})")
        tree = environment().parse(source)
        undeclared = meta.find_undeclared_variables(tree)  # compiles: an unknown filter fails here
    except TemplateSyntaxError as exc:
        where = _line_span(spec, span, source, exc.lineno)
        return [Diagnostic("MOL301", f"the {name} template does not parse: {exc.message}",
                           Label(where, "found here"), help=_syntax_help(exc.message or ""))]
    except (TemplateLimitError, RecursionError) as exc:
        return [_limit(name, span, str(exc) if isinstance(exc, TemplateLimitError) else "it nests too deeply")]
    unknown = sorted(undeclared - set(variables))
    if unknown:
        return [_unknown(spec, name, source, span, var, variables) for var in unknown]
    for label, context in _answer_contexts(spec) if name == "answer" else _contexts(spec, kind):
        found = _trial_render(spec, name, source, span, label, context)
        if found:
            return found
    return []


def _limit(name: str, span: Span, reason: str) -> Diagnostic:
    return Diagnostic("MOL306", f"the {name} template goes past a limit: {reason}", Label(span),
                      help="see docs/limits.md for the template limits")


def _unknown(spec: Spec, name: str, source: str, span: Span, var: str, variables: dict[str, str]) -> Diagnostic:
    m = re.search(rf"\b{re.escape(var)}\b", source)
    where = _offset_span(spec, span, m.start() if m else 0, len(var))
    if var == "gold":
        help_ = "the reference answer is kept from the generator on purpose; the verifier uses it"
    else:
        help_ = did_you_mean(var, variables) or "variables here: " + ", ".join(variables)
    return Diagnostic("MOL302", f"unknown variable '{var}' in the {name} template",
                      Label(where, "not defined for this template"), help=help_)


def _trial_render(spec: Spec, name: str, source: str, span: Span, label: str,
                  context: dict[str, Any]) -> list[Diagnostic]:
    try:
        compile_template(source).render(**context)
    except (TemplateLimitError, RecursionError) as exc:  # located at the template line that hit the limit
        return list(render_error(exc, source, name, span, spec.files).diagnostics)
    except SecurityError as exc:
        where = _attribute_span(spec, span, source, str(exc))
        return [Diagnostic("MOL304", f"the {name} template does something the sandbox forbids: {exc}",
                           Label(where, "not allowed"), help="templates may read variables, not Python internals")]
    except UndefinedError as exc:
        where = _attribute_span(spec, span, source, exc.message or "")
        help_ = ("fields: bond has name, kind, title, instruct; steps items have bond, kind, title, text; "
                 "partner has step, claim and a step's fields")
        if "'None' has no attribute" in (exc.message or ""):
            help_ = ("`partner` and `approach` are none on a walk's first step (and on other bonds' steps): "
                     "guard them with `{% if partner %}...{% endif %}`")
        return [Diagnostic("MOL305", f"the {name} template fails on {label}: {exc.message}",
                           Label(where, "no such field"), help=help_)]
    except Exception as exc:  # noqa: BLE001  (any template runtime error is the user's to fix)
        return [Diagnostic("MOL305", f"the {name} template fails on {label}: {exc}", Label(span))]
    return []


_SYNTAX_HELP = {
    "end of statement block": "a `{% ... %}` tag before this point is missing its closing `%}`",
    "end of print statement": "a `{{ ... }}` before this point is missing its closing `}}`",
    "Unexpected end of template": "a block tag (`{% for %}`, `{% if %}`) is never closed with its `{% end... %}`",
}


def _syntax_help(message: str) -> str:
    for needle, text in _SYNTAX_HELP.items():
        if needle in message:
            return text
    return "see https://jinja.palletsprojects.com/templates/ for the syntax"


def _attribute_span(spec: Spec, span: Span, source: str, message: str) -> Span:
    """The first use of the attribute an error message names (`.body`, `__class__`), else the template."""
    m = re.search(r"attribute '(\w+)'", message)
    if m is None:
        return span
    use = re.search(rf"\.{m.group(1)}\b|\[\s*['\"]{m.group(1)}['\"]\s*\]", source)
    if use is None:
        return span
    return _offset_span(spec, span, use.start(), use.end() - use.start())


def _contexts(spec: Spec, kind: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Synthetic renders: a sample, then the first step, a middle step of a later sample, and the
    last step of a long walk (so that `{% if sample > 0 %}` or `steps[-1]` branches run too).
    `partner` and `approach` are set on some of them and none on others, as in a build (none on a first
    step). A bond's own template or lead renders only for that bond's kind: `kind`."""
    return [("a sample", _context(spec, sample=0, step=2, n_steps=8, kind=kind or "covalent")),
            ("the first step (sample 0, no steps yet)",
             _context(spec, sample=0, step=1, n_steps=8, kind=kind or "covalent")),
            ("a middle step (sample 1, step 4 of 8)", _context(spec, sample=1, step=4, n_steps=8,
                                                               kind=kind or "hydrogen")),
            ("the last step (sample 999999, step 64 of 64)",
             _context(spec, sample=999_999, step=64, n_steps=64, kind=kind or "vdw"))]


def _answer_contexts(spec: Spec) -> list[tuple[str, dict[str, Any]]]:
    """The answer follows a whole walk, of at least one step (MOL208 refuses shorter bounds)."""
    walks = [("a sample", 0, 1), ("the answer of sample 1 after 8 steps", 1, 8),
             ("the answer of sample 999999 after 64 steps", 999_999, 64)]
    return [(label, {**_context(spec, sample, n + 1, n), "steps": [_SAMPLE_STEP] * n}) for label, sample, n in walks]


def _context(spec: Spec, sample: int, step: int, n_steps: int, kind: str = "covalent") -> dict[str, Any]:
    bond = {"name": "deep", "kind": kind, "title": "Deep reasoning", "instruct": "Go deeper."}
    bonds = (["explore", "deep"] * n_steps)[:n_steps]
    later = step > 1  # a first step has no partner and no approach on the table
    partner = {"step": 1, "claim": "So x = 2.", **_SAMPLE_STEP} if kind == "hydrogen" and later else None
    return {"question": "What is 1 + 1?", "steps": [_SAMPLE_STEP] * (step - 1), "bond": bond, "step": step,
            "n_steps": n_steps, "bonds": bonds, "sample": sample, "split": "train" if sample < 2 else "test",
            "graph": "g", "instruct": spec.answer.instruct, "partner": partner,
            "approach": "Try x = 2." if kind == "vdw" and later else None}


def _offset_span(spec: Spec, span: Span, offset: int, length: int) -> Span:
    text = spec.files.get(span.file, "")
    start = template_body_start(text, span) + offset
    return Span.at(span.file, text, start, start + length)


def _line_span(spec: Spec, span: Span, source: str, lineno: int | None) -> Span:
    return template_line_span(spec.files.get(span.file, ""), span, source, lineno or 1)


__all__ = ["check_templates"]
