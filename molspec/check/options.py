"""A model's `options { ... }`, validated by its engine's pydantic options model (the engine registry).

The engine checks the same model again when it starts; checking here puts each mistake at its line
(MOL122) before a build loads anything. An unknown engine (MOL114) leaves its options unchecked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from molspec.check import schema as S
from molspec.diagnostics import Diagnostic, Label, Span, did_you_mean
from molspec.engines.registry import ENGINES, EngineEntry
from molspec.lang import ast


def engine_options(engine: str, sections: Sequence[ast.Section], diags: list[Diagnostic]) -> dict[str, Any]:
    """The options of `sections` as a dict; each problem the engine's options model finds is reported."""
    options: dict[str, Any] = {}
    spans: dict[str, tuple[Span, Span]] = {}  # option -> (its key, its value)
    for sec in sections:
        options.update(S.block_to_dict(sec.body, diags))
        for prop in sec.body.props:
            spans.setdefault(prop.key.name, (prop.key.sp, (prop.value if isinstance(prop, ast.Assign) else prop).sp))
    found = ENGINES.get(engine)
    if found is None:
        return options
    try:
        found.options.model_validate(options)
    except ValidationError as err:
        whole = sections[0].key.sp if sections else None
        for e in err.errors(include_url=False):
            diag = _diagnostic(found, e, spans, whole)
            if diag is not None:
                diags.append(diag)
    return options


def _diagnostic(found: EngineEntry, e: ErrorDetails, spans: dict[str, tuple[Span, Span]],
                whole: Span | None) -> Diagnostic | None:
    name = str(e["loc"][0]) if e["loc"] else ""
    key_span, value_span = spans.get(name, (whole, whole))
    if key_span is None or value_span is None:  # defaults only (no options block): nothing to point at
        return None
    known = sorted(found.options.model_fields)
    if e["type"] == "extra_forbidden":
        return Diagnostic("MOL122", f"unknown option '{name}' for the {found.name} engine",
                          Label(key_span, "not an option of this engine"),
                          help=did_you_mean(name, known) or f"{found.name} options: {', '.join(known)}")
    field = found.options.model_fields.get(name)
    doc = field.description if field is not None else None
    if e["type"] == "value_error":  # a rule across options (e.g. openai's base_url / base_urls)
        message = str((e.get("ctx") or {}).get("error", e["msg"]))
        return Diagnostic("MOL122", f"bad options for the {found.name} engine: {message}", Label(value_span),
                          help="docs/language.md (`model`) lists the options of each engine")
    where = "/".join(str(p) for p in e["loc"])
    return Diagnostic("MOL122", f"option '{where}' of the {found.name} engine {_problem(e)}",
                      Label(value_span, f"got {e['input']!r}"),
                      help=f"{name}: {doc}" if doc else "docs/language.md (`model`) lists the options")


def _problem(e: ErrorDetails) -> str:
    ctx = e.get("ctx") or {}
    for kind, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        if kind in ctx:
            return f"must be {sign} {ctx[kind]}"
    return "is not valid: " + e["msg"][0].lower() + e["msg"][1:]
