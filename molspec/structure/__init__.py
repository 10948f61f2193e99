"""Structure of reasoning traces: read, segment, label, estimate and compare (Mole-Syn step 1).

    from molspec.structure import extract, compare
    r1 = extract(["r1.jsonl"], alpha=0.5).graph
    print(r1.to_mol("r1"))
    print(compare(r1, extract(["qwq.jsonl"], alpha=0.5).graph).summary())

Pipeline and formats: docs/internals.md; labelling rules: docs/labelling-guide.md.
"""

from molspec.structure.compare import Comparison, compare
from molspec.structure.estimate import GraphCounter, LabelledTrace, StepCounts, StructureGraph, estimate, labels_to_json
from molspec.structure.evaluate import Report, report
from molspec.structure.extract import Extraction, extract, label_traces
from molspec.structure.label import BONDS, CueLabeler, CueWeights, Labeler, get_labeler
from molspec.structure.segment import SegmentConfig, Step, segment
from molspec.structure.traces import Trace, TraceError, read_traces

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
