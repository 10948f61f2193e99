"""The one Jinja environment molspec renders prompts with: sandboxed, strict, and bounded.

A spec from a stranger must not be able to run code: the sandbox blocks attribute access to
internals (`__class__`, `mro`, ...), and StrictUndefined turns a misspelt variable into an error
instead of an empty string in the prompt. Nor may it exhaust the machine: powers, repetitions,
ranges, widths and the rendered text are capped, and a render stops after a budget of template
lines (see docs/limits.md). Every render of a spec's template goes through `render_template`,
which turns any failure into a located `TemplateRenderError`.
"""

from __future__ import annotations

import functools
import re
import sys
import time
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.runtime import Context, new_context
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range

from molspec.diagnostics import Diagnostic, Label, MolspecError, Span
from molspec.template_bound import TRACE_FREE, Shape, shape_of

MAX_RENDERED = 1_000_000  # characters of one rendered prompt
MAX_REPEAT = 100_000  # items or characters made by `*` (and by a width, padding or count argument)
MAX_POWER_BITS = 4_096  # bits of an integer `**` result
MAX_RANGE = 10_000  # items of range()
MAX_LINES = 250_000  # template lines executed by one render (loops, macros)
MAX_SECONDS = 2.0  # CPU time of one render (CPU, not wall: a busy machine must not fail a render)
MAX_NESTING = 40  # blocks and brackets a template may nest (Jinja recurses on them; Python caps indentation)
_TEMPLATE_FILE = "<template>"  # the file name Jinja compiles `from_string` templates under
_WIDTH_METHODS = ("center", "ljust", "rjust", "zfill", "expandtabs")
_FORMAT_FIELD = re.compile(r"\{[^{}]*\}")
_PERCENT_SPEC = re.compile(r"%[-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[a-zA-Z]")


class TemplateLimitError(SecurityError):
    """A template went past one of the limits above (a Jinja error, so the sandbox's callers see it)."""


def _refuse(what: str, limit: int | float) -> TemplateLimitError:
    return TemplateLimitError(f"{what} (the limit is {limit:,})")


def _check_ints(args: tuple[Any, ...], kwargs: Mapping[str, Any], what: str) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_REPEAT:
            raise _refuse(f"{what} is given {value:,}", MAX_REPEAT)


def _sized(value: Any) -> int:
    return len(value) if isinstance(value, (str, list, tuple)) else 1


def _repeat(a: Any, b: Any) -> Any:
    seq, n = (a, b) if isinstance(b, int) else (b, a)
    if isinstance(n, int) and isinstance(seq, (str, list, tuple)) and _sized(seq) * max(n, 0) > MAX_REPEAT:
        raise _refuse(f"a repetition would make {_sized(seq) * n:,} items", MAX_REPEAT)
    return a * b


