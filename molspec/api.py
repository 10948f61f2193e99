"""The Python API: the pipeline stages composed, mirroring the CLI.

    doc = molspec.load("spec.mol")
    doc.check()                  # -> list of diagnostics (never raises for a bad spec)
    plan = doc.compile()         # -> Plan; raises MolspecError when the spec has errors
    stats = doc.plan(samples=1000)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from molspec.check import check_program
from molspec.diagnostics import Diagnostic, MolspecError
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

    def compile(self, seed: int | None = None, samples: int | None = None) -> Plan:
        """The sampling plan. Reads the sources to count their questions.

        Raises:
            MolspecError: the spec has errors, or a source cannot be read.
        """
        spec = self.raise_for_errors()
        return compile_plan(spec, question_counts(spec), seed=seed, samples=samples)

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
