"""molspec: a declarative DSL and build tool for long chain-of-thought training data.

    import molspec
    doc = molspec.load("examples/quickstart.mol")
    print(doc.check())
    plan = doc.compile()
"""

from molspec.api import Document, load
from molspec.diagnostics import Diagnostic, MolspecError, Severity, Span
from molspec.plan.compile import Plan, Walks
from molspec.plan.stats import PlanStats
from molspec.spec import Spec
from molspec.version import __version__

__all__ = ["Diagnostic", "Document", "MolspecError", "Plan", "PlanStats", "Severity", "Span", "Spec", "Walks",
           "__version__", "load"]
