"""Read teacher traces (jsonl, parquet or a Hub dataset) as a lazy stream of `Trace` records.

A record needs thinking text: either a `thinking` field, or a full response (`response`,
`output`, `completion`, `text`, `content`) containing `</think>`, whose inside is taken. `id`,
`question` and `teacher_model` are optional. Bad input raises `TraceError(path, line, message)`
with a 1-based line (the jsonl line, or the parquet/dataset row), never a bare traceback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from molspec.diagnostics import PlainError, Span

THINKING_FIELD = "thinking"
# Fields that may hold a whole response with the thinking inside <think>...</think>, in the order tried.
RESPONSE_FIELDS: tuple[str, ...] = ("response", "output", "completion", "text", "content")
OPEN_THINK, CLOSE_THINK = "<think>", "</think>"
_PARQUET_BATCH = 256  # rows per Arrow batch: small enough that long traces do not pile up in memory


class TraceError(PlainError):
    """A trace source is unreadable or a record has no usable thinking text.

    Attributes:
        path: the file (or dataset id) as the user gave it.
        line: 1-based line (jsonl) or row (parquet, dataset); None when the problem is the whole source.
        message: one line, without the location.
    """

    code = "MOL410"

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path = path
        self.line = line
        super().__init__(message, where=Span(path, 0, 0, line or 1, 1))
        self.message = message

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.message}"

    # A custom __init__ breaks default exception pickling; worker processes pickle errors back.
    def __reduce__(self) -> tuple[type[TraceError], tuple[str, int | None, str]]:
        return (type(self), (self.path, self.line, self.message))


@dataclass(frozen=True, slots=True)
class Trace:
    """One teacher trace.

    Attributes:
        id: the record's `id`, else `<file stem>-<line>`.
        thinking: the reasoning text (the inside of <think>...</think>), as written.
        question: the prompt, when the record has one.
        teacher_model: the model that wrote the trace, when recorded.
        source: the file or dataset id it came from.
        line: 1-based line or row in `source`.
    """

    id: str
    thinking: str
    question: str | None = None
    teacher_model: str | None = None
    source: str = ""
    line: int = 0


def extract_thinking(response: str) -> str | None:
    """The text inside <think>...</think>, or None when the response has no closing tag.

    Some chat templates put the opening tag in the prompt, so a response may start straight
    with the thinking and only carry `</think>`; the text before it is then the thinking.
    """
    close = response.find(CLOSE_THINK)
    if close < 0:
        return None
    open_ = response.rfind(OPEN_THINK, 0, close)
    start = 0 if open_ < 0 else open_ + len(OPEN_THINK)
    return response[start:close].strip()


def record_to_trace(record: Mapping[str, Any], path: str, line: int) -> Trace:
    """Turn one decoded record into a Trace, or raise TraceError naming what is missing."""
    thinking = _thinking_of(record, path, line)
    if not thinking.strip():
        raise TraceError(path, line, "the thinking text is empty")
    return Trace(
        id=_optional_str(record, "id", path, line) or f"{Path(path).stem}-{line}",
        thinking=thinking,
        question=_optional_str(record, "question", path, line),
        teacher_model=_optional_str(record, "teacher_model", path, line),
        source=path,
        line=line,
    )


def _thinking_of(record: Mapping[str, Any], path: str, line: int) -> str:
    value = record.get(THINKING_FIELD)
    if value is not None:
        if not isinstance(value, str):
            raise TraceError(path, line, f"field '{THINKING_FIELD}' must be a string, not {type(value).__name__}")
        return value
    for name in RESPONSE_FIELDS:
        response = record.get(name)
        if isinstance(response, str):
            inside = extract_thinking(response)
            if inside is None:
                raise TraceError(path, line, f"field '{name}' has no closing {CLOSE_THINK} (truncated output?)")
            return inside
    tried = ", ".join((THINKING_FIELD, *RESPONSE_FIELDS))
    raise TraceError(path, line, f"record has no thinking text (looked for: {tried})")


def _optional_str(record: Mapping[str, Any], name: str, path: str, line: int) -> str | None:
    value = record.get(name)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int):  # numeric ids are common in exported datasets
        return str(value)
    raise TraceError(path, line, f"field '{name}' must be a string, not {type(value).__name__}")


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[Trace]:
    """Stream traces from a JSON-lines file, one record per non-blank line."""
    name = os.fspath(path)
    found = False
    try:
        handle = open(name, "rb")  # bytes, so a bad encoding is reported with its line number
    except OSError as exc:
        raise TraceError(name, None, f"cannot open: {exc.strerror or exc}") from None
    with handle:
        for lineno, raw in enumerate(handle, start=1):
            record = _decode_line(raw, name, lineno)
            if record is None:
                continue
            found = True
            yield record_to_trace(record, name, lineno)
    if not found:
        raise TraceError(name, None, "no traces: the file is empty")


def _decode_line(raw: bytes, path: str, line: int) -> dict[str, Any] | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TraceError(path, line, f"not UTF-8 (byte {exc.start + 1})") from None
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TraceError(path, line, f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(value, dict):
        raise TraceError(path, line, f"expected a JSON object, got {type(value).__name__}")
    return value


def read_parquet(path: str | os.PathLike[str]) -> Iterator[Trace]:
    """Stream traces from a parquet file, batch by batch; `line` is the 1-based row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = os.fspath(path)
    try:
        parquet = pq.ParquetFile(name)
    except (OSError, pa.ArrowException) as exc:
        raise TraceError(name, None, f"not a readable parquet file: {exc}") from None
    if parquet.metadata.num_rows == 0:
        raise TraceError(name, None, "no traces: the file has no rows")
    wanted = {THINKING_FIELD, *RESPONSE_FIELDS, "id", "question", "teacher_model"}
    columns = [c for c in parquet.schema_arrow.names if c in wanted]
    row = 0
    for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH, columns=columns):
        for record in batch.to_pylist():
            row += 1
            yield record_to_trace(record, name, row)


