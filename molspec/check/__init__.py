"""Static checks of a spec: lowering (names, schemas) then an ordered tuple of semantic checks.

A new check is one function `(Spec) -> list[Diagnostic]` in its own module plus one line in CHECKS.
"""

from __future__ import annotations

from collections.abc import Callable

from molspec.check.dataset import check_dataset
from molspec.check.engines import check_engines
from molspec.check.graphs import check_graphs
from molspec.check.lower import lower
from molspec.check.size import check_size
from molspec.check.sources import check_sources
from molspec.check.templates import check_templates
from molspec.check.variants import has_variants, lower_variants
from molspec.diagnostics import Diagnostic
from molspec.lang.imports import Program
from molspec.spec import Spec

Check = Callable[[Spec], list[Diagnostic]]
CHECKS: tuple[Check, ...] = (check_graphs, check_templates, check_sources, check_dataset, check_size, check_engines)


def check_program(prog: Program) -> tuple[Spec | None, list[Diagnostic]]:
    """Lower and check; returns the spec (None if the main file is unusable) and every diagnostic."""
    spec, diags = lower(prog)
    if spec is not None:
        for check in CHECKS:
            diags += check(spec)
        if has_variants(prog):  # a spec without variants pays nothing for them
            spec, found = lower_variants(prog, spec, diags)
            diags += found
    return spec, sorted(diags, key=lambda d: d.span.sort_key())
