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


def render_short(d: Diagnostic) -> str:
    """`file:line:col: severity[CODE]: message` on one line."""
    s = d.span
    return f"{s.file}:{s.line}:{s.col}: {d.severity.value}[{d.code}]: {d.message}"


def _line_of(text: str, line: int) -> str:
    lines = text.splitlines()
    return lines[line - 1] if 0 < line <= len(lines) else ""


def _underline(text: str, label: Label, mark: str) -> tuple[str, int]:
    """The caret line under `label` and the column it starts at (tabs expanded as in the source)."""
    src = _line_of(text, label.span.line)
    prefix = src[: label.span.col - 1].expandtabs(4)
    first_line_end = text.find("\n", label.span.start)
    end = label.span.end if first_line_end == -1 else min(label.span.end, first_line_end)
    width = max(1, end - label.span.start)
    width = min(width, max(1, len(src.expandtabs(4)) - len(prefix)))
    return " " * len(prefix) + mark * width, len(prefix)


def render(d: Diagnostic, sources: dict[str, str], color: bool = False) -> str:
    """The rich form: header, `--> file:line:col`, the line as written, a caret, help and notes."""
    c = (lambda code, s: f"{code}{s}{_RESET}") if color else (lambda code, s: s)
    s = d.span
    out = [c(_COLORS[d.severity], f"{d.severity.value}[{d.code}]") + c(_BOLD, f": {d.message}")]
    text = sources.get(s.file)
    gutter = len(str(max([s.line] + [lab.span.line for lab in d.secondary])))
    pad = " " * gutter
    out.append(f"{pad}{c(_BLUE, '-->')} {s.file}:{s.line}:{s.col}")
    if text is not None:
        labels = [(d.primary, "^", _COLORS[d.severity])] + [(lab, "-", _BLUE) for lab in d.secondary
                                                             if lab.span.file == s.file]
        out.append(f"{pad} {c(_BLUE, '|')}")
        shown_line = 0
        for label, mark, code in sorted(labels, key=lambda x: x[0].span.start):
            if label.span.line != shown_line:  # several labels on one line: show the line once
                src = _line_of(text, label.span.line).expandtabs(4)
                out.append(f"{c(_BLUE, str(label.span.line).rjust(gutter))} {c(_BLUE, '|')} {src}".rstrip())
                shown_line = label.span.line
            marks, _ = _underline(text, label, mark)
            tail = f" {label.text}" if label.text else ""
            out.append(f"{pad} {c(_BLUE, '|')} {c(code, marks + tail)}".rstrip())
        out.append(f"{pad} {c(_BLUE, '|')}")
    for lab in d.secondary:
        if lab.span.file != s.file:
            out.append(f"{pad} {c(_BLUE, '=')} note: {lab.text} ({lab.span.file}:{lab.span.line}:{lab.span.col})")
    for note in d.notes:
        out.append(f"{pad} {c(_BLUE, '=')} note: {note}")
    if d.help:
        out.append(f"{pad} {c(_BLUE, '=')} help: {d.help}")
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