def read_hub(dataset_id: str, split: str = "train") -> Iterator[Trace]:
    """Stream traces from a Hugging Face Hub dataset (imported lazily; streamed, not downloaded whole)."""
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a core dependency
        raise TraceError(dataset_id, None, "reading a Hub dataset needs the 'datasets' package") from None
    try:
        stream = datasets.load_dataset(dataset_id, split=split, streaming=True)
    except Exception as exc:  # noqa: BLE001 - datasets raises many unrelated types for "not found"
        raise TraceError(dataset_id, None, f"cannot load Hub dataset (split '{split}'): {exc}") from None
    found = False
    for row, record in enumerate(stream, start=1):
        found = True
        yield record_to_trace(record, dataset_id, row)
    if not found:
        raise TraceError(dataset_id, None, f"no traces in split '{split}'")


def read_traces(source: str | os.PathLike[str], split: str = "train") -> Iterator[Trace]:
    """Stream traces from a .jsonl/.json file, a .parquet file, a folder of them, or a Hub dataset id.

    A string that is not an existing path and looks like `namespace/name` is taken as a Hub id;
    `hf://namespace/name` forces that reading.
    """
    name = os.fspath(source)
    if name.startswith("hf://"):
        return read_hub(name.removeprefix("hf://"), split)
    path = Path(name)
    if path.is_dir():
        return _read_folder(path)
    if path.exists():
        return _read_file(path)
    if _looks_like_hub_id(name):
        return read_hub(name, split)
    raise TraceError(name, None, "no such file")


def _read_file(path: Path) -> Iterator[Trace]:
    if path.suffix == ".parquet":
        return read_parquet(path)
    if path.suffix in (".jsonl", ".json", ".ndjson"):
        return read_jsonl(path)
    raise TraceError(str(path), None, f"unknown trace format '{path.suffix}' (use .jsonl or .parquet)")


def _read_folder(path: Path) -> Iterator[Trace]:
    files = sorted(p for p in path.iterdir() if p.suffix in (".jsonl", ".parquet"))
    if not files:
        raise TraceError(str(path), None, "folder has no .jsonl or .parquet files")
    for file in files:
        yield from _read_file(file)


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not Path(name).suffix and not name.startswith((".", "/"))


def iter_traces(sources: Iterable[str | os.PathLike[str]], split: str = "train") -> Iterator[Trace]:
    """Chain several sources, in order."""
    for source in sources:
        yield from read_traces(source, split)
