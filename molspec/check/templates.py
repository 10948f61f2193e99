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
from molspec.templating import environment

_SAMPLE_STEP = {"bond": "deep", "kind": "covalent", "title": "Deep reasoning", "text": "So x = 2."}


def check_templates(spec: Spec) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for name, source, span, variables in _templates(spec):
        out += _check_one(spec, name, source, span, variables)
    return out


def _templates(spec: Spec) -> Iterator[tuple[str, str, Span | None, dict[str, str]]]:
    t = spec.templates
    yield "step", t.step, t.spans.get("step"), STEP_VARIABLES
    yield "answer", t.answer, t.spans.get("answer"), ANSWER_VARIABLES
    if t.system is not None:
        yield "system", t.system, t.spans.get("system"), STEP_VARIABLES
    for bond in spec.bonds.values():
        if bond.template is not None:
            yield f"bond '{bond.name}'", bond.template, bond.template_span, STEP_VARIABLES


def _check_one(spec: Spec, name: str, source: str, span: Span | None,
               variables: dict[str, str]) -> list[Diagnostic]:
    if span is None:  # a built-in default: known good
        return []
    env = environment()
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        where = _line_span(spec, span, source, exc.lineno)
        return [Diagnostic("MOL301", f"the {name} template does not parse: {exc.message}",
                           Label(where, "found here"), help=_syntax_help(exc.message or ""))]
    unknown = sorted(meta.find_undeclared_variables(tree) - set(variables))
    if unknown:
        return [_unknown(spec, name, source, span, var, variables) for var in unknown]
    return _trial_render(spec, name, source, span, variables)


def _unknown(spec: Spec, name: str, source: str, span: Span, var: str, variables: dict[str, str]) -> Diagnostic:
    m = re.search(rf"\b{re.escape(var)}\b", source)
    where = _offset_span(spec, span, m.start() if m else 0, len(var))
    if var == "gold":
        help_ = "the reference answer is kept from the generator on purpose; the verifier uses it"
    else:
        help_ = did_you_mean(var, variables) or "variables here: " + ", ".join(variables)
    return Diagnostic("MOL302", f"unknown variable '{var}' in the {name} template",
                      Label(where, "not defined for this template"), help=help_)


def _trial_render(spec: Spec, name: str, source: str, span: Span, variables: dict[str, str]) -> list[Diagnostic]:
    env = environment()
    try:
        env.from_string(source).render(**_sample_context(spec))
    except SecurityError as exc:
        where = _attribute_span(spec, span, source, str(exc))
        return [Diagnostic("MOL304", f"the {name} template does something the sandbox forbids: {exc}",
                           Label(where, "not allowed"), help="templates may read variables, not Python internals")]
    except UndefinedError as exc:
        where = _attribute_span(spec, span, source, exc.message or "")
        return [Diagnostic("MOL305", f"the {name} template fails on a sample: {exc.message}",
                           Label(where, "no such field"),
                           help="fields: bond has name, kind, title, instruct; steps items have bond, kind, "
                                "title, text")]
    except Exception as exc:  # noqa: BLE001  (any template runtime error is the user's to fix)
        return [Diagnostic("MOL305", f"the {name} template fails on a sample: {exc}", Label(span))]
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


def _sample_context(spec: Spec) -> dict[str, Any]:
    bond = {"name": "deep", "kind": "covalent", "title": "Deep reasoning", "instruct": "Go deeper."}
    return {"question": "What is 1 + 1?", "steps": [_SAMPLE_STEP], "bond": bond, "step": 2, "n_steps": 8,
            "bonds": ["explore", "deep"], "sample": 0, "split": "train", "graph": "g",
            "instruct": spec.answer.instruct}


def _body_start(spec: Spec, span: Span) -> int:
    """Offset of the template's first character: after the quotes and a newline right after them."""
    text = spec.files.get(span.file, "")
    if not text.startswith('"""', span.start):
        return span.start + 1
    start = span.start + 3
    for newline in ("\r\n", "\n"):
        if text.startswith(newline, start):
            return start + len(newline)
    return start


def _offset_span(spec: Spec, span: Span, offset: int, length: int) -> Span:
    text = spec.files.get(span.file, "")
    start = _body_start(spec, span) + offset
    return Span.at(span.file, text, start, start + length)


def _line_span(spec: Spec, span: Span, source: str, lineno: int | None) -> Span:
    lines = source.split("\n")
    k = max(1, min(lineno or 1, len(lines)))
    offset = sum(len(line) + 1 for line in lines[: k - 1])
    length = len(lines[k - 1]) or 1
    return _offset_span(spec, span, offset, length)


__all__ = ["check_templates"]
