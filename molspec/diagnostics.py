"""Spans, diagnostics and their rendering: the one error model every stage shares.

Conventions (fixed here, used everywhere):
    * `Span.start` / `Span.end` are character offsets into the file's text, half-open.
    * `Span.line` / `Span.col` are 1-based (the first character of a file is line 1, col 1).
This module imports nothing from molspec.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Span:
    """A region of one source file.

    Attributes:
        file: the path as the user gave it (shown in messages).
        start: offset of the first character, 0-based.
        end: offset just after the last character (half-open).
        line: 1-based line of `start`.
        col: 1-based column of `start`.
    """

    file: str
    start: int
    end: int
    line: int
    col: int

    @staticmethod
    def from_meta(file: str, meta: Any) -> Span:
        """Span of a lark tree node (needs `propagate_positions=True`)."""
        if getattr(meta, "empty", True):
            return Span(file, 0, 0, 1, 1)
        return Span(file, meta.start_pos, meta.end_pos, meta.line, meta.column)

    @staticmethod
    def from_token(file: str, tok: Any) -> Span:
        """Span of a lark token."""
        return Span(file, tok.start_pos or 0, tok.end_pos or 0, tok.line or 1, tok.column or 1)

    @staticmethod
    def at(file: str, text: str, start: int, end: int | None = None) -> Span:
        """Span from offsets, computing line and column from the text."""
        start = max(0, min(start, len(text)))
        line = text.count("\n", 0, start) + 1
        col = start - (text.rfind("\n", 0, start) + 1) + 1
        return Span(file, start, start if end is None else end, line, col)

    def sort_key(self) -> tuple[str, int, int]:
        return (self.file, self.start, self.end)


class Severity(enum.Enum):
    """How bad a diagnostic is; only errors fail `check`."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class Label:
    """A span with a short text: the primary label points at the problem, secondary ones give context."""

    span: Span
    text: str = ""


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding about a spec.

    Attributes:
        code: stable id, e.g. "MOL104"; documented in docs/diagnostics.md.
        message: one line that makes sense on its own (no location in it).
        primary: where the problem is.
        severity: error, warning or note.
        secondary: related places (the first definition of a duplicate, ...).
        help: one line saying what to do.
        notes: further facts.
    """

    code: str
    message: str
    primary: Label
    severity: Severity = Severity.ERROR
    secondary: tuple[Label, ...] = ()
    help: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def span(self) -> Span:
        return self.primary.span

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


class MolspecError(Exception):
    """The one exception type for bad input: carries the diagnostics that explain it.

    Attributes:
        diagnostics: at least one; sorted by position.
        sources: file path -> text, so the error can render itself away from the loader.
    """

    def __init__(self, diagnostics: Sequence[Diagnostic], sources: dict[str, str] | None = None) -> None:
        self.diagnostics = tuple(sorted(diagnostics, key=lambda d: d.span.sort_key()))
        self.sources = dict(sources or {})
        super().__init__(self.short())

    def short(self) -> str:
        return "\n".join(render_short(d) for d in self.diagnostics)

    def render(self, color: bool = False, limit: int | None = 50) -> str:
        return render_all(self.diagnostics, self.sources, color=color, limit=limit)

    # Exceptions with custom __init__ signatures do not survive pickling by default
    # (https://bugs.python.org/issue1692335); workers of `datasets.map(num_proc=...)` pickle them.
    def __reduce__(self) -> tuple[type[MolspecError], tuple[Any, ...]]:
        return (type(self), (self.diagnostics, self.sources))


NOWHERE = Span("", 0, 0, 1, 1)  # the span of a diagnostic about no place in a file (a folder, an engine, the Hub)


class PlainError(MolspecError):
    """A MolspecError about no place in a spec: one diagnostic with the class's `code`, a message and a help.

    Subclasses (StoreError, EngineError, PushError, ...) only set `code`; `message` and `help` stay readable."""

    code: str  # each subclass sets its own, documented in docs/diagnostics.md

    def __init__(self, message: str, help: str | None = None, where: Span | None = None) -> None:
        self.message, self.help = message, help
        super().__init__([Diagnostic(self.code, message, Label(where or NOWHERE), help=help)])

    def __str__(self) -> str:
        return f"{self.message}; {self.help}" if self.help else self.message

    def __reduce__(self) -> tuple[type[PlainError], tuple[Any, ...]]:
        return (type(self), (self.message, self.help))


@dataclass
class PartialDiagnostic(Exception):
    """Raised where the position is not known; the caller that knows it turns it into a Diagnostic."""

    code: str
    message: str
    help: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def at(self, span: Span) -> Diagnostic:
        return Diagnostic(self.code, self.message, Label(span), help=self.help, notes=self.notes)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean' hint, or None when nothing is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None


# ---------------------------------------------------------------- rendering

_COLORS = {Severity.ERROR: "\x1b[1;31m", Severity.WARNING: "\x1b[1;33m", Severity.NOTE: "\x1b[1;36m"}
_BOLD, _BLUE, _RESET = "\x1b[1m", "\x1b[1;34m", "\x1b[0m"


MAX_MESSAGE = 400  # characters of a message, help or note (they quote names from the spec)


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` on one line, control characters made visible, cut to `limit` characters."""
    text = text.replace("\t", " ").translate(_VISIBLE)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_short(d: Diagnostic) -> str:
    """`file:line:col: severity[CODE]: message` on one line."""
    s = d.span
    where = f"{clip(s.file)}:{s.line}:{s.col}: " if s.file else ""
    return f"{where}{d.severity.value}[{d.code}]: {clip(d.message)}"


