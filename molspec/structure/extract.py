"""Mole-Syn step 1 end to end: traces → steps → bonds → graph (what `molspec extract` runs)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from molspec.structure.estimate import GraphCounter, LabelledTrace, StructureGraph
from molspec.structure.label import BONDS, Labeler, get_labeler
from molspec.structure.segment import SegmentConfig, segment
from molspec.structure.traces import Trace, iter_traces

BATCH_TRACES = 256  # traces per labeler call: an engine-backed labeler batches all their steps


@dataclass
class Extraction:
    """The result of `extract`.

    Attributes:
        graph: the estimated graph.
        traces: per-trace labels and step offsets (empty when `keep_labels=False`).
    """

    graph: StructureGraph
    traces: list[LabelledTrace] = field(default_factory=list)


def label_traces(
    traces: Iterable[Trace],
    labeler: Labeler | None = None,
    config: SegmentConfig | None = None,
    batch: int = BATCH_TRACES,
) -> Iterator[LabelledTrace]:
    """Segment and label a stream of traces, `batch` traces per labeler call (default labeler: "learned")."""
    lab = labeler or get_labeler()
    it = iter(traces)
    while chunk := list(islice(it, batch)):
        steps = [segment(t.thinking, config) for t in chunk]
        labels = lab.label_many([(t.question, [s.text for s in st]) for t, st in zip(chunk, steps, strict=True)])
        for t, st, bonds in zip(chunk, steps, labels, strict=True):
            spans = tuple((s.start, s.end) for s in st)
            yield LabelledTrace(t.id, tuple(bonds), spans, t.source, t.teacher_model)


def extract(
    sources: Iterable[str | os.PathLike[str]],
    labeler: Labeler | None = None,
    config: SegmentConfig | None = None,
    alpha: float = 0.0,
    keep_labels: bool = True,
    split: str = "train",
) -> Extraction:
    """Read traces from `sources`, label their steps and estimate the graph.

    Raises:
        TraceError: a source is missing or malformed (with file and line).
    """
    counter = GraphCounter(BONDS)
    kept: list[LabelledTrace] = []
    for labelled in label_traces(iter_traces(sources, split), labeler, config):
        counter.add(labelled.bonds, labelled.teacher_model)
        if keep_labels:
            kept.append(labelled)
    return Extraction(counter.graph(alpha), kept)
