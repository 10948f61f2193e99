"""AST (+ comments) -> canonical .mol text. Idempotent; every comment is kept.

Layout rules: `molspec 1` first; items in source order, one blank line between them except runs of
one-line `use` and `bond` items; blocks on one line when short and comment-free, else one property
per line with two-space indentation; graph rows with their `->` aligned.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lark import Token

from molspec.lang import ast
from molspec.lang.build import build
from molspec.lang.files import spec_text
from molspec.lang.syntax import parse

INDENT = "  "
WIDTH = 110
_BLANK = re.compile(r"\n[ \t\f\r]*\n")


def format_text(text: str, file: str = "<string>") -> str:
    """Format .mol text (read as `load` reads it: no BOM, lone CRs as line ends).

    Raises:
        MolspecError: the text does not parse.
    """
    text = spec_text(text)
    comments: list[Token] = []
    tree = parse(text, file, comments)
    return Formatter(text, comments).file(build(tree, file, text))


def quote(value: str) -> str:
    """A string literal for `value` that parses back to it."""
    body = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{body}"'


def value_text(v: ast.Value) -> str:
    if isinstance(v, ast.Str):
        if v.triple:  # multi-line text starts on its own line (the parser drops that first newline)
            return '"""' + ("\n" if "\n" in v.value or v.value.startswith("\r") else "") + v.value + '"""'
        return quote(v.value)
    if isinstance(v, ast.Num):
        return v.raw
    if isinstance(v, ast.Bool):
        return "true" if v.value else "false"
    if isinstance(v, ast.Ref):
        return v.name
    if isinstance(v, ast.ListV):
        return "[" + ", ".join(value_text(i) for i in v.items) + "]"
    return f"{v.lo.raw}..{v.hi.raw}"


class Formatter:
    """Writes nodes line by line, placing pending comments before or after the lines they sat on."""

    def __init__(self, text: str, comments: Sequence[Token]) -> None:
        self.text = text
        self.pending = sorted(comments, key=lambda t: t.start_pos or 0)
        self.lines: list[str] = []

    # ---------------------------------------------------------------- comment placement
    def _line_of(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1

    def _leading(self, before: int, indent: str) -> None:
        """Emit the comments that come before offset `before`, keeping one blank line wherever the
        source had at least one between two comments or between the last comment and the node."""
        last_end: int | None = None
        while self.pending and (self.pending[0].start_pos or 0) < before:
            tok = self.pending.pop(0)
            if last_end is not None and self._blank_between(last_end, tok.start_pos or 0):
                self.lines.append("")
            self.lines.append(indent + str(tok).rstrip())
            last_end = tok.end_pos or 0
        if last_end is not None and self._blank_between(last_end, before):
            self.lines.append("")

    def _blank_between(self, a: int, b: int) -> bool:
        return _BLANK.search(self.text, a, max(a, b)) is not None

    def _trailing(self, end: int, limit: int | None = None) -> None:
        """Append a comment that sits on the line where offset `end` is (and before `limit`)."""
        if not self.pending:
            return
        tok = self.pending[0]
        pos = tok.start_pos or 0
        if self._line_of(pos) == self._line_of(max(end - 1, 0)) and (limit is None or pos < limit):
            self.lines[-1] += "  " + str(self.pending.pop(0)).rstrip()

    def _has_comment(self, node: ast.Node) -> bool:
        return any(node.sp.start <= (t.start_pos or 0) < node.sp.end for t in self.pending)

    def _emit(self, indent: str, text: str, node: ast.Node) -> None:
        self._leading(node.sp.start, indent)
        self.lines.append(indent + text)
        self._trailing(node.sp.end)

    # ---------------------------------------------------------------- items
    def file(self, f: ast.File) -> str:
        if f.version is not None:
            self._emit("", f"molspec {f.version.raw}", f.version)
        self._items(f.items, "")
        if self.pending and self.lines:
            self.lines.append("")
        self._leading(len(self.text) + 1, "")
        return "\n".join(self.lines).rstrip("\n") + "\n"

    def _items(self, items: Sequence[ast.VariantItem], indent: str) -> None:
        """Items with one blank line between them, except runs of one-line `use`, `bond` and `drop` items."""
        prev: ast.VariantItem | None = None
        for item in items:
            grouped = (prev is not None and type(prev) is type(item) and self._one_line_item(item, indent)
                       and self._one_line_item(prev, indent))
            if prev is not None and not grouped or prev is None and self.lines and not indent:
                self.lines.append("")
            self._item(item, indent)
            prev = item

    def _one_line_item(self, item: ast.VariantItem, indent: str) -> bool:
        if isinstance(item, (ast.Use, ast.Drop)):
            return True
        if isinstance(item, (ast.Bond, ast.BondPatch)):
            head, body = self._head(item)
            return body is None or self._fits(indent, head, body)
        return False

    def _fits(self, indent: str, head: str, body: ast.Block) -> bool:
        inline = self._inline(body)
        return inline is not None and len(indent + head) + 1 + len(inline) <= WIDTH

    def _item(self, item: ast.VariantItem, indent: str) -> None:
        if isinstance(item, ast.Use):
            self._emit(indent, f"use {value_text(item.path)}", item)
        elif isinstance(item, ast.Drop):
            self._emit(indent, f"drop {item.name.name}", item)
        elif isinstance(item, ast.Graph):
            self._graph(item, indent)
        elif isinstance(item, ast.Template):
            self._emit(indent, f"template {item.name.name} {value_text(item.body)}", item)
        elif isinstance(item, ast.Variant):
            self._variant(item, indent)
        else:
            head, body = self._head(item)
            self._block(head, body, item, indent)

    def _variant(self, v: ast.Variant, indent: str) -> None:
        """On one line when empty or only drops (`{ drop reflect }`), else one item per line."""
        title = f" {value_text(v.title)}" if v.title is not None else ""
        head = f"variant {v.name.name}{title}"
        drops = [i.name.name for i in v.items if isinstance(i, ast.Drop)]
        if not self._has_comment(v) and len(drops) == len(v.items):
            inline = head + (" { " + "  ".join(f"drop {d}" for d in drops) + " }" if drops else " {}")
            if len(indent + inline) <= WIDTH:
                self._emit(indent, inline, v)
                return
        self._leading(v.sp.start, indent)
        self.lines.append(f"{indent}{head} {{")
        first = v.items[0].sp.start if v.items else v.sp.end
        self._trailing(v.name.sp.end, limit=first)
        self._items(v.items, indent + INDENT)
        self._close(v.sp.end, indent, v)

    def _head(self, item: ast.VariantItem) -> tuple[str, ast.Block | None]:
        if isinstance(item, ast.Dataset):
            return f"dataset {value_text(item.name)}", item.body
        if isinstance(item, ast.Source):
            return f"source {item.name.name} = {self._call(item.call)}", item.body
        if isinstance(item, ast.Model):
            return f"model {item.name.name}", item.body
        if isinstance(item, ast.Bond):
            title = f" {value_text(item.title)}" if item.title is not None else ""
            return f"bond {item.name.name} : {item.kind.name}{title}", item.body
        if isinstance(item, ast.BondPatch):
            return f"bond {item.name.name}", item.body
        if isinstance(item, ast.Answer):
            return "answer", item.body
        if isinstance(item, ast.Fidelity):
            return "fidelity", item.body
        assert isinstance(item, ast.Output)
        return "output", item.body

    def _call(self, c: ast.Call) -> str:
        args = [value_text(a) for a in c.args] + [f"{k.key.name} = {value_text(k.value)}" for k in c.kwargs]
        return f"{c.func.name}({', '.join(args)})"

    # ---------------------------------------------------------------- blocks
    def _inline(self, block: ast.Block) -> str | None:
        """The block on one line, or None when it must span lines."""
        if self._has_comment(block) or any(isinstance(p, ast.Section) for p in block.props):
            return None
        if any(isinstance(p.value, ast.Str) and p.value.triple for p in block.props  # type: ignore[union-attr]
               ):
            return None
        if len(block.props) > 4:
            return None
        if not block.props:
            return "{ }"
        return "{ " + "  ".join(self._prop_text(p) for p in block.props) + " }"  # type: ignore[arg-type]

    def _prop_text(self, p: ast.Assign) -> str:
        return f"{p.key.name} = {value_text(p.value)}"

    def _block(self, head: str, body: ast.Block | None, node: ast.Node, indent: str) -> None:
        if body is None:
            self._emit(indent, head, node)
            return
        if self._fits(indent, head, body):
            self._emit(indent, f"{head} {self._inline(body)}", node)
            return
        self._leading(node.sp.start, indent)
        self.lines.append(f"{indent}{head} {{")
        first = body.props[0].sp.start if body.props else body.sp.end
        self._trailing(body.sp.start + 1, limit=first)
        for prop in body.props:
            self._prop(prop, indent + INDENT)
        self._close(body.sp.end, indent, node)

    def _close(self, end: int, indent: str, node: ast.Node) -> None:
        self._leading(end - 1, indent + INDENT)
        self.lines.append(indent + "}")
        self._trailing(node.sp.end)

    def _prop(self, prop: ast.Prop, indent: str) -> None:
        if isinstance(prop, ast.Section):
            label = f" {prop.label.name}" if prop.label is not None else ""
            self._block(f"{prop.key.name}{label}", prop.body, prop, indent)
        else:
            self._emit(indent, self._prop_text(prop), prop)

    # ---------------------------------------------------------------- graphs
    def _graph(self, g: ast.Graph, indent: str) -> None:
        mode = f" : {g.mode.name}" if g.mode is not None else ""
        self._leading(g.sp.start, indent)
        self.lines.append(f"{indent}graph {g.name.name}{mode} {{")
        first = g.stmts[0].sp.start if g.stmts else g.sp.end
        self._trailing(g.name.sp.end, limit=first)
        width = max((len(s.source.name) for s in g.stmts if isinstance(s, ast.Row)), default=0)
        for stmt in g.stmts:
            if isinstance(stmt, ast.Row):
                edges = " | ".join(f"{e.target.name} {value_text(e.weight)}" for e in stmt.edges)
                self._emit(indent + INDENT, f"{stmt.source.name.ljust(width)} -> {edges}", stmt)
            else:
                self._prop(stmt, indent + INDENT)
        self._close(g.sp.end, indent, g)