MAX_SHOWN = 160  # characters of a source line shown in a diagnostic (a 1 MB token prints one window)
_CONTEXT = 40  # characters kept before a span that starts far into a long line
# Shown in place of characters that would move the terminal's cursor (one character each, so the
# caret stays under the right column): C0 controls as their Unicode pictures, other line separators.
_VISIBLE = {**{i: 0x2400 + i for i in range(32) if i != 9}, 0x7F: 0x2421, 0x85: 0x2424, 0x2028: 0x2424,
            0x2029: 0x2424}


def line_text(text: str, line: int) -> str:
    """Line `line` (1-based) of `text`. Lines end at "\n" only, as lark and `Span.at` count them; the
    "\r" of a CRLF ending is not part of the line."""
    start = 0
    for _ in range(line - 1):
        start = text.find("\n", start) + 1
        if start == 0:
            return ""
    end = text.find("\n", start)
    src = text[start:] if end == -1 else text[start:end]
    return src[:-1] if src.endswith("\r") else src


def _window(src: str, col: int) -> tuple[str, int]:
    """The part of a long line shown around column `col` (1-based), and the index it starts at."""
    if len(src) <= MAX_SHOWN:
        return src, 0
    first = 0 if col - 1 <= MAX_SHOWN - _CONTEXT else col - 1 - _CONTEXT
    shown = ("…" if first else "") + src[first:first + MAX_SHOWN] + ("…" if first + MAX_SHOWN < len(src) else "")
    return shown, first


def _shown_line(text: str, line: int, col: int) -> tuple[str, int]:
    src, first = _window(line_text(text, line), col)
    return src.expandtabs(4).translate(_VISIBLE), first


def _underline(text: str, label: Label, mark: str, first: int) -> str:
    """The caret line under `label`, for a line shown from index `first` (tabs expanded as shown)."""
    src = line_text(text, label.span.line)
    lead = "…" if first else ""
    prefix = (lead + src[first: max(first, label.span.col - 1)]).expandtabs(4)
    line_end = text.find("\n", label.span.start)
    end = label.span.end if line_end == -1 else min(label.span.end, line_end)
    width = max(1, end - label.span.start)
    shown_width = len(_window(src, label.span.col)[0].expandtabs(4))
    width = min(width, max(1, shown_width - len(prefix)))
    return " " * len(prefix) + mark * width


def render(d: Diagnostic, sources: dict[str, str], color: bool = False) -> str:
    """The rich form: header, `--> file:line:col`, the line as written, a caret, help and notes."""
    c = (lambda code, s: f"{code}{s}{_RESET}") if color else (lambda code, s: s)
    s = d.span
    out = [c(_COLORS[d.severity], f"{d.severity.value}[{d.code}]") + c(_BOLD, f": {clip(d.message)}")]
    text = sources.get(s.file)
    gutter = len(str(max([s.line] + [lab.span.line for lab in d.secondary])))
    pad = " " * gutter
    if s.file:
        out.append(f"{pad}{c(_BLUE, '-->')} {clip(s.file)}:{s.line}:{s.col}")
    if text is not None:
        labels = [(d.primary, "^", _COLORS[d.severity])] + [(lab, "-", _BLUE) for lab in d.secondary
                                                             if lab.span.file == s.file]
        out.append(f"{pad} {c(_BLUE, '|')}")
        shown_line, first = 0, 0
        for label, mark, code in sorted(labels, key=lambda x: x[0].span.start):
            if label.span.line != shown_line:  # several labels on one line: show the line once
                src, first = _shown_line(text, label.span.line, label.span.col)
                out.append(f"{c(_BLUE, str(label.span.line).rjust(gutter))} {c(_BLUE, '|')} {src}".rstrip())
                shown_line = label.span.line
            marks = _underline(text, label, mark, first)
            tail = f" {clip(label.text)}" if label.text else ""
            out.append(f"{pad} {c(_BLUE, '|')} {c(code, marks + tail)}".rstrip())
        out.append(f"{pad} {c(_BLUE, '|')}")
    for lab in d.secondary:
        if lab.span.file != s.file:
            out.append(f"{pad} {c(_BLUE, '=')} note: {clip(lab.text)} ({clip(lab.span.file)}:{lab.span.line}:"
                       f"{lab.span.col})")
    for note in d.notes:
        out.append(f"{pad} {c(_BLUE, '=')} note: {clip(note)}")
    if d.help:
        out.append(f"{pad} {c(_BLUE, '=')} help: {clip(d.help)}")
    return "\n".join(out)


def render_all(diags: Sequence[Diagnostic], sources: dict[str, str], color: bool = False,
               limit: int | None = 50) -> str:
    """Every diagnostic in rich form, capped at `limit` with an '... and N more' line."""
    ordered = sorted(diags, key=lambda d: d.span.sort_key())
    shown = ordered if limit is None else ordered[:limit]
    parts = [render(d, sources, color) for d in shown]
    if len(ordered) > len(shown):
        parts.append(f"... and {len(ordered) - len(shown)} more")
    errors = sum(d.is_error for d in ordered)
    warnings = sum(d.severity is Severity.WARNING for d in ordered)
    if errors or warnings:
        parts.append(_summary(errors, warnings))
    return "\n\n".join(parts)


def _summary(errors: int, warnings: int) -> str:
    bits = []
    if errors:
        bits.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        bits.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return " and ".join(bits) + " found"
