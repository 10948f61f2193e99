"""Reading traces: formats, <think> extraction, streaming, and TraceError with file:line."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from molspec.structure.traces import TraceError, extract_thinking, read_traces


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_jsonl_fields_and_default_id(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "t.jsonl",
        [
            {"id": "a", "thinking": "step one\n\nstep two", "question": "Q?", "teacher_model": "m"},
            {"thinking": "only thinking"},
        ],
    )
    first, second = read_traces(path)
    assert (first.id, first.thinking, first.question, first.teacher_model) == ("a", "step one\n\nstep two", "Q?", "m")
    assert (first.source, first.line) == (str(path), 1)
    assert second.id == "t-2" and second.question is None


@pytest.mark.parametrize(
    ("response", "inside"),
    [
        ("<think>\nreasoning here\n</think>\nThe answer is 4.", "reasoning here"),
        ("reasoning without an opening tag\n</think>\n\nanswer", "reasoning without an opening tag"),
        ("preamble <think>inner</think> tail", "inner"),
    ],
)
def test_response_field_takes_inside_of_think(tmp_path: Path, response: str, inside: str) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", [{"id": "x", "response": response}])
    (trace,) = read_traces(path)
    assert trace.thinking == inside
    assert extract_thinking(response) == inside


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text('\n{"thinking": "a"}\n   \n{"thinking": "b"}\n', encoding="utf-8")
    assert [(t.thinking, t.line) for t in read_traces(path)] == [("a", 2), ("b", 4)]


@pytest.mark.parametrize(
    ("lines", "line", "fragment"),
    [
        (['{"thinking": "ok"}', '{"thinking": '], 2, "not valid JSON"),
        (['{"thinking": "ok"}', '{"question": "no thinking"}'], 2, "no thinking text"),
        (['["a", "list"]'], 1, "expected a JSON object"),
        (['{"thinking": "   "}'], 1, "thinking text is empty"),
        (['{"thinking": 42}'], 1, "must be a string"),
        (['{"response": "<think>cut off before the end"}'], 1, "no closing </think>"),
        (['{"thinking": "ok", "id": [1]}'], 1, "field 'id' must be a string"),
    ],
)
def test_bad_records_raise_trace_error_with_line(tmp_path: Path, lines: list[str], line: int, fragment: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(TraceError) as info:
        list(read_traces(path))
    err = info.value
    assert (err.path, err.line) == (str(path), line)
    assert fragment in err.message
    assert str(err).startswith(f"{path}:{line}: ")


def test_bad_utf8_reports_line(tmp_path: Path) -> None:
    path = tmp_path / "enc.jsonl"
    path.write_bytes(b'{"thinking": "fine"}\n{"thinking": "\xff\xfe"}\n')
    with pytest.raises(TraceError, match=r"enc\.jsonl:2: not UTF-8"):
        list(read_traces(path))


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(TraceError, match="empty") as info:
        list(read_traces(empty))
    assert info.value.line is None
    with pytest.raises(TraceError, match="no such file"):
        read_traces(tmp_path / "missing.jsonl")
    with pytest.raises(TraceError, match="unknown trace format"):
        (tmp_path / "t.csv").write_text("x", encoding="utf-8")
        read_traces(tmp_path / "t.csv")


def test_streaming_yields_before_a_later_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"thinking": "a"}\n{"thinking": "b"}\nnot json\n', encoding="utf-8")
    stream = read_traces(path)
    assert next(stream).thinking == "a"  # nothing past line 1 has been parsed yet
    assert next(stream).thinking == "b"
    with pytest.raises(TraceError, match=":3: not valid JSON"):
        next(stream)


def test_parquet_rows_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    table = pa.table({"id": ["p1", "p2"], "thinking": ["x\n\ny", None], "response": [None, "a</think>b"]})
    pq.write_table(table, path)
    traces = list(read_traces(path))
    assert [(t.id, t.thinking, t.line) for t in traces] == [("p1", "x\n\ny", 1), ("p2", "a", 2)]

    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"id": ["q"], "question": ["no thinking"]}), bad)
    with pytest.raises(TraceError, match=r"bad\.parquet:1: record has no thinking text"):
        list(read_traces(bad))

    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"not parquet at all")
    with pytest.raises(TraceError, match="not a readable parquet file"):
        list(read_traces(corrupt))

    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"thinking": pa.array([], pa.string())}), empty)
    with pytest.raises(TraceError, match="no rows"):
        list(read_traces(empty))


def test_folder_reads_all_trace_files_in_order(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "b.jsonl", [{"id": "b", "thinking": "t"}])
    write_jsonl(tmp_path / "a.jsonl", [{"id": "a", "thinking": "t"}])
    (tmp_path / "notes.txt").write_text("ignored", encoding="utf-8")
    assert [t.id for t in read_traces(tmp_path)] == ["a", "b"]


def test_hub_ids_go_through_datasets(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    calls: list[tuple[str, str, bool]] = []

    def fake_load(name: str, split: str, streaming: bool) -> list[dict[str, str]]:
        calls.append((name, split, streaming))
        return [{"id": "h1", "thinking": "hub thinking"}]

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    (trace,) = read_traces("acme/teacher-traces", split="test")
    assert calls == [("acme/teacher-traces", "test", True)]
    assert (trace.id, trace.source, trace.line) == ("h1", "acme/teacher-traces", 1)

    def failing_load(name: str, split: str, streaming: bool) -> None:
        raise FileNotFoundError(f"Dataset '{name}' doesn't exist on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", failing_load)
    with pytest.raises(TraceError, match="cannot load Hub dataset"):
        list(read_traces("hf://acme/missing"))


def test_trace_error_pickles() -> None:
    err = TraceError("f.jsonl", 7, "not valid JSON")
    back = pickle.loads(pickle.dumps(err))
    assert (back.path, back.line, back.message, str(back)) == (
        "f.jsonl",
        7,
        "not valid JSON",
        "f.jsonl:7: not valid JSON",
    )
