"""Structure of reasoning traces: read, segment, label, estimate and compare (Mole-Syn step 1).

    from molspec.structure import extract, compare
    r1 = extract(["r1.jsonl"], alpha=0.5).graph
    print(r1.to_mol("r1"))
    print(compare(r1, extract(["qwq.jsonl"], alpha=0.5).graph).summary())

Pipeline and formats: docs/internals.md; labelling rules: docs/labelling-guide.md.
"""

import importlib
from typing import Any

# Loaded on first use (PEP 562): `molspec check` builds the CLI, which imports molspec.structure.cli, and must
# not pay for the labelers on the way.
_HOME = {
    "Comparison": "compare", "compare": "compare",
    "GraphCounter": "estimate", "LabelledTrace": "estimate", "StepCounts": "estimate", "StructureGraph": "estimate",
    "estimate": "estimate", "labels_to_json": "estimate",
    "Report": "evaluate", "report": "evaluate",
    "Extraction": "extract", "extract": "extract", "label_traces": "extract",
    "BONDS": "label", "CueLabeler": "label", "CueWeights": "label", "Labeler": "label", "get_labeler": "label",
    "SegmentConfig": "segment", "Step": "segment", "segment": "segment",
    "Trace": "traces", "TraceError": "traces", "read_traces": "traces",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"molspec.structure.{_HOME[name]}"), name)
    raise AttributeError(f"module 'molspec.structure' has no attribute {name!r}")


__all__ = [
    "BONDS",
    "Comparison",
    "CueLabeler",
    "CueWeights",
    "Extraction",
    "GraphCounter",
    "LabelledTrace",
    "Labeler",
    "Report",
    "SegmentConfig",
    "Step",
    "StepCounts",
    "StructureGraph",
    "Trace",
    "TraceError",
    "compare",
    "estimate",
    "extract",
    "get_labeler",
    "label_traces",
    "labels_to_json",
    "read_traces",
    "report",
    "segment",
]