def _power(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
        if b * a.bit_length() > MAX_POWER_BITS:
            raise _refuse(f"{a} ** {b} is too large a number", MAX_POWER_BITS)
    return a**b


def _percent(a: Any, b: Any) -> Any:
    if isinstance(a, str):
        _check_format_widths(a, _PERCENT_SPEC.findall(a))
        _check_ints(b if isinstance(b, tuple) else (b,), {}, "a '*' width in % formatting")
    return a % b


def _check_format_widths(text: str, fields: list[str]) -> None:
    for field in fields:
        for digits in re.findall(r"\d+", field.partition(":")[2] if field.startswith("{") else field):
            if len(digits) > 6 or int(digits) > MAX_REPEAT:
                raise _refuse(f"a format width of {digits}", MAX_REPEAT)


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {"*": _repeat, "**": _power, "%": _percent}


def _bounded_range(*args: int) -> range:
    size = len(range(*args))
    if size > MAX_RANGE:
        raise _refuse(f"range() of {size:,} items", MAX_RANGE)
    return safe_range(*args)


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        _check_ints(args[1:] if args and isinstance(args[0], Context) else args, kwargs, f"the {name} filter")
        return func(*args, **kwargs)

    return call


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with bounded `*`, `**`, `%`, range(), lipsum(), widths and filter arguments.

    Intercepting the operators also stops Jinja from folding `3 ** 999999999` at compile time.
    """

    intercepted_binops = frozenset(_BINOPS)

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False,
                         trim_blocks=True, lstrip_blocks=True)
        self.globals["range"] = _bounded_range
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.template_class = BoundedTemplate

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return _BINOPS[operator](left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        name = getattr(__obj, "__name__", "")
        if name == "generate_lorem_ipsum" or (isinstance(__obj, types.BuiltinMethodType)
                                              and isinstance(__obj.__self__, str) and name in _WIDTH_METHODS):
            _check_ints(args, kwargs, "lipsum()" if name == "generate_lorem_ipsum" else f"{name}()")
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        _check_format_widths(value.__self__, _FORMAT_FIELD.findall(value.__self__))
        return wrapped


class BoundedTemplate(Template):
    """A template whose `render` streams under the size and line budgets.

    `shape` (set by `compile_template`) bounds a render's trace events from the generated code: a render
    proven to stay under TRACE_FREE events, where the line budget can never act, runs without its trace."""

    shape: Shape | None = None
    _flat_globals: dict[str, Any] | None = None

    def render(self, *args: Any, **kwargs: Any) -> str:
        variables = dict(*args, **kwargs)
        # Jinja's `new_context`, but its globals (a ChainMap that Jinja copies key by key, in Python, at every
        # render) read once: the sandbox's globals are set when the environment is made and never change.
        if self._flat_globals is None:
            self._flat_globals = dict(self.globals)
        ctx = new_context(self.environment, self.name, self.blocks, variables, False, self._flat_globals, None)
        traced = self.shape is None or self.shape.bound(variables) >= TRACE_FREE
        try:
            return "".join(_budgeted(self.root_render_func(ctx))) if traced else _untraced(self.root_render_func(ctx))
        except Exception:  # noqa: BLE001  (Jinja's own handler rewrites the traceback to template lines)
            self.environment.handle_exception()


def _untraced(chunks: Iterator[str]) -> str:
    """The chunks of a render joined, under the size budget (what `_budgeted` does, without the trace)."""
    parts: list[str] = []
    keep, size = parts.append, 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_RENDERED:
            raise _refuse(f"the rendered text passes {MAX_RENDERED:,} characters", MAX_RENDERED)
        keep(chunk)
    return "".join(parts)


def _budgeted(chunks: Iterator[str]) -> Iterator[str]:
    """The chunks of a render, counting its size, and its template lines through a trace function."""
    budget = _LineBudget()
    previous = sys.gettrace()
    sys.settrace(budget.on_call)
    size = 0
    try:
        for chunk in chunks:
            size += len(chunk)
            if size > MAX_RENDERED:
                raise _refuse(f"the rendered text passes {MAX_RENDERED:,} characters", MAX_RENDERED)
            yield chunk
    finally:
        sys.settrace(previous)


class _LineBudget:
    """Counts the lines of template code executed (only frames compiled from a template are traced)."""

    def __init__(self) -> None:
        self.lines = 0
        self.deadline = time.thread_time() + MAX_SECONDS

    def on_call(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        return self.on_line if frame.f_code.co_filename == _TEMPLATE_FILE else None

    def on_line(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        self.lines += 1
        if self.lines > MAX_LINES:
            raise _refuse("the template runs too long: more than 250,000 template lines", MAX_LINES)
        if self.lines % 4096 == 0 and time.thread_time() > self.deadline:
            raise _refuse(f"the template runs longer than {MAX_SECONDS} s of CPU time", MAX_SECONDS)
        return self.on_line


@functools.cache
def environment() -> BoundedEnvironment:
    return BoundedEnvironment()


_NESTING = re.compile(r"\{%-?\s*(end)?(\w+)|-?%\}|[(\[{]|[)\]}]")


def nesting_depth(source: str) -> int:
    """How deep `{% %}` blocks and brackets nest (an estimate that ignores strings; errs high)."""
    depth = top = 0
    for m in _NESTING.finditer(source):
        if m.group(2) is not None:
            opener = m.group(2) in ("for", "if", "macro", "call", "filter", "block", "with", "set")
            depth += -1 if m.group(1) else (1 if opener and not _inline_set(source, m.end()) else 0)
        elif m.group(0) in "([{":
            depth += 1
        elif m.group(0) in ")]}":
            depth -= 1
        top = max(top, depth)
    return top


def _inline_set(source: str, at: int) -> bool:
    """`{% set x = ... %}` is one tag; only `{% set x %}...{% endset %}` opens a block."""
    end = source.find("%}", at)
    return source.startswith("set", at - 3) and "=" in source[at:end if end != -1 else len(source)]


@functools.lru_cache(maxsize=256)
def compile_template(source: str) -> BoundedTemplate:
    """Compile once per distinct source (the runtime renders the same few templates millions of times).

    Raises:
        TemplateLimitError: the template nests deeper than MAX_NESTING.
        jinja2.TemplateSyntaxError: it does not parse.
    """
    depth = nesting_depth(source)
    if depth > MAX_NESTING:
        raise _refuse(f"the template nests {depth} blocks or brackets deep", MAX_NESTING)
    try:
        template = environment().from_string(source)
        python = str(environment().compile(source, raw=True))
    except (RecursionError, SyntaxError):  # Python's parser refuses deep nesting of the generated code
        raise _refuse("the template nests too deeply", MAX_NESTING) from None
    assert isinstance(template, BoundedTemplate)
    template.shape = shape_of(python, template.root_render_func.__code__, template.blocks)
    return template


class TemplateRenderError(MolspecError):
    """A template of the spec failed to render: one diagnostic (MOL305 or MOL306) at the template.

    Attributes:
        template: which template ("step", "answer", "system", "bond 'deep'").
        reason: what went wrong, without location.
        span: where the template (or the failing line in it) is in the spec, when known.
    """

    def __init__(self, diagnostic: Diagnostic, sources: dict[str, str] | None, template: str, reason: str) -> None:
        super().__init__([diagnostic], sources)
        self.template, self.reason, self.span = template, reason, diagnostic.span

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.diagnostics[0], self.sources, self.template, self.reason))


def render_template(source: str, context: Mapping[str, Any], name: str = "template", span: Span | None = None,
                    files: Mapping[str, str] | None = None) -> str:
    """Render a spec's template under every limit.

    Args:
        source: the template text; context: its variables.
        name: which template, for the message; span: the template's string in the spec (from
            `Spec.templates.spans` or `BondSpec.template_span`); files: the spec's files, to point at
            the failing line.

    Raises:
        TemplateRenderError: any failure (syntax, undefined field, sandbox, limit), located.
    """
    try:
        template = compile_template(source)
        return template.render(**context)
    except (TemplateError, RecursionError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
        raise render_error(exc, source, name, span, files) from None


def render_error(exc: BaseException, source: str, name: str, span: Span | None,
                 files: Mapping[str, str] | None) -> TemplateRenderError:
    """The located error for an exception raised while compiling or rendering `source`."""
    reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if isinstance(exc, RecursionError):
        reason = "the template recurses or nests too deeply"
    limit = isinstance(exc, (TemplateLimitError, RecursionError))
    text = (files or {}).get(span.file) if span is not None else None
    where = span or Span(f"<{name} template>", 0, 0, 1, 1)
    lineno = _template_line(exc)
    if span is not None and text is not None and lineno is not None:
        where = template_line_span(text, span, source, lineno)
    code, what = ("MOL306", "goes past a limit") if limit else ("MOL305", "fails to render")
    diag = Diagnostic(code, f"the {name} template {what}: {reason}", Label(where, "while rendering this"),
                      help="see docs/limits.md for the template limits" if limit else
                      "fix the template; `molspec check` renders it on the first, a middle and the last step")
    return TemplateRenderError(diag, dict(files or {}), name, reason)


def _template_line(exc: BaseException) -> int | None:
    """The template line an exception was raised on (Jinja rewrites tracebacks to template lines)."""
    line = getattr(exc, "lineno", None)
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _TEMPLATE_FILE:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line if isinstance(line, int) else None


def template_body_start(text: str, span: Span) -> int:
    """Offset of a template's first character in the spec: after the quotes, and after a newline
    right after triple quotes (which the language drops)."""
    if not text.startswith('"""', span.start):
        return span.start + 1
    start = span.start + 3
    for newline in ("\r\n", "\n"):
        if text.startswith(newline, start):
            return start + len(newline)
    return start


def template_line_span(text: str, span: Span, source: str, lineno: int) -> Span:
    """The span of line `lineno` (1-based, as Jinja counts) of the template at `span` in `text`."""
    lines = source.split("\n")
    k = max(1, min(lineno, len(lines)))
    start = template_body_start(text, span) + sum(len(line) + 1 for line in lines[: k - 1])
    return Span.at(span.file, text, start, start + max(1, len(lines[k - 1])))


__all__ = ["MAX_LINES", "MAX_NESTING", "MAX_RANGE", "MAX_RENDERED", "MAX_REPEAT", "TemplateLimitError",
           "TemplateRenderError", "compile_template", "environment", "render_template"]
