"""Durable build output: a journal of finished samples, resume, and the final parquet dataset.

Layout of a build directory (see docs/internals.md):
    .molspec/state.json          what is being built (spec hash, seed, samples): resume refuses a mismatch
    .molspec/journal/<w>.jsonl   one JSON line per finished sample, appended and fsynced per batch by
                                 writer <w> (one writer per process or replica)
    data/<split>-*.parquet       written once at the end, each file atomically (tmp + rename)

A build killed at any moment loses at most the batch in flight: a torn last line is ignored, and a
sample journalled twice (two writers, a retried shard) is read once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

STATE_VERSION = 1

STEP_TYPE = pa.struct([("bond", pa.string()), ("text", pa.string()), ("n_tokens", pa.int32()),
                       ("finish_reason", pa.string())])
MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])
SCHEMA = pa.schema([
    ("id", pa.string()), ("split", pa.string()), ("sample_index", pa.int64()), ("question_id", pa.string()),
    ("question", pa.string()), ("gold", pa.string()), ("graph", pa.string()), ("bonds", pa.list_(pa.string())),
    ("steps", pa.list_(STEP_TYPE)), ("thinking", pa.string()), ("answer", pa.string()), ("correct", pa.bool_()),
    ("messages", pa.list_(MESSAGE_TYPE)), ("metadata", pa.string()),
])


class StoreError(Exception):
    """The output directory cannot be used (another spec's build, unreadable state)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class BuildKey:
    """What identifies a build: resuming is only allowed into a directory with the same key."""

    spec_sha256: str
    seed: int
    samples: int
    engine: str
    model: str

    def to_json(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "spec_sha256": self.spec_sha256, "seed": self.seed,
                "samples": self.samples, "engine": self.engine, "model": self.model}


class Store:
    """One build directory."""

    def __init__(self, root: Path, writer: str = "local") -> None:
        self.root = root
        self.writer = writer
        self.state_path = root / ".molspec" / "state.json"
        self.journal_dir = root / ".molspec" / "journal"
        self._fh: Any = None

    # ---------------------------------------------------------------- open / resume
    def open(self, key: BuildKey, fresh: bool = False) -> dict[int, dict[str, Any]]:
        """Prepare the directory for `key`; return the samples already finished (index -> record).

        Raises:
            StoreError: the directory holds a build of another spec (and `fresh` is not set).
        """
        if fresh and self.root.exists():
            self._clear()
        old = self._read_state()
        if old is not None and not fresh:
            self._check_same(old, key)
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        if old is None or fresh:
            write_json_atomic(self.state_path, key.to_json())
        return self.finished()

    def _clear(self) -> None:
        for name in (".molspec", "data"):
            shutil.rmtree(self.root / name, ignore_errors=True)
        for name in ("molspec.json", "README.md"):
            (self.root / name).unlink(missing_ok=True)

    def _read_state(self) -> dict[str, Any] | None:
        if not self.state_path.exists():
            if (self.root / "data").exists() and not (self.root / "molspec.json").exists():
                raise StoreError(f"{self.root} has a data/ folder that molspec did not write; "
                                 "choose another --out directory")
            return None
        try:
            state: dict[str, Any] = json.loads(self.state_path.read_text())
            return state
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"cannot read {self.state_path} ({exc}); use --fresh to start over") from None

    def _check_same(self, old: dict[str, Any], key: BuildKey) -> None:
        new = key.to_json()
        if old.get("spec_sha256") != new["spec_sha256"]:
            raise StoreError(
                f"{self.root} holds a build of a different spec (sha256 {str(old.get('spec_sha256'))[:12]}…, "
                f"now {key.spec_sha256[:12]}…). Resuming would mix two specs in one dataset. "
                "Build into another --out directory, or pass --fresh to discard the old build.")
        for field in ("seed", "samples", "engine", "model"):
            if old.get(field) != new[field]:
                raise StoreError(
                    f"{self.root} holds a build with {field} = {old.get(field)}, this one has {new[field]}. "
                    "Use the same settings to resume, another --out directory, or --fresh.")

    # ---------------------------------------------------------------- journal
    def finished(self) -> dict[int, dict[str, Any]]:
        """Every journalled sample that succeeded (failed ones are retried on resume)."""
        return self.scan()[0]

    def scan(self) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
        """One pass over the journal: samples that succeeded (first record of each), and samples that only
        failed (their latest error)."""
        done: dict[int, dict[str, Any]] = {}
        failed: dict[int, dict[str, Any]] = {}
        for rec in self.records():
            i = int(rec["sample_index"])
            if rec.get("error") is None:
                done.setdefault(i, rec)
            else:
                failed[i] = rec
        return done, {i: r for i, r in failed.items() if i not in done}

    def records(self) -> Iterator[dict[str, Any]]:
        """All journal lines of all writers, skipping a torn last line."""
        if not self.journal_dir.exists():
            return
        for path in sorted(self.journal_dir.glob("*.jsonl")):
            yield from _read_journal(path)

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Append records and make them durable before returning."""
        if self._fh is None:
            self.journal_dir.mkdir(parents=True, exist_ok=True)
            path = self.journal_dir / f"{self.writer}.jsonl"
            _repair_tail(path)
            self._fh = path.open("a", encoding="utf-8")
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        if not data:
            return
        self._fh.write(data)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    # ---------------------------------------------------------------- final dataset
    def write_dataset(self, rows_by_split: dict[str, list[dict[str, Any]]], shard_rows: int) -> dict[str, list[str]]:
        """Write `data/<split>-NNNNN-of-MMMMM-<digest>.parquet`; returns split -> relative file names.

        The digest (of the shard's rows) makes a rebuilt shard a new file name: `datasets` caches a local
        dataset by its card and file names, and would otherwise serve the previous build's rows after a
        rebuild. The same rows always get the same name, so pushing an unchanged build stays a no-op."""
        data = self.root / "data"
        tmp = self.root / ".molspec" / "data.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        files: dict[str, list[str]] = {}
        for split, rows in rows_by_split.items():
            n = max(1, -(-len(rows) // shard_rows))
            files[split] = []
            for i in range(n):
                part = rows[i * shard_rows:(i + 1) * shard_rows]
                digest = hashlib.sha256(json.dumps(part, sort_keys=True, default=str).encode()).hexdigest()[:8]
                name = f"{split}-{i:05d}-of-{n:05d}-{digest}.parquet"
                table = pa.Table.from_pylist(part, schema=SCHEMA)
                pq.write_table(table, tmp / name)
                files[split].append(f"data/{name}")
        # Swap the whole folder in at once: readers see the old dataset or the new one, never a mix.
        old = self.root / ".molspec" / "data.old"
        shutil.rmtree(old, ignore_errors=True)
        if data.exists():
            os.replace(data, old)
        os.replace(tmp, data)
        shutil.rmtree(old, ignore_errors=True)
        return files


def _read_journal(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                return  # torn write of a killed process: that sample is simply redone
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def _repair_tail(path: Path) -> None:
    """Cut a torn last line so that new appends start on a line of their own."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 1))
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        data = fh.read()
        cut = data.rfind(b"\n") + 1
        fh.truncate(cut)


MANIFEST = "molspec.json"


def read_manifest(build_dir: Path) -> dict[str, Any]:
    """A build's molspec.json. StoreError says why when it is missing or unreadable."""
    path = Path(build_dir) / MANIFEST
    if not path.is_file():
        raise StoreError(f"{build_dir} is not a molspec build directory: {MANIFEST} is missing. "
                         f"Build it first with `molspec build SPEC --out {build_dir}`.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise StoreError(f"cannot read {path}: {err}. Rebuild the dataset to regenerate it.") from None
    if not isinstance(data, dict):
        raise StoreError(f"{path} is not a JSON object. Rebuild the dataset to regenerate it.")
    return data


def write_json_atomic(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
