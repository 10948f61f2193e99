"""The blind review sheet of `molspec review` as a file: writing it, and reading a filled one back with places.

    list[SheetLine] ──sheet_csv──▶ CSV text            (written once, never over an existing file)
    FILE ──read_sheet──▶ list[Entry]                    (each value with the span it came from)

The sheet is RFC 4180 CSV, every field quoted, UTF-8 with a byte-order mark so that spreadsheets read it as
UTF-8. A sheet saved back by a spreadsheet may use `;` or tabs, drop the quotes or the mark: all are read.
The stdlib csv module parses; it gives no positions, so `_field_spans` finds each field's place in its record
to point a diagnostic at it. Errors are MOL730 (the file cannot be read as a sheet) and MOL733 (it cannot be
written: it exists, or the OS refused).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from molspec.atomic import create_atomic
from molspec.diagnostics import Diagnostic, Label, MolspecError, Span

COLUMNS: tuple[str, ...] = ("walk", "step", "key", "question", "text", "sha1", "label")
NEEDED: tuple[str, ...] = ("key", "sha1", "label")  # what scoring reads; the other columns are for the person
DELIMITERS = (",", ";", "\t")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets read as a formula (OWASP, CSV injection)
COLUMNS_HELP = "keep the header row `molspec review` wrote: " + ", ".join(COLUMNS)


@dataclass(frozen=True, slots=True)
class SheetLine:
    """One bond step on the sheet (`question` only on a walk's first step; `label` is the person's)."""

    walk: int
    step: int
    key: str
    question: str
    text: str
    sha1: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class Cell:
    """A value read from the sheet and where it is (the span covers the field as written, quotes included)."""

    value: str
    span: Span


@dataclass(frozen=True, slots=True)
class Entry:
    """One data record of a filled sheet: the cells scoring reads."""

    key: Cell
    sha1: Cell
    label: Cell


def step_key(sample_index: int, step: int) -> str:
    """The key that joins a sheet row back to its step: the sample index and the 1-based step, "12:3"."""
    return f"{sample_index}:{step}"


def text_sha1(text: str) -> str:
    """The first 12 hex digits of the sha1 of a step's text (a sheet that no longer matches its build shows)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def sheet_csv(lines: Sequence[SheetLine]) -> str:
    """The sheet as CSV text, the byte-order mark first."""
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_ALL)
    writer.writerow(COLUMNS)
    for s in lines:
        writer.writerow([s.walk, s.step, s.key, _shown(s.question), _shown(s.text), s.sha1, s.label])
    return "\ufeff" + buf.getvalue()


def _shown(text: str) -> str:
    """A text as a spreadsheet will show it: one that opens like a formula (=, +, -, @) gets an apostrophe
    first, so the person reads the text and no spreadsheet runs generated text as a formula (scoring joins by
    key and sha1, never by the text)."""
    return "'" + text if text.startswith(FORMULA_START) else text


def write_sheet(path: Path, text: str) -> None:
    """Write a new sheet atomically.

    Raises:
        MolspecError: MOL733, `path` exists (it may be a filled sheet: it is never overwritten), or the OS
            refused the write.
    """
    try:
        create_atomic(path, text)
    except FileExistsError:
        raise _write_error(path, f"{path} already exists; a review sheet never overwrites a file (it may be a "
                           "filled sheet)", "give another name with `--out FILE`, or score the filled one with "
                           "`--score FILE`") from None
    except OSError as err:
        raise _write_error(path, f"cannot write {path}: {err.strerror or err}",
                           "give a path in a folder you can write to with `--out FILE`") from None


def _write_error(path: Path, message: str, help_: str) -> MolspecError:
    return MolspecError([Diagnostic("MOL733", message, Label(Span(str(path), 0, 0, 1, 1)), help=help_)])


# ---------------------------------------------------------------- reading


def read_sheet(path: Path, shown: str) -> tuple[list[Entry], str]:
    """The data records of a filled sheet and the sheet's text (for rendering diagnostics).

    Args:
        shown: the path as the user wrote it, for messages.

    Raises:
        MolspecError: MOL730, the file cannot be read, is not UTF-8 or CSV, or lacks a needed column.
    """
    text = _read_text(path, shown)
    delimiter = _delimiter(text)
    records = list(_records(text, shown, delimiter))
    if not records:
        raise _sheet_error(shown, text, 0, 0, "the sheet is empty", COLUMNS_HELP)
    (header, h_start, _), body = records[0], records[1:]
    names = [h.strip().lower() for h in header]
    missing = [c for c in NEEDED if c not in names]
    if missing:
        end = text.find("\n")
        raise _sheet_error(shown, text, h_start, len(text) if end == -1 else end,
                           f"the sheet has no {', '.join(repr(m) for m in missing)} column", COLUMNS_HELP)
    cols = {c: names.index(c) for c in NEEDED}
    return [_entry(shown, text, r, cols, delimiter) for r in body if any(f.strip() for f in r[0])], text


