"""The build journal: one line per finished sample, `<sha256[:16] of the JSON> <JSON>`.

The JSON is a `JournalEntry`: the build key's digest and one `Row` or `Failure`. Reading gives every line
parsed and checked (checksum, shape, digest) as a `Line`; a `Scan` holds them all, and the build refuses
(sets aside) those that do not match its plan. A torn last line, the mark of a killed writer, is cut.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from molspec.records import Failure, Record, Row


class JournalEntry(Record):
    """One journal line's JSON."""

    build: str
    row: Row | None = None
    failure: Failure | None = None

    @property
    def index(self) -> int:
        body = self.row or self.failure
        assert body is not None
        return body.sample_index


@dataclass
class Line:
    """A journal line as read: where it is, its text, and what it holds (or why it is refused)."""

    path: Path
    raw: bytes
    entry: JournalEntry | None = None
    reason: str | None = None


@dataclass
class Scan:
    """Every journal line, parsed; a line is accepted while it has an entry and no reason to refuse it."""

    lines: list[Line] = field(default_factory=list)

    def accepted(self) -> Iterator[Line]:
        return (ln for ln in self.lines if ln.entry is not None and ln.reason is None)

    @property
    def rejected(self) -> list[Line]:
        return [ln for ln in self.lines if ln.reason is not None]

    @property
    def done(self) -> dict[int, Row]:
        """Samples that succeeded: the first row of each."""
        out: dict[int, Row] = {}
        for ln in self.accepted():
            if ln.entry is not None and ln.entry.row is not None:
                out.setdefault(ln.entry.index, ln.entry.row)
        return out

    @property
    def failed(self) -> dict[int, Failure]:
        """Samples that only failed: the latest failure of each (they are retried)."""
        done = self.done
        out: dict[int, Failure] = {}
        for ln in self.accepted():
            if ln.entry is not None and ln.entry.failure is not None and ln.entry.index not in done:
                out[ln.entry.index] = ln.entry.failure
        return out


def journal_line(build: str, rec: Row | Failure) -> str:
    entry = JournalEntry(build=build, row=rec) if isinstance(rec, Row) else JournalEntry(build=build, failure=rec)
    body = entry.model_dump_json(exclude_none=True, round_trip=True)
    return f"{checksum(body.encode())} {body}\n"


def checksum(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


def parse_line(path: Path, raw: bytes, build: str) -> Line:
    line = Line(path, raw)
    head, _, body = raw.rstrip(b"\n").partition(b" ")
    if head.decode("ascii", errors="replace") != checksum(body):
        line.reason = "checksum mismatch (damaged or edited line)"
        return line
    try:
        entry = JournalEntry.model_validate_json(body)
    except ValidationError as err:
        line.reason = f"not a journal record: {str(err).splitlines()[0]}"
        return line
    if (entry.row is None) == (entry.failure is None):
        line.reason = "not a journal record: needs exactly one of row, failure"
    elif entry.build != build:
        line.reason = f"written by another build ({entry.build})"
    else:
        line.entry = entry
    return line


def repair_tail(path: Path) -> None:
    """Cut a torn last line so that new appends start on a line of their own."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        data = fh.read()
        fh.truncate(data.rfind(b"\n") + 1)
