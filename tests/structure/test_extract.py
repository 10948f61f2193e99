"""`extract`: files in, graph and per-trace labels out; bad input surfaces as TraceError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from molspec.structure.estimate import labels_to_json
from molspec.structure.extract import extract, label_traces
from molspec.structure.label import BONDS
from molspec.structure.traces import TraceError, read_traces

THINKING = (
    "Okay, the problem asks for the area of a right triangle with legs 6 and 8; the hypotenuse is not given "
    "and is not needed.\n\n"
    "Since the legs are perpendicular, one is the base and the other the height, so the area is half their "
    "product: 6 * 8 / 2 = 24.\n\n"
    "Wait, let me check that with the hypotenuse: 6^2 + 8^2 = 100, so it is 10, and the height onto it is "
    "48 / 10 = 4.8, giving 10 * 4.8 / 2 = 24 again."
)


def write(path: Path, n: int) -> Path:
    rows = [{"id": f"t{i}", "thinking": THINKING, "teacher_model": "teacher-x"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_extract_counts_every_trace(tmp_path: Path) -> None:
    a, b = write(tmp_path / "a.jsonl", 3), write(tmp_path / "b.jsonl", 2)
    result = extract([a, b], alpha=0.5)
    assert result.graph.n_traces == 5 and len(result.traces) == 5
    assert result.graph.teacher == "teacher-x"
    first = result.traces[0]
    assert len(first.bonds) == len(first.spans) == 3 and set(first.bonds) <= set(BONDS)
    assert all(THINKING[s:e].strip() for s, e in first.spans)
    assert json.loads(labels_to_json(result.traces[:1]))["id"] == "t0"
    assert extract([a], keep_labels=False).traces == []


def test_label_traces_batches_do_not_change_results(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", 7)
    one = [t.bonds for t in label_traces(read_traces(path), batch=1)]
    many = [t.bonds for t in label_traces(read_traces(path), batch=256)]
    assert one == many


def test_extract_reports_bad_input_with_location(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", 2)
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"id": "broken", "question": "no thinking here"}\n')
    with pytest.raises(TraceError) as info:
        extract([path])
    assert (info.value.line, str(info.value)) == (
        3,
        f"{path}:3: record has no thinking text (looked for: thinking, response, output, completion, text, content)",
    )
    with pytest.raises(TraceError, match="no such file"):
        extract([tmp_path / "nope.jsonl"])
