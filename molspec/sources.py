"""Seed questions: read a source (jsonl / parquet / csv file, or a Hub dataset) into rows.

Errors name the file and line (jsonl) or the column, never a traceback.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from molspec.diagnostics import Diagnostic, Label, PlainError, Span
from molspec.lang.files import FileProblem, Problem, open_regular, resolved
from molspec.spec import SourceSpec


@dataclass(frozen=True, slots=True)
class Question:
    """One seed row: its stable id, the question and the reference answer (if any)."""

    id: str
    question: str
    gold: str | None


class SourceError(PlainError):
    """A source cannot be read. `code`, `message` and `help` become a diagnostic at the source's span
    (`diagnostic(src)`); raised on its own, it is a diagnostic without one."""

    def __init__(self, code: str, message: str, help: str | None = None) -> None:
        self.code = code
        super().__init__(message, help)

    def __reduce__(self) -> tuple[type[SourceError], tuple[str, str, str | None]]:
        return (type(self), (self.code, self.message, self.help))

    def diagnostic(self, src: SourceSpec) -> Diagnostic:
        span = src.span or Span("<spec>", 0, 0, 1, 1)
        return Diagnostic(self.code, self.message, Label(span), help=self.help)


MAX_LINE_BYTES = 16 << 20  # one jsonl line (a binary file has no line ends to stop at)
_SOURCE_CODES = {Problem.MISSING: "MOL401", Problem.BAD_PATH: "MOL019"}


@dataclass(frozen=True, slots=True)
class Row:
    """A raw row of a source and where it is (`file:line` for jsonl and csv, `file:row N` for parquet)."""

    where: str
    values: dict[str, Any]


def load_questions(src: SourceSpec, limit: int | None = None) -> list[Question]:
    """Every row of the source as a Question (up to `limit`, or the source's own `limit`)."""
    cap = min(x for x in (limit, src.limit, 2**62) if x is not None)
    out: list[Question] = []
    for i, row in enumerate(rows(src)):
        if i >= cap:
            break
        out.append(question_of(src, row, i))
    if not out:
        where = src.repo if src.format == "hub" else _shown(file_path(src))
        raise SourceError("MOL403", f"source '{src.name}' has no rows ({where})",
                          help="point the source at a file with at least one question")
    return out


def peek(src: SourceSpec, n: int = 20) -> list[Row]:
    """The first `n` raw rows (for checks)."""
    out = []
    for i, row in enumerate(rows(src)):
        if i >= n:
            break
        out.append(row)
    return out


def question_of(src: SourceSpec, row: Row, index: int) -> Question:
    """The Question of a row, its values checked: a non-empty string question, a string or number
    gold (null: no gold), a string or integer id.

    Raises:
        SourceError: a column is missing or a value has the wrong type (MOL402, MOL406-MOL408).
    """
    values = row.values
    if src.question not in values:
        raise _missing_column(src, src.question, "question", values)
    gold_col = src.gold if src.gold and src.gold in values else None
    if src.gold and src.gold != "gold" and gold_col is None:
        raise _missing_column(src, src.gold, "gold", values)
    question = _text(row, src.question, values[src.question], (str,))
    if not question.strip():
        raise SourceError("MOL407", f"{row.where}: the question is empty",
                          help="every row needs the text of a question; remove the row or fill it in")
    gold = values[gold_col] if gold_col else None
    ident = values[src.id] if src.id and src.id in values else index
    return Question(id=_text(row, src.id or "id", ident, (str, int)), question=question,
                    gold=None if gold is None else _text(row, gold_col or "gold", gold, (str, int, float)))


_TYPE_NAMES = {str: "a string", int: "a whole number", float: "a number"}


def _text(row: Row, column: str, value: Any, allowed: tuple[type, ...]) -> str:
    """`value` as text when its type is allowed (never a bool, list or dict shown as Python repr)."""
    if isinstance(value, bool) or not isinstance(value, allowed):
        wanted = " or ".join(_TYPE_NAMES[t] for t in allowed)
        nullable = ", or null for no gold" if float in allowed else ""
        raise SourceError("MOL406", f"{row.where}: column '{column}' is {_json_type(value)}, not {wanted}",
                          help=f"'{column}' must be {wanted}{nullable}")
    text = value if isinstance(value, str) else str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SourceError("MOL408", f"{row.where}: column '{column}' holds a lone surrogate "
                          f"(\\u{ord(text[exc.start]):04x}) at character {exc.start}",
                          help="it cannot be written as UTF-8; fix the escaped text in the file") from None
    return text


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return _TYPE_NAMES.get(type(value), f"a {type(value).__name__}")


def _missing_column(src: SourceSpec, col: str, role: str, row: dict[str, Any]) -> SourceError:
    from molspec.diagnostics import did_you_mean

    hint = did_you_mean(col, [str(k) for k in row])
    return SourceError("MOL402", f"column '{col}' (the {role}) is not in source '{src.name}'",
                       help=hint or f"columns there: {', '.join(str(k) for k in list(row)[:12])}; map it with "
                                    f"`{{ {role} = \"COLUMN\" }}` after the source")


def rows(src: SourceSpec) -> Iterator[Row]:
    """The source's rows, read lazily."""
    if src.format == "hub":
        for i, values in enumerate(_hub_rows(src)):
            yield Row(f"{src.repo}: row {i + 1}", values)
        return
    path = file_path(src)
    shown = str(src.path)
    try:
        fd = open_regular(path, shown)
    except FileProblem as exc:
        raise _source_problem(exc, path, shown) from None
    reader = {"jsonl": _jsonl_rows, "csv": _csv_rows, "parquet": _parquet_rows}[src.format]
    with os.fdopen(fd, "rb") as fh:
        yield from reader(fh, shown)


def file_path(src: SourceSpec) -> Path:
    """The absolute path of a file source (`SourceSpec.location` resolves it, which fails on a loop)."""
    return resolved(Path(src.base) / str(src.path))


def _source_problem(exc: FileProblem, path: Path, shown: str) -> SourceError:
    if exc.kind is Problem.MISSING:
        return SourceError("MOL401", f"source file not found: {shown}",
                           help=f"looked for {_shown(path)}; paths are relative to the spec file")
    code = _SOURCE_CODES.get(exc.kind, "MOL409")
    return SourceError(code, f"source {exc.message}" if exc.kind is Problem.DIRECTORY else exc.message,
                       help=exc.help or "a source is a regular .jsonl, .csv or .parquet file")


def _shown(path: Path) -> str:
    """`path` relative to the working directory when it is below it (messages stay short and stable)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _jsonl_rows(fh: BinaryIO, shown: str) -> Iterator[Row]:
    for lineno, raw in enumerate(iter(lambda: fh.readline(MAX_LINE_BYTES + 1), b""), 1):
        if len(raw) > MAX_LINE_BYTES:
            raise SourceError("MOL404", f"{shown}:{lineno}: a line longer than {MAX_LINE_BYTES:,} bytes",
                              help="is this a binary file? each line of a .jsonl file must be one JSON object")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceError("MOL404", f"{shown}:{lineno}: not UTF-8 text (byte {exc.start + 1} of the line)",
                              help="a .jsonl file is UTF-8 text, one JSON object per line") from None
        if lineno == 1:
            line = line.removeprefix("\ufeff")
        if line.strip():
            yield Row(f"{shown}:{lineno}", _json_object(line, shown, lineno))


def _json_object(line: str, shown: str, lineno: int) -> dict[str, Any]:
    help_ = "each line of a .jsonl file must be one JSON object"
    try:
        row = json.loads(line.rstrip("\r\n"))  # so that colno counts within the line
    except json.JSONDecodeError as exc:
        raise SourceError("MOL404", f"{shown}:{lineno}:{exc.colno}: not valid JSON ({exc.msg})", help=help_) from None
    except RecursionError:
        raise SourceError("MOL404", f"{shown}:{lineno}: JSON nested too deeply", help=help_) from None
    except ValueError as exc:  # a number of more than 4,300 digits (Python's int conversion limit)
        raise SourceError("MOL404", f"{shown}:{lineno}: {str(exc).split(';')[0]}",
                          help="ids and numbers of thousands of digits are not supported; write them as strings"
                          ) from None
    if not isinstance(row, dict):
        raise SourceError("MOL404", f"{shown}:{lineno}: a line is not a JSON object", help=help_)
    return row


def _csv_rows(fh: BinaryIO, shown: str) -> Iterator[Row]:
    text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(text)
    try:
        for values in reader:
            yield Row(f"{shown}:{reader.line_num}", dict(values))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SourceError("MOL404", f"{shown}:{reader.line_num + 1}: not readable CSV ({exc})",
                          help="a .csv source is UTF-8 text with a header row") from None


def _parquet_rows(fh: BinaryIO, shown: str) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(fh)
        n = 0
        for batch in pf.iter_batches(batch_size=4096):
            for values in batch.to_pylist():
                n += 1
                yield Row(f"{shown}: row {n}", values)
    except Exception as exc:  # noqa: BLE001  (pyarrow raises several types for a bad file)
        if isinstance(exc, SourceError):
            raise
        raise SourceError("MOL404", f"{shown}: not a readable parquet file ({exc})") from None


def _hub_rows(src: SourceSpec) -> Iterator[dict[str, Any]]:
    try:
        import datasets

        ds = datasets.load_dataset(str(src.repo), src.config, split=src.split, streaming=True)
        yield from ds
    except Exception as exc:  # noqa: BLE001  (network, auth and missing-repo errors all land here)
        raise SourceError("MOL405", f"cannot load Hub dataset '{src.repo}' ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})",
                          help="check the id, config and split, your network and HF_TOKEN; "
                               "or download it and use a jsonl/parquet source") from None
