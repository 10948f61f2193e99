"""Property schemas: which keys a `{ ... }` block takes, their types and ranges.

The keys are derived from the pydantic models of `molspec.spec` (`keys_of`): kind, bounds, choices,
whether a key is required and its help text come from the fields, and each value is validated by its
field, so the spec models are the one place that says what a value may be. `read_block` turns a syntax
block into plain Python values, reporting unknown keys (with "did you mean"), duplicates, wrong types,
values out of range and missing required keys, each at its span.
"""

from __future__ import annotations

import re
import types
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, cast, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

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
        lo, hi: inclusive bounds for numbers (lo_open makes lo exclusive), for help texts.
        choices: allowed string values.
        doc: a few words for help texts.
        owner, attr: the spec model and field the value goes to (`Values.of`).
        adapter: validates a value of the right kind against the field's constraints.
    """

    name: str
    kind: Kind
    required: bool = False
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    choices: tuple[str, ...] = ()
    doc: str = ""
    owner: type[BaseModel] | None = None
    attr: str = ""
    adapter: TypeAdapter[Any] | None = field(default=None, compare=False, repr=False)


def keys_of(model: type[BaseModel], *names: str, spelled: Mapping[str, str] | None = None,
            kinds: Mapping[str, Kind] | None = None, optional: Collection[str] = ()) -> tuple[Key, ...]:
    """The keys for fields `names` of `model`.

    Args:
        spelled: field -> key as written, where they differ (`model` of ModelSpec is written `name`).
        kinds: field -> kind, where the language reads a name (`ref`, `refs`) instead of a string.
        optional: required fields that the language fills in itself (a bond's title, the dataset's model).
    """
    return tuple(_key(model, name, (spelled or {}).get(name, name), (kinds or {}).get(name),
                      name not in optional) for name in names)


def _key(model: type[BaseModel], attr: str, name: str, kind: Kind | None, may_require: bool) -> Key:
    info = model.model_fields[attr]
    base = _strip_none(info.annotation)
    choices = tuple(get_args(base)) if get_origin(base) is Literal else ()
    lo, hi, lo_open = _bounds(info.metadata)
    return Key(name, kind or _kind_of(base), required=may_require and info.is_required(), lo=lo, hi=hi,
               lo_open=lo_open, choices=choices, doc=info.description or "", owner=model, attr=attr,
               adapter=_adapter(base, info))


def _bounds(metadata: Sequence[Any]) -> tuple[float | None, float | None, bool]:
    """(lo, hi, lo is exclusive) of a field's constraints, for help texts (the adapter enforces them)."""
    lo: float | None = None
    hi: float | None = None
    lo_open = False
    for m in metadata:
        if isinstance(m, (at.Ge, at.Gt)):
            lo, lo_open = cast(float, m.ge if isinstance(m, at.Ge) else m.gt), isinstance(m, at.Gt)
        elif isinstance(m, at.Le):
            hi = cast(float, m.le)
    return lo, hi, lo_open


def _strip_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _kind_of(base: Any) -> Kind:
    simple: dict[Any, Kind] = {str: "str", int: "int", float: "float", bool: "bool"}
    if base in simple:
        return simple[base]
    if get_origin(base) is Literal:
        return "str"
    if get_origin(base) is tuple and get_args(base) == (str, Ellipsis):
        return "strs"
    raise TypeError(f"no .mol kind for the field type {base!r}")


def _adapter(base: Any, info: FieldInfo) -> TypeAdapter[Any]:
    return TypeAdapter(Annotated[base, *info.metadata]) if info.metadata else TypeAdapter(base)


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
    keys: dict[str, Key] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def of(self, owner: type[BaseModel]) -> dict[str, Any]:
        """The values that go to fields of `owner`, by field name (what is absent takes the field default)."""
        return {k.attr: self.values[n] for n, k in self.keys.items() if k.owner is owner and n in self.values}


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
            out.keys[name] = key
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
    problem = _invalid(result, key)
    if problem == "choice":
        hint = did_you_mean(str(result), key.choices)
        diags.append(Diagnostic("MOL116", f"'{result}' is not a valid {key.name} for {what}",
                                Label(value.sp), help=hint or f"choose one of: {', '.join(key.choices)}"))
        return None
    if problem == "range":
        diags.append(Diagnostic("MOL108", f"'{key.name}' = {result} is out of range", Label(value.sp),
                                help=f"{key.name} must be {_range_text(key)}"))
        return None
    return result


def _invalid(result: Any, key: Key) -> Literal["choice", "range", None]:
    """Ask the field (the one definition of what a value may be); a type error cannot remain here."""
    if key.adapter is None:
        return None
    try:
        key.adapter.validate_python(result)
    except ValidationError as err:
        return "choice" if err.errors()[0]["type"] == "literal_error" else "range"
    return None


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


def _range_text(key: Key) -> str:
    lo = "" if key.lo is None else (f"> {key.lo:g}" if key.lo_open else f">= {key.lo:g}")
    hi = "" if key.hi is None else f"<= {key.hi:g}"
    return " and ".join(b for b in (lo, hi) if b)


def _describe(value: ast.Value) -> str:
    return {ast.Str: "a string", ast.Num: "a number", ast.Bool: "a boolean", ast.Ref: "a name",
            ast.ListV: "a list", ast.RangeV: "a range"}[type(value)]


def warn(code: str, message: str, span: Span, help: str | None = None) -> Diagnostic:
    return Diagnostic(code, message, Label(span), severity=Severity.WARNING, help=help)
