"""Lark tree -> syntax AST (`molspec.lang.ast.File`). Every node gets the span of its rule."""

from __future__ import annotations

import builtins
import re
from typing import Any

from lark import Token, Transformer, Tree, v_args
from lark.exceptions import VisitError

from molspec.diagnostics import Diagnostic, Label, MolspecError, PartialDiagnostic, Span
from molspec.lang import ast
from molspec.lang.syntax import parse


def parse_file(text: str, file: str = "<string>") -> ast.File:
    """Text -> File, raising MolspecError on a syntax error."""
    return build(parse(text, file), file, text)


def build(tree: Tree[Token], file: str, text: str) -> ast.File:
    """Turn the parse tree into AST nodes; errors raised inside get the span of their node."""
    try:
        result: ast.File = _Builder(file).transform(tree)
    except VisitError as exc:
        orig = exc.orig_exc
        if isinstance(orig, PartialDiagnostic):
            span = Span.from_meta(file, exc.obj.meta) if isinstance(exc.obj, Tree) else Span.from_token(
                file, exc.obj)
            raise MolspecError([orig.at(span)], {file: text}) from None
        if isinstance(orig, RecursionError):  # a backstop: `parse` refuses deep nesting before this
            diag = Diagnostic("MOL020", "the spec nests too deeply", Label(Span(file, 0, 0, 1, 1)),
                              help="flatten the nested blocks or lists")
            raise MolspecError([diag], {file: text}) from None
        raise
    return result.model_copy(update={"path": file})


def long_string_value(raw: str) -> str:
    """The text of a triple-quoted string: verbatim, except that a newline right after the opening
    quotes is dropped (as in TOML), so a template can start on the line below the quotes."""
    body = raw[3:-3]
    for newline in ("\r\n", "\n"):
        if body.startswith(newline):
            return body[len(newline):]
    return body


_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t"}
_ESCAPE_RE = re.compile(r"\\(.)")


def _unescape(body: str) -> str:
    """Decode \\\\, \\", \\n and \\t; any other backslash stays as written (so "\\boxed" is \\boxed)."""
    if "\\" not in body:
        return body
    return _ESCAPE_RE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), body)


