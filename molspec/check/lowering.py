"""The state of one lowering pass, shared by the modules that lower each kind of item."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from molspec.diagnostics import Diagnostic, Label, Severity, Span
from molspec.lang.imports import Program


@dataclass
class Lowering:
    """State of one lowering pass."""

    prog: Program
    diags: list[Diagnostic] = field(default_factory=list)
    defs: dict[str, dict[str, Any]] = field(default_factory=dict)  # namespace -> name -> item

    @property
    def import_failed(self) -> bool:
        """Some imported file could not be read or parsed (its definitions are missing)."""
        return any(d.code in ("MOL501", "MOL503") for d in self.prog.diagnostics)

    def error(self, code: str, message: str, span: Span, help: str | None = None,
              secondary: tuple[Label, ...] = (), label: str = "") -> None:
        self.diags.append(Diagnostic(code, message, Label(span, label), secondary=secondary, help=help))

    def warning(self, code: str, message: str, span: Span, help: str | None = None) -> None:
        self.diags.append(Diagnostic(code, message, Label(span), severity=Severity.WARNING, help=help))
