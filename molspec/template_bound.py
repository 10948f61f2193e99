"""A static bound on the trace events of one render, so that most renders can skip the line budget's trace.

The line budget (`templating._LineBudget`) traces every render: its trace function runs on every Python call
and on every event of a template frame, and costs three quarters of a render of the default step template.
It can only stop a render that reaches 4,096 counted events: its line limit is far above that, and it reads
the CPU clock only every 4,096 events. This module proves from the Python code Jinja generated that a render
stays below that, in which case the trace would never act and `render` skips it.

The proof. The trace counts the events of template frames: at most one line event per executed instruction,
plus a return event per executed yield or return, plus an exception event per raise (caught only in `try`
bodies, which run once; one more ends the render). The generated code has a single template frame, `root`,
when it defines no blocks, macros, call blocks or recursive loops: any nested function other than the stubs
of a missing filter or test (which raise) refuses the proof. Each instruction of `root` runs at most once,
except inside `for` loops, where it runs once per item plus once. A loop is bounded only when it iterates a
context variable the template never rebinds, given as a list or tuple; any other loop, and while loops,
comprehensions, `yield from`, break and continue, refuse the proof, and the render is traced as before.
"""

from __future__ import annotations

import ast
import dis
import math
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TRACE_FREE = 4096  # events below which the budget's trace can never act (templating._LineBudget.on_line)
_REFUSED = (ast.While, ast.AsyncFor, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Lambda,
            ast.YieldFrom, ast.Await, ast.ClassDef, ast.AsyncFunctionDef, ast.Break, ast.Continue, ast.Global,
            ast.Nonlocal)
_PLAIN = frozenset((str, int, float, bool, type(None), list, tuple, dict))  # values that cannot run template code


@dataclass(frozen=True, slots=True)
class Loop:
    """A `for` over the context variable `var`: its own weighted instructions, and the loops inside it."""

    var: str
    own: int
    inner: tuple[Loop, ...]


@dataclass(frozen=True, slots=True)
class Shape:
    """The weighted instructions of a template's `root` outside every loop, and its loops."""

    base: int
    loops: tuple[Loop, ...]

    def bound(self, context: Mapping[str, Any]) -> float:
        """Events a render with `context` can reach at most (infinity: not bounded)."""
        if not _PLAIN.issuperset(map(type, context.values())):
            return math.inf
        return self.base + sum(_cost(loop, context, 1) for loop in self.loops)


def _cost(loop: Loop, context: Mapping[str, Any], runs: int) -> float:
    items = context.get(loop.var)
    if not isinstance(items, (list, tuple)) or type(items) not in (list, tuple):  # a subclass could iterate more
        return math.inf
    runs *= len(items) + 1
    return runs * loop.own + sum(_cost(inner, context, runs) for inner in loop.inner)


def shape_of(python_source: str, root: types.CodeType, blocks: Mapping[str, Any]) -> Shape | None:
    """The shape of a compiled template (`python_source`: Jinja's generated code for it), or None when its
    renders cannot be bounded statically."""
    if blocks:
        return None
    tree = ast.parse(python_source)
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "root"), None)
    if fn is None or fn.lineno != root.co_firstlineno or _defines_functions(tree, fn):
        return None
    loops = _loops(fn)
    if loops is None or any(isinstance(n, _REFUSED) or _nested_def(n) for n in ast.walk(fn)):
        return None
    if any(isinstance(t, ast.Try) for loop in _all_fors(fn) for t in ast.walk(loop)):
        return None  # a caught exception inside a loop could fire once per item
    instructions = list(dis.get_instructions(root))
    stubs = [c for c in root.co_consts if isinstance(c, types.CodeType)]
    if any(isinstance(c, types.CodeType) for s in stubs for c in s.co_consts):
        return None
    fors = [range(f.lineno, (f.end_lineno or f.lineno) + 1) for f in _all_fors(fn)]
    jumps = [range(i.argval, i.offset + 1) for i in instructions
             if i.opcode in dis.hasjrel + dis.hasjabs and i.argval <= i.offset]
    tries = [range(t.lineno, (t.body[-1].end_lineno or t.lineno) + 1) for t in ast.walk(fn) if isinstance(t, ast.Try)]
    weights: dict[int | None, int] = {}
    for ins in instructions:
        line = ins.positions.lineno if ins.positions else None
        # an instruction repeated by a loop must sit on that loop's lines, or the loop's factor would miss it
        if sum(ins.offset in j for j in jumps) > sum(line in f for f in fors):
            return None
        weight = 1 + ("RETURN" in ins.opname or "YIELD" in ins.opname or line is None) + any(line in r for r in tries)
        weights[line] = weights.get(line, 0) + weight
    stub_weight = sum(2 * len(list(dis.get_instructions(s))) for s in stubs)
    top = _Weigher(weights, _resolved(fn))
    built = tuple(top.loop(node) for node in loops)
    return Shape(top.rest() + stub_weight + 1, built)  # + 1: the exception event that ends a failed render