def _read_text(path: Path, shown: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise _sheet_error(shown, None, 0, 0, f"cannot read the sheet: {err.strerror or err}",
                           "give the path of the sheet `molspec review DIR` wrote") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        at = len(data[: err.start].decode("utf-8-sig"))
        raise _sheet_error(shown, data.decode("utf-8-sig", errors="replace"), at, at + 1,
                           f"the sheet is not UTF-8 (byte 0x{data[err.start]:02x})",
                           'save it as "CSV UTF-8" (in a spreadsheet\'s Save As: the file type or character set)'
                           ) from None


def _delimiter(text: str) -> str:
    """The delimiter of the header row: the one that splits it into the most known columns."""
    first = text.split("\n", 1)[0]

    def known(d: str) -> int:
        return sum(f.strip().strip('"').lower() in COLUMNS for f in first.split(d))

    return max(DELIMITERS, key=known)


Record = tuple[list[str], int, int]  # the fields, the record's start and end offsets in the text


def _records(text: str, shown: str, delimiter: str) -> Iterator[Record]:
    """Every CSV record with its offsets: the reader is fed one physical line at a time, so the lines it
    consumed for a record say where the record lies."""
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    lines = (text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True) if b > a)
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    done = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            line = starts[min(reader.line_num, len(starts)) - 1] if reader.line_num else 0
            bad = _bad_quote(text[starts[done]:], delimiter)
            at = line if bad is None else starts[done] + bad
            raise _sheet_error(shown, text, at, at, f"the sheet is not valid CSV: {err}",
                               "a quote inside a quoted field is written twice (\"\"); save the sheet from a "
                               "spreadsheet as CSV, or remove the damaged row") from None
        end = starts[reader.line_num] if reader.line_num < len(starts) else len(text)
        yield fields, starts[done], end
        done = reader.line_num


def _entry(shown: str, text: str, record: Record, cols: dict[str, int], delimiter: str) -> Entry:
    fields, start, end = record
    spans = _field_spans(text[start:end], len(fields), delimiter)
    if len(fields) <= max(cols.values()):
        at = start + (spans[-1][1] if spans else 0)
        raise _sheet_error(shown, text, at, at, f"the row has {len(fields)} fields; its `label` and `sha1` need "
                           f"{max(cols.values()) + 1}", COLUMNS_HELP)

    def cell(name: str) -> Cell:
        a, b = spans[cols[name]]
        return Cell(fields[cols[name]], Span.at(shown, text, start + a, start + b))

    return Entry(cell("key"), cell("sha1"), cell("label"))


def _field_spans(record: str, n: int, delimiter: str) -> list[tuple[int, int]]:
    """The offsets of the first `n` fields of one CSV record (already parsed by csv, so well formed)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for _ in range(n):
        if record.startswith('"', pos):
            close = _closing_quote(record, pos)
            end = len(record) if close == -1 else close + 1
        else:
            stop = [i for i in (record.find(delimiter, pos), record.find("\r", pos), record.find("\n", pos)) if i != -1]
            end = min(stop, default=len(record))
        spans.append((pos, end))
        pos = end + len(delimiter)
    return spans


def _closing_quote(record: str, pos: int) -> int:
    """The index of the quote that closes the quoted field opening at `pos` (a doubled quote is a quote
    character inside it); -1 when the field never closes."""
    close = pos + 1
    while (close := record.find('"', close)) != -1 and record.startswith('""', close):
        close += 2
    return close


def _bad_quote(record: str, delimiter: str) -> int | None:
    """Where a record stops being CSV: a quoted field that never closes (its opening quote), or a closing quote
    followed by something other than a delimiter or the end of the line; None: neither."""
    pos = 0
    while pos < len(record):
        if not record.startswith('"', pos):
            stops = [i for i in (record.find(delimiter, pos), record.find("\n", pos)) if i != -1]
            if not stops or record[min(stops)] == "\n":
                return None
            pos = min(stops) + len(delimiter)
            continue
        close = _closing_quote(record, pos)
        if close == -1:
            return pos
        after = close + 1
        if after >= len(record) or record[after] in "\r\n":
            return None
        if not record.startswith(delimiter, after):
            return after
        pos = after + len(delimiter)
    return None


def _sheet_error(shown: str, text: str | None, start: int, end: int, message: str, help_: str) -> MolspecError:
    span = Span.at(shown, text, start, end) if text is not None else Span(shown, 0, 0, 1, 1)
    return MolspecError([Diagnostic("MOL730", message, Label(span), help=help_)],
                        {shown: text} if text is not None else None)
