"""Property schemas: which keys a `{ ... }` block takes, their types and ranges.

`read_block` turns a syntax block into plain Python values, reporting unknown keys (with "did you
mean"), duplicates, wrong types, values out of range and missing required keys, each at its span.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from molspec.diagnostics import Diagnostic, Label, Severity, Span, did_you_mean
from molspec.lang import ast

Kind = Literal["str", "int", "float", "bool", "ref", "refs", "range", "strs", "any"]
_KIND_NAMES = {"str": "a string", "int": "a whole number", "float": "a number", "bool": "true or false",
               "ref": "a name", "refs": "a name or a list of names", "range": "a range like 8..40",
               "strs": "a string or a list of strings", "any": "a value"}


@dataclass(frozen=True)
class Key:
    """One allowed property.

    Attributes:
        name: the key as written.
        kind: the value type expected.
        required: report MOL112 when absent.
        lo, hi: inclusive bounds for numbers (hi_open / lo_open make them exclusive).
        choices: allowed string values.
        doc: a few words for help texts.
    """

    name: str
    kind: Kind
    required: bool = False
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    choices: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True)
class Schema:
    """The keys of a block, and the labelled sections it may hold (`options { }`, `split train { }`)."""

    what: str
    keys: tuple[Key, ...]
    sections: tuple[str, ...] = ()

    def key(self, name: str) -> Key | None:
        return next((k for k in self.keys if k.name == name), None)


@dataclass
class Values:
    """What `read_block` found: values and their spans, and the sections."""

    values: dict[str, Any] = field(default_factory=dict)
    spans: dict[str, Span] = field(default_factory=dict)
    sections: list[ast.Section] = field(default_factory=list)

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)


def read_block(block: ast.Block | None, schema: Schema, diags: list[Diagnostic], owner: Span) -> Values:
    """Validate `block` against `schema`, appending diagnostics; return the values that are valid."""
    out = Values()
    seen: dict[str, Span] = {}
    for prop in block.props if block is not None else ():
        name = prop.key.name
        if isinstance(prop, ast.Section) and prop.label is not None and name in schema.sections:
            out.sections.append(prop)  # labelled sections (`split train { }`) repeat; the owner checks labels
            continue
        if name in seen:
            diags.append(Diagnostic("MOL102", f"'{name}' is set twice in {schema.what}",
                                    Label(prop.key.sp, "set again here"),
                                    secondary=(Label(seen[name], "first set here"),),
                                    help="remove one of them"))
            continue
        seen[name] = prop.key.sp
        if isinstance(prop, ast.Section):
            _section(prop, schema, diags, out)
            continue
        key = schema.key(name)
        if key is None:
            diags.append(_unknown_key(prop.key, schema))
            continue
        value = convert(prop.value, key, diags, schema.what)
        if value is not None:
            out.values[name] = value
            out.spans[name] = prop.value.sp
    for key in schema.keys:
        if key.required and key.name not in seen:
            diags.append(Diagnostic("MOL112", f"{schema.what} needs '{key.name}'",
                                    Label(block.sp if block is not None else owner, f"'{key.name}' is missing"),
                                    help=f"add `{key.name} = ...`" + (f" ({key.doc})" if key.doc else "")))
    return out


def _section(prop: ast.Section, schema: Schema, diags: list[Diagnostic], out: Values) -> None:
    if prop.key.name in schema.sections:
        out.sections.append(prop)
        return
    if schema.key(prop.key.name) is not None:
        diags.append(Diagnostic("MOL103", f"'{prop.key.name}' takes a value, not a block",
                                Label(prop.key.sp), help=f"write `{prop.key.name} = ...`"))
        return
    diags.append(_unknown_key(prop.key, schema))


def _unknown_key(key: ast.Ident, schema: Schema) -> Diagnostic:
    names = [k.name for k in schema.keys] + list(schema.sections)
    hint = did_you_mean(key.name, names)
    return Diagnostic("MOL101", f"unknown property '{key.name}' in {schema.what}",
                      Label(key.sp, "not a property here"),
                      help=hint or f"{schema.what} takes: {', '.join(names)}")


def convert(value: ast.Value, key: Key, diags: list[Diagnostic], what: str) -> Any:
    """The Python value of `value` if it fits `key`, else None (with a diagnostic)."""
    result = _as_kind(value, key.kind)
    if result is None:
        got = _describe(value)
        diags.append(Diagnostic("MOL103", f"'{key.name}' must be {_KIND_NAMES[key.kind]}, not {got}",
                                Label(value.sp, f"this is {got}"), help=_type_help(value, key)))
        return None
    if key.choices and result not in key.choices:
        hint = did_you_mean(str(result), key.choices)
        diags.append(Diagnostic("MOL116", f"'{result}' is not a valid {key.name} for {what}",
                                Label(value.sp), help=hint or f"choose one of: {', '.join(key.choices)}"))
        return None
    if isinstance(result, (int, float)) and not isinstance(result, bool) and not _in_range(result, key):
        diags.append(Diagnostic("MOL108", f"'{key.name}' = {result} is out of range", Label(value.sp),
                                help=f"{key.name} must be {_range_text(key)}"))
        return None
    return result


_EXAMPLES = {"str": '"text"', "int": "100", "float": "0.7", "bool": "true", "ref": "NAME", "refs": "[a, b]",
             "range": "8..40", "strs": '["en", "fr"]', "any": "1"}


def _type_help(value: ast.Value, key: Key) -> str:
    """How to write the value: without quotes when the string holds the right literal, else an example."""
    if isinstance(value, ast.Str):
        fixed = _unquoted(value.value, key.kind)
        if fixed is not None:
            return f"remove the quotes: `{key.name} = {fixed}`"
    if isinstance(value, ast.Ref) and key.kind in ("str", "strs"):
        return f'strings go in double quotes: `{key.name} = "{value.name}"`'
    example = f"e.g. `{key.name} = {_EXAMPLES[key.kind]}`"
    return f"{example} ({key.doc})" if key.doc else example


def _unquoted(text: str, kind: Kind) -> str | None:
    literal = text.strip()
    if kind == "bool" and literal in ("true", "false"):
        return literal
    pattern = _LITERALS.get(kind)
    return literal if pattern is not None and pattern.fullmatch(literal) else None


_LITERALS = {"int": re.compile(r"[+-]?\d+"), "float": re.compile(r"[+-]?\d+(\.\d+)?([eE][+-]?\d+)?"),
             "range": re.compile(r"\d+\.\.\d+"), "ref": re.compile(r"[A-Za-z_]\w*"),
             "refs": re.compile(r"[A-Za-z_]\w*")}


def _as_kind(value: ast.Value, kind: Kind) -> Any:
    if kind == "any":
        return plain(value)
    if kind == "str":
        return value.value if isinstance(value, ast.Str) else None
    if kind == "bool":
        return value.value if isinstance(value, ast.Bool) else None
    if kind == "int":
        return int(value.value) if isinstance(value, ast.Num) and value.is_int else None
    if kind == "float":
        return value.value if isinstance(value, ast.Num) else None
    if kind == "ref":
        return value.name if isinstance(value, ast.Ref) else None
    if kind == "range":
        if isinstance(value, ast.RangeV) and value.lo.is_int and value.hi.is_int:
            return (int(value.lo.value), int(value.hi.value))
        if isinstance(value, ast.Num) and value.is_int:
            return (int(value.value), int(value.value))
        return None
    return _as_list(value, kind)


def _as_list(value: ast.Value, kind: Kind) -> Any:
    item_type = ast.Ref if kind == "refs" else ast.Str
    items: Sequence[ast.Value] = value.items if isinstance(value, ast.ListV) else (value,)
    if not items or not all(isinstance(i, item_type) for i in items):
        return None
    return tuple(i.name if isinstance(i, ast.Ref) else i.value for i in items)  # type: ignore[union-attr]


def plain(value: ast.Value) -> Any:
    """A value as plain Python (for pass-through options)."""
    if isinstance(value, ast.ListV):
        return [plain(v) for v in value.items]
    if isinstance(value, ast.RangeV):
        return [plain(value.lo), plain(value.hi)]
    if isinstance(value, ast.Ref):
        return value.name
    if isinstance(value, ast.Num):
        return int(value.value) if value.is_int else value.value
    return value.value


def block_to_dict(block: ast.Block, diags: list[Diagnostic]) -> dict[str, Any]:
    """A free-form block (engine options) as a nested dict; duplicates are still reported."""
    out: dict[str, Any] = {}
    for prop in block.props:
        if prop.key.name in out:
            diags.append(Diagnostic("MOL102", f"'{prop.key.name}' is set twice", Label(prop.key.sp),
                                    help="remove one of them"))
            continue
        out[prop.key.name] = (block_to_dict(prop.body, diags) if isinstance(prop, ast.Section)
                              else plain(prop.value))
    return out


def _in_range(x: float, key: Key) -> bool:
    if key.lo is not None and (x < key.lo or (key.lo_open and x == key.lo)):
        return False
    return key.hi is None or x <= key.hi


def _range_text(key: Key) -> str:
    lo = "" if key.lo is None else (f"> {key.lo:g}" if key.lo_open else f">= {key.lo:g}")
    hi = "" if key.hi is None else f"<= {key.hi:g}"
    return " and ".join(b for b in (lo, hi) if b)


def _describe(value: ast.Value) -> str:
    return {ast.Str: "a string", ast.Num: "a number", ast.Bool: "a boolean", ast.Ref: "a name",
            ast.ListV: "a list", ast.RangeV: "a range"}[type(value)]


def warn(code: str, message: str, span: Span, help: str | None = None) -> Diagnostic:
    return Diagnostic(code, message, Label(span), severity=Severity.WARNING, help=help)
