"""The Python API: the pipeline stages composed, mirroring the CLI.

    doc = molspec.load("spec.mol")
    doc.check()                  # -> list of diagnostics (never raises for a bad spec)
    plan = doc.compile()         # -> Plan; raises MolspecError when the spec has errors
    stats = doc.plan(samples=1000)
    doc.variants                 # -> {name: Spec} of a spec with `variant` blocks, in spec order
    plans = doc.compile_variants()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from molspec.check import check_program
from molspec.diagnostics import Diagnostic, Label, MolspecError, Span, did_you_mean
from molspec.lang.fmt import format_text
from molspec.lang.imports import Program, load_program
from molspec.plan.compile import Plan, compile_plan
from molspec.plan.stats import PlanStats, plan_stats
from molspec.sources import Question, SourceError, load_questions
from molspec.spec import Spec


@dataclass
class Document:
    """A loaded spec file and its imports, with the results of checking it.

    Attributes:
        program: the parsed files.
        spec: the lowered spec (None when the main file could not be lowered).
        diagnostics: every finding, sorted by position.
    """

    program: Program
    spec: Spec | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    _counts: dict[str, int] | None = field(default=None, init=False, repr=False)

    @property
    def path(self) -> str:
        return self.program.main

    @property
    def sources(self) -> dict[str, str]:
        return self.program.sources

    @property
    def ok(self) -> bool:
        return self.spec is not None and not any(d.is_error for d in self.diagnostics)

    def check(self) -> list[Diagnostic]:
        """Every diagnostic (errors, warnings, notes)."""
        return list(self.diagnostics)

    def raise_for_errors(self) -> Spec:
        """The spec, or MolspecError with every diagnostic when any is an error."""
        if not self.ok or self.spec is None:
            raise MolspecError(self.diagnostics, self.sources)
        return self.spec

    @property
    def variants(self) -> dict[str, Spec]:
        """The spec's variants by name, in spec order (empty without `variant` blocks)."""
        return dict(self.spec.variants) if self.spec is not None else {}

    def variant(self, name: str) -> Spec:
        """One variant's whole spec.

        Raises:
            MolspecError: MOL809 when the spec has no variant of that name (or errors).
        """
        spec = self.raise_for_errors()
        if name not in spec.variants:
            hint = did_you_mean(name, spec.variants)
            raise MolspecError([Diagnostic(
                "MOL809", f"the spec has no variant '{name}'", Label(Span(self.path, 0, 0, 1, 1)),
                help=hint or ("its variants: " + ", ".join(spec.variants) if spec.variants else
                              "it declares no `variant` blocks"))], self.sources)
        return spec.variants[name]

    def compile(self, seed: int | None = None, samples: int | None = None, variant: str | None = None) -> Plan:
        """The sampling plan (of the base spec, or of one variant). Reads the sources to count their questions
        (once per document: every variant has the base spec's sources).

        Raises:
            MolspecError: the spec has errors, the variant does not exist, or a source cannot be read.
        """
        spec = self.raise_for_errors() if variant is None else self.variant(variant)
        if self._counts is None:
            self._counts = question_counts(self.raise_for_errors())
        return compile_plan(spec, self._counts, seed=seed, samples=samples)

    def compile_variants(self, seed: int | None = None, samples: int | None = None) -> dict[str, Plan]:
        """The plan of every variant, in spec order (empty without variants)."""
        return {name: self.compile(seed=seed, samples=samples, variant=name) for name in self.variants}

    def plan(self, seed: int | None = None, samples: int | None = None) -> PlanStats:
        """Statistics of the plan (what `molspec plan` prints)."""
        return plan_stats(self.compile(seed=seed, samples=samples))

    def format(self) -> str:
        """The main file in canonical form."""
        return format_text(self.sources[self.path], self.path)


def load(path: str | Path, text: str | None = None) -> Document:
    """Parse and check a spec file (and its imports).

    Raises:
        MolspecError: the file cannot be read or has a syntax error. Other problems are in
            `Document.diagnostics`.
    """
    prog = load_program(path, text)
    spec, diags = check_program(prog)
    return Document(prog, spec, diags)


def dataset_questions(spec: Spec) -> dict[str, list[Question]]:
    """The questions of every source the dataset's splits use, by source name.

    Raises:
        MolspecError: a source cannot be read (the diagnostic points at the source in the spec).
    """
    needed = {s.source for s in spec.dataset.splits} if spec.dataset else set()
    out = {}
    for name in needed:
        src = spec.sources[name]
        try:
            out[name] = load_questions(src)
        except SourceError as err:
            raise MolspecError([err.diagnostic(src)], spec.files) from None
    return out


def question_counts(spec: Spec) -> dict[str, int]:
    """Rows per source used by the dataset."""
    return {name: len(qs) for name, qs in dataset_questions(spec).items()}
