"""The hand-labelled steps as one set: read, resolve, verify, split by trace, and the evaluation views.

Label rows live in `tests/structure/fixtures/hand_labels.jsonl` (the first 279, with an old `split`
field and no `unit`) and `tests/structure/fixtures/labels/*.jsonl` (format: notes/LABELS.md). A row
holds a trace file, a trace id, character offsets into the trace's `thinking` and a 12-hex sha1 of
that span, never the text. Teacher traces are read from the shared data folder; molspec's own
generated traces (`generated/<name>.jsonl`) from the fixtures folder.

Rows whose trace is missing, whose offsets do not resolve, or whose span no longer hashes to its
sha1 are skipped and counted in `LabelSet.skipped`, never silently used.

The split is by *question*, never by step: `split_of` hashes the trace id without its teacher
prefix ("deepseek-r1/aime2024-3" -> "aime2024-3"), so one question answered by both teachers lands in
the same split and no trace text is ever seen on both sides.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from molspec.structure.label import BONDS, Labeler
from molspec.structure.segment import segment_spans, sentence_spans
from molspec.structure.traces import Trace, TraceError, read_traces

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "structure" / "fixtures"
TRACES = ROOT.parent / "shared" / "data" / "traces"
HELDOUT_PERCENT = 30  # share of questions held out, in percent of the hash range
UNITS = ("paragraph", "sentence")
TEACHERS = {"deepseek-r1": "r1", "qwq-32b": "qwq"}  # trace-file stem -> short teacher name


@dataclass(frozen=True, slots=True)
class LabelRow:
    """One hand label as stored (offsets into the trace's thinking, no text)."""

    file: str
    trace_id: str
    start: int
    end: int
    unit: str
    label: str
    sha1: str
    annotator: str


@dataclass(frozen=True, slots=True)
class Run:
    """One trace at one unit, as a labeler sees it.

    Attributes:
        file / trace_id / unit: where the labels came from.
        teacher: "r1", "qwq", "generated", or the trace file's stem for other teachers.
        split: "train" or "heldout" (`split_of` the trace id).
        question: the trace's question, if any.
        steps: the step texts in order: the labelled spans exactly, the text between them cut as
            usual (paragraph runs: `segment_spans`; sentence runs: `sentence_spans`).
        gold: per step its hand label, or None for an unlabelled context step.
    """

    file: str
    trace_id: str
    unit: str
    teacher: str
    split: str
    question: str | None
    steps: tuple[str, ...]
    gold: tuple[str | None, ...]

    @property
    def n_labelled(self) -> int:
        return sum(g is not None for g in self.gold)


@dataclass
class LabelSet:
    """All usable labels grouped into runs, with the count of rows skipped per reason."""

    runs: list[Run]
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def n_labelled(self) -> int:
        return sum(r.n_labelled for r in self.runs)


@dataclass(frozen=True, slots=True)
class View:
    """A train/test pair of runs (`train` is empty for a view that only scores)."""

    name: str
    train: tuple[Run, ...]
    test: tuple[Run, ...]


def label_files(fixtures: Path = FIXTURES) -> list[Path]:
    """The old hand-label file, then every batch file under labels/, in name order."""
    files = [fixtures / "hand_labels.jsonl"] if (fixtures / "hand_labels.jsonl").exists() else []
    return files + sorted((fixtures / "labels").glob("*.jsonl"))


def read_rows(path: Path, skipped: Counter[str]) -> list[LabelRow]:
    """The well-formed rows of one label file; malformed ones are counted, not raised."""
    rows: list[LabelRow] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rows.append(_row(json.loads(line), path.stem))
        except (ValueError, KeyError, TypeError):
            skipped["malformed row"] += 1
    return rows


def _row(raw: dict[str, object], default_annotator: str) -> LabelRow:
    label, unit = str(raw["label"]), str(raw.get("unit", "paragraph"))
    if label not in BONDS or unit not in UNITS:
        raise ValueError(f"bad label or unit: {label}, {unit}")
    start, end = int(raw["start"]), int(raw["end"])  # type: ignore[call-overload]
    return LabelRow(
        str(raw["file"]), str(raw["id"]), start, end, unit, label, str(raw["sha1"]),
        str(raw.get("annotator", default_annotator)),
    )  # fmt: skip


def split_of(trace_id: str) -> str:
    """ "train" or "heldout" by a hash of the question key (the id without its teacher prefix)."""
    key = trace_id.split("/", 1)[-1]
    bucket = int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "heldout" if bucket < HELDOUT_PERCENT else "train"


def teacher_of(file: str) -> str:
    if file.startswith("generated/"):
        return "generated"
    stem = Path(file).name.split(".", 1)[0]
    return TEACHERS.get(stem, stem)


def span_sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


class _TraceCache:
    """Trace files read once each, by the label rows' `file` field."""

    def __init__(self, traces_dir: Path, fixtures: Path) -> None:
        self.traces_dir, self.fixtures = traces_dir, fixtures
        self.files: dict[str, dict[str, Trace] | None] = {}

    def get(self, file: str, trace_id: str) -> Trace | None:
        if file not in self.files:
            path = self.fixtures / file if file.startswith("generated/") else self.traces_dir / file
            try:
                self.files[file] = {t.id: t for t in read_traces(path)} if path.exists() else None
            except TraceError:
                self.files[file] = None
        found = self.files[file]
        return found.get(trace_id) if found else None


def load(files: Iterable[Path] | None = None, traces_dir: Path = TRACES, fixtures: Path = FIXTURES) -> LabelSet:
    """Read, resolve and verify every label; group them into runs (one per trace and unit)."""
    skipped: Counter[str] = Counter()
    cache = _TraceCache(traces_dir, fixtures)
    groups: dict[tuple[str, str, str], dict[tuple[int, int], str]] = defaultdict(dict)
    for path in label_files(fixtures) if files is None else files:
        for row in read_rows(path, skipped):
            reason = _check(row, cache.get(row.file, row.trace_id))
            if reason:
                skipped[reason] += 1
            elif (row.start, row.end) in (group := groups[(row.file, row.trace_id, row.unit)]):
                # the first label of a span wins; disagreements are counted apart (annotator agreement)
                skipped["duplicate" if group[(row.start, row.end)] == row.label else "duplicate, other label"] += 1
            else:
                groups[(row.file, row.trace_id, row.unit)][(row.start, row.end)] = row.label
    runs = []
    for (file, trace_id, unit), labels in sorted(groups.items()):
        trace = cache.get(file, trace_id)
        assert trace is not None  # _check passed
        runs.append(_run(file, trace, unit, labels, skipped))
    return LabelSet(runs, skipped)


def _check(row: LabelRow, trace: Trace | None) -> str | None:
    """Why a row cannot be used, or None."""
    if trace is None:
        return "trace not found"
    if not 0 <= row.start < row.end <= len(trace.thinking):
        return "offsets out of range"
    if span_sha1(trace.thinking[row.start : row.end]) != row.sha1:
        return "sha1 mismatch"
    return None


def _run(file: str, trace: Trace, unit: str, labels: dict[tuple[int, int], str], skipped: Counter[str]) -> Run:
    """Labelled spans kept exactly, the text around them cut into steps of the same unit."""
    text, cut = trace.thinking, sentence_spans if unit == "sentence" else _paragraph_spans
    steps: list[str] = []
    gold: list[str | None] = []
    pos = 0
    for (start, end), label in sorted(labels.items()):
        if start < pos:
            skipped["overlapping span"] += 1
            continue
        for a, b in cut(text, pos, start):
            steps.append(text[a:b])
            gold.append(None)
        steps.append(text[start:end])
        gold.append(label)
        pos = end
    for a, b in cut(text, pos, len(text)):
        steps.append(text[a:b])
        gold.append(None)
    return Run(file, trace.id, unit, teacher_of(file), split_of(trace.id), trace.question, tuple(steps), tuple(gold))


def _paragraph_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    return [(a + start, b + start) for a, b in segment_spans(text[start:end])]


def views(labels: LabelSet) -> list[View]:
    """The held-out views: within a teacher (train split -> held-out traces of R1 and QwQ), across
    teachers (all R1 -> all QwQ and back), generated steps (train split -> held-out generated traces),
    and the held-out traces by unit."""
    runs = labels.runs
    train = tuple(r for r in runs if r.split == "train")
    held = [r for r in runs if r.split == "heldout"]

    def of(teacher: str) -> tuple[Run, ...]:
        return tuple(r for r in runs if r.teacher == teacher)

    return [
        View("within", train, tuple(r for r in held if r.teacher in ("r1", "qwq"))),
        View("r1->qwq", of("r1"), of("qwq")),
        View("qwq->r1", of("qwq"), of("r1")),
        View("generated", train, tuple(r for r in held if r.teacher == "generated")),
        View("paragraph", train, tuple(r for r in held if r.unit == "paragraph")),
        View("sentence", train, tuple(r for r in held if r.unit == "sentence")),
    ]


def predict(labeler: Labeler, runs: Sequence[Run]) -> list[list[str]]:
    """The labeler's labels for every step of every run (one `label_many` call)."""
    return labeler.label_many([(r.question, r.steps) for r in runs])


def gold_and_predicted(runs: Sequence[Run], predicted: Sequence[Sequence[str]]) -> tuple[list[str], list[str]]:
    """The labelled steps' hand labels and the predictions for the same steps."""
    gold: list[str] = []
    pred: list[str] = []
    for run, labels in zip(runs, predicted, strict=True):
        for g, p in zip(run.gold, labels, strict=True):
            if g is not None:
                gold.append(g)
                pred.append(p)
    return gold, pred