class _Weigher:
    """Splits the instruction weights by line between the loops that own the lines."""

    def __init__(self, weights: dict[int | None, int], resolved: Mapping[str, str]) -> None:
        self.left = dict(weights)
        self.resolved = resolved

    def loop(self, node: ast.For) -> Loop:
        inner = tuple(self.loop(n) for n in _direct_loops(node))  # inner loops take their lines first
        lines = range(node.lineno, (node.end_lineno or node.lineno) + 1)
        own = sum(self.left.pop(line, 0) for line in lines)
        var = _iterated(node.iter, self.resolved)
        assert var is not None  # checked by _loops
        return Loop(var, own, inner)

    def rest(self) -> int:
        return sum(self.left.values())


def _defines_functions(tree: ast.Module, root: ast.FunctionDef) -> bool:
    return any(isinstance(n, ast.FunctionDef) and n is not root for n in tree.body)


def _nested_def(node: ast.AST) -> bool:
    """A function defined inside `root`, other than a stub that only raises (Jinja's missing filter or test)."""
    if not isinstance(node, ast.FunctionDef):
        return False
    return node.name != "root" and not (len(node.body) == 1 and isinstance(node.body[0], ast.Raise))


def _all_fors(fn: ast.FunctionDef) -> list[ast.For]:
    return [n for n in ast.walk(fn) if isinstance(n, ast.For)]


def _loops(fn: ast.FunctionDef) -> list[ast.For] | None:
    """The outermost loops of `root`; None if any loop iterates anything but a context variable."""
    resolved = _resolved(fn)
    if any(_iterated(loop.iter, resolved) is None for loop in _all_fors(fn)):
        return None
    return _direct_loops(fn)


def _direct_loops(node: ast.AST) -> list[ast.For]:
    """The loops directly inside `node` (not inside another loop)."""
    out: list[ast.For] = []
    for child in ast.iter_child_nodes(node):
        out += [child] if isinstance(child, ast.For) else _direct_loops(child)
    return out


def _resolved(fn: ast.FunctionDef) -> dict[str, str]:
    """Locals bound once, as `l_0_x = resolve('x')`, and otherwise only reset to `missing` (the end of a loop
    scope; a loop over it then fails): local name -> context variable."""
    resets = {id(t) for n in ast.walk(fn) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Name)
              and n.value.id == "missing" for t in n.targets}
    stores: dict[str, int] = {}
    for n in ast.walk(fn):
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)) and id(n) not in resets:
            stores[n.id] = stores.get(n.id, 0) + 1
    out: dict[str, str] = {}
    for n in ast.walk(fn):
        if (isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)
                and isinstance(n.value, ast.Call) and isinstance(n.value.func, ast.Name)
                and n.value.func.id == "resolve" and len(n.value.args) == 1 and not n.value.keywords
                and isinstance(n.value.args[0], ast.Constant) and isinstance(n.value.args[0].value, str)
                and stores.get(n.targets[0].id) == 1):
            out[n.targets[0].id] = n.value.args[0].value
    return out


def _iterated(expr: ast.expr, resolved: Mapping[str, str]) -> str | None:
    """The context variable a loop iterates: `l_0_x`, or `(undefined(name='x') if l_0_x is missing else l_0_x)`."""
    if isinstance(expr, ast.IfExp) and isinstance(expr.orelse, ast.Name):
        test = expr.test
        if not (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == expr.orelse.id
                and isinstance(test.ops[0], ast.Is) and isinstance(expr.body, ast.Call)
                and isinstance(expr.body.func, ast.Name) and expr.body.func.id == "undefined"):
            return None
        expr = expr.orelse
    if isinstance(expr, ast.Name) and expr.id in resolved:
        return resolved[expr.id]
    return None