@v_args(meta=True)
class _Builder(Transformer[Token, Any]):
    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file

    def _span(self, meta: Any) -> Span:
        return Span.from_meta(self.file, meta)

    def _ident(self, tok: Token) -> ast.Ident:
        return ast.Ident(name=str(tok), span=Span.from_token(self.file, tok))

    # ---------------------------------------------------------------- values
    def string(self, meta: Any, children: list[Token]) -> ast.Str:
        tok = children[0]
        raw = str(tok)
        if tok.type == "LONG_STRING":
            return ast.Str(value=long_string_value(raw), triple=True, span=self._span(meta))
        if "\n" in raw:  # pragma: no cover  (the lexer forbids it; kept as a guard)
            raise PartialDiagnostic("MOL003", "unterminated string")
        return ast.Str(value=_unescape(raw[1:-1]), span=self._span(meta))

    def number(self, meta: Any, children: list[Token]) -> ast.Num:
        raw = str(children[0])
        return ast.Num(value=float(raw), raw=raw, span=self._span(meta))

    def yes(self, meta: Any, children: list[Any]) -> ast.Bool:
        return ast.Bool(value=True, span=self._span(meta))

    def no(self, meta: Any, children: list[Any]) -> ast.Bool:
        return ast.Bool(value=False, span=self._span(meta))

    def ref(self, meta: Any, children: list[Token]) -> ast.Ref:
        return ast.Ref(name=str(children[0]), span=self._span(meta))

    def list(self, meta: Any, children: list[Any]) -> ast.ListV:
        return ast.ListV(items=tuple(c for c in children if c is not None), span=self._span(meta))

    def range(self, meta: Any, children: builtins.list[Token]) -> ast.RangeV:
        lo, hi = (ast.Num(value=float(t), raw=str(t), span=Span.from_token(self.file, t)) for t in children)
        return ast.RangeV(lo=lo, hi=hi, span=self._span(meta))

    # ---------------------------------------------------------------- blocks
    def assign(self, meta: Any, children: builtins.list[Any]) -> ast.Assign:
        return ast.Assign(key=self._ident(children[0]), value=children[1], span=self._span(meta))

    def section(self, meta: Any, children: builtins.list[Any]) -> ast.Section:
        key, label, body = children
        return ast.Section(key=self._ident(key), label=self._ident(label) if label is not None else None,
                           body=body, span=self._span(meta))

    def block(self, meta: Any, children: builtins.list[Any]) -> ast.Block:
        return ast.Block(props=tuple(children), span=self._span(meta))

    def arg(self, meta: Any, children: builtins.list[Any]) -> Any:
        return children[0]

    def kwarg(self, meta: Any, children: builtins.list[Any]) -> ast.Assign:
        return ast.Assign(key=self._ident(children[0]), value=children[1], span=self._span(meta))

    def call(self, meta: Any, children: builtins.list[Any]) -> ast.Call:
        args = [c for c in children[1:] if c is not None]
        return ast.Call(func=self._ident(children[0]),
                        args=tuple(a for a in args if not isinstance(a, ast.Assign)),
                        kwargs=tuple(a for a in args if isinstance(a, ast.Assign)), span=self._span(meta))

    # ---------------------------------------------------------------- items
    def version(self, meta: Any, children: builtins.list[Token]) -> ast.Num:
        return self.number(meta, children)

    def use(self, meta: Any, children: builtins.list[Any]) -> ast.Use:
        return ast.Use(path=children[0], span=self._span(meta))

    def dataset(self, meta: Any, children: builtins.list[Any]) -> ast.Dataset:
        return ast.Dataset(name=children[0], body=children[1], span=self._span(meta))

    def source(self, meta: Any, children: builtins.list[Any]) -> ast.Source:
        return ast.Source(name=self._ident(children[0]), call=children[1], body=children[2],
                          span=self._span(meta))

    def model(self, meta: Any, children: builtins.list[Any]) -> ast.Model:
        return ast.Model(name=self._ident(children[0]), body=children[1], span=self._span(meta))

    def bond(self, meta: Any, children: builtins.list[Any]) -> ast.Bond:
        name, kind, title, body = children
        return ast.Bond(name=self._ident(name), kind=self._ident(kind), title=title, body=body,
                        span=self._span(meta))

    def edge(self, meta: Any, children: builtins.list[Any]) -> ast.Edge:
        return ast.Edge(target=self._ident(children[0]), weight=children[1], span=self._span(meta))

    def row(self, meta: Any, children: builtins.list[Any]) -> ast.Row:
        return ast.Row(source=self._ident(children[0]), edges=tuple(children[1:]), span=self._span(meta))

    def graph(self, meta: Any, children: builtins.list[Any]) -> ast.Graph:
        name, mode, *stmts = children
        return ast.Graph(name=self._ident(name), mode=self._ident(mode) if mode is not None else None,
                         stmts=tuple(stmts), span=self._span(meta))

    def template(self, meta: Any, children: builtins.list[Any]) -> ast.Template:
        return ast.Template(name=self._ident(children[0]), body=children[1], span=self._span(meta))

    def answer(self, meta: Any, children: builtins.list[Any]) -> ast.Answer:
        return ast.Answer(body=children[0], span=self._span(meta))

    def output(self, meta: Any, children: builtins.list[Any]) -> ast.Output:
        return ast.Output(body=children[0], span=self._span(meta))

    def fidelity(self, meta: Any, children: builtins.list[Any]) -> ast.Fidelity:
        return ast.Fidelity(body=children[0], span=self._span(meta))

    def drop(self, meta: Any, children: builtins.list[Any]) -> ast.Drop:
        return ast.Drop(name=self._ident(children[0]), span=self._span(meta))

    def bond_patch(self, meta: Any, children: builtins.list[Any]) -> ast.BondPatch:
        return ast.BondPatch(name=self._ident(children[0]), body=children[1], span=self._span(meta))

    def variant(self, meta: Any, children: builtins.list[Any]) -> ast.Variant:
        name, title, *items = children
        return ast.Variant(name=self._ident(name), title=title, items=tuple(items), span=self._span(meta))

    def start(self, meta: Any, children: builtins.list[Any]) -> ast.File:
        version = children[0] if children and isinstance(children[0], ast.Num) else None
        items = tuple(c for c in children if c is not None and not isinstance(c, ast.Num))
        return ast.File(version=version, items=items, span=self._span(meta))


__all__ = ["build", "parse_file"]
