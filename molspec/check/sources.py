"""Checks of sources: the file exists, parses, and has the mapped columns (first rows only)."""

from __future__ import annotations

from molspec.diagnostics import Diagnostic
from molspec.sources import SourceError, peek, question_of
from molspec.spec import Spec


def check_sources(spec: Spec) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for src in spec.sources.values():
        if src.format == "hub":
            continue  # needs the network; checked when the build loads it
        try:
            rows = peek(src, 20)
            if not rows:
                raise SourceError("MOL403", f"source '{src.name}' has no rows ({src.path})",
                                  help="point the source at a file with at least one question")
            for i, row in enumerate(rows):
                question_of(src, row, i)
        except SourceError as err:
            out.append(err.diagnostic(src))
    return out
