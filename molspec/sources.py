"""Seed questions: read a source (jsonl / parquet / csv file, or a Hub dataset) into rows.

Errors name the file and line (jsonl) or the column, never a traceback.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from molspec.diagnostics import Diagnostic, Label, Span
from molspec.spec import SourceSpec


@dataclass(frozen=True, slots=True)
class Question:
    """One seed row: its stable id, the question and the reference answer (if any)."""

    id: str
    question: str
    gold: str | None


class SourceError(Exception):
    """A source cannot be read. `code`, `message` and `help` become a diagnostic at the source's span."""

    def __init__(self, code: str, message: str, help: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.help = code, message, help

    def diagnostic(self, src: SourceSpec) -> Diagnostic:
        span = src.span or Span("<spec>", 0, 0, 1, 1)
        return Diagnostic(self.code, self.message, Label(span), help=self.help)


def load_questions(src: SourceSpec, limit: int | None = None) -> list[Question]:
    """Every row of the source as a Question (up to `limit`, or the source's own `limit`)."""
    cap = min(x for x in (limit, src.limit, 2**62) if x is not None)
    out: list[Question] = []
    for i, row in enumerate(_rows(src)):
        if i >= cap:
            break
        out.append(_question(src, row, i))
    if not out:
        raise SourceError("MOL403", f"source '{src.name}' has no rows ({src.location})",
                          help="point the source at a file with at least one question")
    return out


def peek(src: SourceSpec, n: int = 20) -> list[dict[str, Any]]:
    """The first `n` raw rows (for checks)."""
    rows = []
    for i, row in enumerate(_rows(src)):
        if i >= n:
            break
        rows.append(row)
    return rows


def _question(src: SourceSpec, row: dict[str, Any], index: int) -> Question:
    if src.question not in row:
        raise _missing_column(src, src.question, "question", row)
    gold_col = src.gold if src.gold and src.gold in row else None
    if src.gold and src.gold != "gold" and gold_col is None:
        raise _missing_column(src, src.gold, "gold", row)
    ident = str(row[src.id]) if src.id and src.id in row else str(index)
    gold = row[gold_col] if gold_col else None
    return Question(id=ident, question=str(row[src.question]), gold=None if gold is None else str(gold))


def _missing_column(src: SourceSpec, col: str, role: str, row: dict[str, Any]) -> SourceError:
    from molspec.diagnostics import did_you_mean

    hint = did_you_mean(col, row)
    return SourceError("MOL402", f"column '{col}' (the {role}) is not in source '{src.name}'",
                       help=hint or f"columns there: {', '.join(list(row)[:12])}; map it with "
                                    f"`{{ {role} = \"COLUMN\" }}` after the source")


def _rows(src: SourceSpec) -> Iterator[dict[str, Any]]:
    if src.format == "hub":
        yield from _hub_rows(src)
        return
    path = Path(src.location)
    if not path.is_file():
        raise SourceError("MOL401", f"source file not found: {src.path}",
                          help=f"looked for {_shown(path)}; paths are relative to the spec file")
    reader = {"jsonl": _jsonl_rows, "csv": _csv_rows, "parquet": _parquet_rows}[src.format]
    yield from reader(path, str(src.path))


def _shown(path: Path) -> str:
    """`path` relative to the working directory when it is below it (messages stay short and stable)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _jsonl_rows(path: Path, shown: str) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line.rstrip("\r\n"))  # so that colno counts within the line
            except json.JSONDecodeError as exc:
                raise SourceError("MOL404", f"{shown}:{lineno}:{exc.colno}: not valid JSON ({exc.msg})",
                                  help="each line of a .jsonl file must be one JSON object") from None
            if not isinstance(row, dict):
                raise SourceError("MOL404", f"{shown}:{lineno}: a line is not a JSON object",
                                  help="each line of a .jsonl file must be one JSON object")
            yield row


def _csv_rows(path: Path, shown: str) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as fh:
        yield from csv.DictReader(fh)


def _parquet_rows(path: Path, shown: str) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001  (pyarrow raises several types for a bad file)
        raise SourceError("MOL404", f"{shown}: not a readable parquet file ({exc})") from None
    for batch in pf.iter_batches(batch_size=4096):
        yield from batch.to_pylist()


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
