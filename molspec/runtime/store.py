"""Durable build output: the build directory, its lock, the journal of finished samples, and the parquet dataset.

Layout of a build directory (see docs/limits.md, "Files molspec owns"):
    .molspec/state.json          what is being built (BuildKey: spec, data, seed, samples, engine, model)
    .molspec/owned.json          every path molspec wrote here: the only paths it will ever replace or delete
    .molspec/lock                held (flock) by the one build running in this directory
    .molspec/journal/<w>.jsonl   one line per finished sample, appended and fsynced per batch by writer <w>
    .molspec/rejected.jsonl      journal lines that failed validation, set aside (their samples are redone)
    .molspec/cache.jsonl         the step cache (runtime/cache.py): kept by --fresh
    data/<split>-*.parquet       written at the end, swapped in as one folder

A journal line is `<sha256[:16] of the JSON> <JSON>`; the JSON carries the build's key digest and one
`Row` or `Failure`. A torn, damaged or foreign line is set aside and its sample redone; a sample journalled
twice (two writers, a retried shard) is read once.
"""

from __future__ import annotations

import contextlib
import fcntl
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

from molspec import atomic
from molspec.records import SCHEMA, Failure, Row, row_dicts, rows_digest
from molspec.runtime.cache import CACHE_DIR, CACHE_FILE
from molspec.runtime.fs import StoreError, _append, _os_errors, _remove, _write_all, write_atomic, write_json_atomic
from molspec.runtime.journal import Line, Scan, journal_line, parse_line, repair_tail

STATE_VERSION = 2
CARD = ("README.md", "structure.png")  # written by the card after each build; owned from the claim on
GROUP_MARK = "group.json"  # in .molspec/ of a variant build's group directory (runtime/variants.py)
KEPT = ("lock", CACHE_FILE, CACHE_DIR)  # what --fresh leaves in .molspec/: the lock it holds, the step cache
KEY_TYPES: dict[str, type] = {"spec_sha256": str, "seed": int, "samples": int, "engine": str, "model": str}


@dataclass(frozen=True)
class BuildKey:
    """What identifies a build: resuming is only allowed into a directory with the same key."""

    spec_sha256: str
    data_sha256: str
    seed: int
    samples: int
    engine: str
    model: str
    labeler: str = ""  # the fidelity gate's labeler and its weights (`labeler_identity`); "" with the gate off

    def to_json(self) -> dict[str, Any]:
        out = {"version": STATE_VERSION, "spec_sha256": self.spec_sha256, "data_sha256": self.data_sha256,
               "seed": self.seed, "samples": self.samples, "engine": self.engine, "model": self.model}
        return out | ({"labeler": self.labeler} if self.labeler else {})  # a gate-off key is as it always was

    def digest(self) -> str:
        """A short hash of the key, stamped on every journal line."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:16]


class Store:
    """One build directory."""

    def __init__(self, root: Path, writer: str = "local", build: str = "") -> None:
        self.root = root
        self.writer = writer
        self.build = build  # the key digest stamped on appended lines
        self.meta = root / ".molspec"
        self.state_path = self.meta / "state.json"
        self.owned_path = self.meta / "owned.json"
        self.journal_dir = self.meta / "journal"
        self._fh: int | None = None  # the journal, opened O_APPEND and written unbuffered
        self._lock: int | None = None

    # ---------------------------------------------------------------- open / resume
    def open(self, key: BuildKey, fresh: bool = False) -> None:
        """Take the directory for `key`: claim it if new, lock it, check it holds the same build.

        Raises:
            StoreError: not a folder molspec owns, locked by another build, another build's, unwritable.
        """
        self.build = key.digest()
        if "\0" in str(self.root):
            raise StoreError(f"--out {str(self.root)!r}: a path cannot contain a NUL character; choose another --out")
        try:
            with _os_errors(self.root):
                self._claim()
                self._take_lock()
                self._refuse_group()
                if fresh:
                    self._clear()
                old = self._read_state()
                if old is not None:
                    self._check_same(old, key)
                else:
                    write_json_atomic(self.state_path, key.to_json())
                self.own(CARD)
                self.journal_dir.mkdir(parents=True, exist_ok=True)
        except BaseException:
            self.close()
            raise

    def _claim(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"--out {self.root} is a file, not a folder; choose a folder for the dataset")
        if self.root.is_dir() and not self.meta.is_dir() and any(self.root.iterdir()):
            raise StoreError(f"{self.root} is not empty and molspec did not make it (it has no .molspec/ folder)",
                             help="molspec only writes into a new or empty folder, or one it built before, so "
                                  "that it never replaces your files: choose another --out")
        self.meta.mkdir(parents=True, exist_ok=True)

    def _refuse_group(self) -> None:
        if (self.meta / GROUP_MARK).exists():
            raise StoreError(f"{self.root} holds a variant build (one folder per variant below it); a spec without "
                             "variants cannot build there: choose another --out")

    def _take_lock(self) -> None:
        fd = os.open(self.meta / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StoreError(f"another molspec build is running in {self.root} ({holder}); wait for it to "
                             "finish, or build into another --out") from None
        except BaseException:
            os.close(fd)
            raise
        self._lock = fd  # held from here on: close() releases it, whatever fails next
        with contextlib.suppress(OSError):  # the holder's pid is a courtesy for the refusal message only
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)

    def _clear(self) -> None:
        """--fresh: remove what molspec wrote here, and nothing else.

        The spec copy stays until finalize replaces it: the spec being built may be that copy (rebuilding a
        published dataset from its own spec/), and its source files are read again when it is copied."""
        self.close_journal()
        owned = self.owned()
        kept = [rel for rel in owned if rel.startswith("spec/")]
        for rel in owned:
            if rel not in kept:
                _remove(self.root / rel)
        for child in self.meta.iterdir():
            if child.name not in KEPT:
                _remove(child)
        self.own(kept)  # still molspec's: finalize replaces them, or removes the stale ones

    def _read_state(self) -> dict[str, Any] | None:
        if not self.state_path.exists() and not self.state_path.is_symlink():
            return None
        try:
            state = json.loads(self.state_path.read_bytes())
            if _is_state(state):
                return dict(state)
        except (OSError, ValueError):
            pass
        # Damaged: set it aside. Journal lines carry the key digest, so nothing of another build gets in.
        damaged = self.state_path.with_name("state.json.damaged")
        _remove(damaged)
        os.replace(self.state_path, damaged)
        return None

    def _check_same(self, old: dict[str, Any], key: BuildKey) -> None:
        new = key.to_json()
        if old.get("spec_sha256") != new["spec_sha256"]:
            raise StoreError(
                f"{self.root} holds a build of a different spec (sha256 {str(old.get('spec_sha256'))[:12]}…, "
                f"now {key.spec_sha256[:12]}…). Resuming would mix two specs in one dataset. "
                "Build into another --out directory, or pass --fresh to discard the old build.")
        if old.get("data_sha256", "") != new["data_sha256"]:
            raise StoreError(
                f"{self.root} holds a build made from other seed questions (data sha256 "
                f"{str(old.get('data_sha256') or 'unknown')[:12]}…, now {key.data_sha256[:12]}…): a source file "
                "changed since. Resuming would mix old and new questions. Restore the data, build into another "
                "--out directory, or pass --fresh.")
        if old.get("labeler", "") != new.get("labeler", ""):
            was = old.get("labeler") or "an earlier molspec's"
            raise StoreError(
                f"{self.root} holds a build judged by another labeler ({was}; now {new.get('labeler')}). "
                "Resuming would mix two labelers' labels. Use the molspec that began it, another --out "
                "directory, or --fresh.")
        for name in ("seed", "samples", "engine", "model"):
            if old.get(name) != new[name]:
                raise StoreError(
                    f"{self.root} holds a build with {name} = {old.get(name)}, this one has {new[name]}. "
                    "Use the same settings to resume, another --out directory, or --fresh.")

    # ---------------------------------------------------------------- owned files
    def owned(self) -> list[str]:
        """Paths (relative; folders end in "/") that molspec wrote in this directory.

        Without a readable owned.json (a damaged one, or a folder built before molspec kept one), only the
        files that the build's molspec.json names are molspec's: never a whole folder the user may share."""
        try:
            data = json.loads(self.owned_path.read_bytes())
            if isinstance(data, list):
                return sorted({p for p in data if isinstance(p, str) and _safe_rel(p)})
        except (OSError, ValueError):
            pass
        return _manifest_files(self.root) if self.meta.is_dir() else []

    def own(self, paths: Iterable[str]) -> None:
        """Record paths as molspec's before writing them (so a crash in between still knows them)."""
        have = self.owned()
        new = sorted(set(have) | {p for p in paths if _safe_rel(p)})
        if new != have or not self.owned_path.is_file():
            with _os_errors(self.root):
                if self.owned_path.is_dir() and not self.owned_path.is_symlink():
                    _remove(self.owned_path)  # damage in molspec's own folder, not a file of the user's
                write_json_atomic(self.owned_path, new)

    def disown(self, paths: Iterable[str]) -> None:
        """Remove owned paths from disk and from the record (files molspec wrote earlier, now stale)."""
        owned = set(self.owned())
        gone = set(paths) & owned
        with _os_errors(self.root):
            for rel in gone:
                _remove(self.root / rel)
            write_json_atomic(self.owned_path, sorted(owned - gone))

    # ---------------------------------------------------------------- journal
    def scan(self) -> Scan:
        """Every journal line, parsed and checked (checksum, shape, this build's digest); not yet against the plan."""
        return Scan(list(self.lines()))

    def lines(self) -> Iterator[Line]:
        if not self.journal_dir.exists():
            return
        for path in sorted(self.journal_dir.glob("*.jsonl")):
            with path.open("rb") as fh:
                for raw in fh:
                    if not raw.endswith(b"\n"):
                        break  # torn write of a killed process: cut on the next append, sample redone
                    yield parse_line(path, raw, self.build)

    def set_aside(self, lines: list[Line]) -> None:
        """Move refused lines to rejected.jsonl and rewrite the journals without them (atomically, per file)."""
        if not lines:
            return
        notes = b"".join((json.dumps({"journal": ln.path.name, "reason": ln.reason,
                                      "line": ln.raw.decode("utf-8", errors="replace").rstrip("\n")},
                                     ensure_ascii=False) + "\n").encode() for ln in lines)
        by_file: dict[Path, set[bytes]] = {}
        for line in lines:
            by_file.setdefault(line.path, set()).add(line.raw)
        self.close_journal()
        with _os_errors(self.root):
            _append(self.meta / "rejected.jsonl", notes)  # kept before the journal loses them
            for path, bad in by_file.items():
                # Lines end at "\n" only, as `lines()` reads them (a damaged line may hold a "\r").
                whole = [raw + b"\n" for raw in path.read_bytes().split(b"\n")[:-1]]
                write_atomic(path, b"".join(raw for raw in whole if raw not in bad))

    def append(self, records: Iterable[Row | Failure]) -> None:
        """Append records and make them durable before returning."""
        data = "".join(journal_line(self.build, r) for r in records).encode("utf-8", errors="surrogatepass")
        if not data:
            return
        with _os_errors(self.root):
            if self._fh is None:
                self.journal_dir.mkdir(parents=True, exist_ok=True)
                path = self.journal_dir / f"{self.writer}.jsonl"
                repair_tail(path)
                self._fh = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                _write_all(self._fh, data)
                os.fsync(self._fh)
            except OSError:
                # Part of the batch may be on disk, the last line torn: cut when the journal is next opened.
                self.close_journal()
                raise

    def close_journal(self) -> None:
        """Close the journal file (unbuffered: nothing is left to write, so closing cannot fail)."""
        if self._fh is not None:
            with contextlib.suppress(OSError):
                os.close(self._fh)
            self._fh = None

    def close(self) -> None:
        """Close the journal and release the lock."""
        self.close_journal()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    # ---------------------------------------------------------------- final dataset
    def write_dataset(self, rows_by_split: dict[str, list[Row]], shard_rows: int) -> dict[str, list[str]]:
        """Write `data/<split>-NNNNN-of-MMMMM-<digest>.parquet`; returns split -> relative file names.

        The digest (of the shard's rows) makes a rebuilt shard a new file name: `datasets` caches a local
        dataset by its card and file names, and would otherwise serve the previous build's rows after a
        rebuild. The same rows always get the same name, so pushing an unchanged build stays a no-op."""
        data, tmp, old = self.root / "data", self.meta / "data.tmp", self.meta / "data.old"
        if "data/" not in self.owned() and _foreign(data):
            raise StoreError(f"{data} holds files molspec did not write; molspec replaces data/ as a whole, "
                             "so it will not build here. Move them, or choose another --out")
        self.own(["data/"])
        with _os_errors(self.root):
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            files = {split: _write_shards(tmp, split, rows, shard_rows) for split, rows in rows_by_split.items()}
            atomic.fsync_dir(tmp)
            # Swap the whole folder in at once: readers see the old dataset or the new one, never a mix.
            shutil.rmtree(old, ignore_errors=True)
            if data.exists() or data.is_symlink():
                os.replace(data, old)
            os.replace(tmp, data)
            atomic.fsync_dir(self.root)
            shutil.rmtree(old, ignore_errors=True)
        return files

    def write_file(self, rel: str, data: bytes) -> None:
        """Write one owned file atomically (recorded as owned first)."""
        if not _safe_rel(rel):
            raise StoreError(f"molspec will not write {rel!r}: it is outside the build directory {self.root}")
        self.own([rel])
        with _os_errors(self.root):
            write_atomic(self.root / rel, data)


def _write_shards(folder: Path, split: str, rows: list[Row], shard_rows: int) -> list[str]:
    n = max(1, -(-len(rows) // shard_rows))
    names = []
    for i in range(n):
        part = rows[i * shard_rows:(i + 1) * shard_rows]
        name = f"{split}-{i:05d}-of-{n:05d}-{rows_digest(part)}.parquet"
        pq.write_table(pa.Table.from_pylist(row_dicts(part), schema=SCHEMA), folder / name)
        atomic.fsync_file(folder / name)
        names.append(f"data/{name}")
    return names


def _is_state(state: object) -> bool:
    """A state.json as some molspec wrote it (version 1 lacks data_sha256); anything else is damage."""
    if not isinstance(state, dict):
        return False
    typed = all(type(state.get(k)) is t for k, t in KEY_TYPES.items())  # noqa: E721  (bool is not an int here)
    return typed and isinstance(state.get("data_sha256", ""), str)


def _safe_rel(rel: str) -> bool:
    """A path inside the build directory, relative, not in .molspec/ (an edited owned.json cannot reach out)."""
    parts = Path(rel).parts
    return bool(parts) and not Path(rel).is_absolute() and ".." not in parts and parts[0] != ".molspec" \
        and "\0" not in rel


def _manifest_files(root: Path) -> list[str]:
    """The files a build's molspec.json names (dataset shards, spec copy), and molspec.json and the card."""
    try:
        m = json.loads((root / "molspec.json").read_bytes())
    except (OSError, ValueError):
        return []
    if not isinstance(m, dict):
        return []
    named: list[object] = [*CARD, "molspec.json"]
    files, spec = m.get("files"), m.get("spec")
    if isinstance(files, dict):
        named += [f for fs in files.values() if isinstance(fs, list) for f in fs]
    if isinstance(spec, dict) and isinstance(spec.get("files"), list):
        named += spec["files"]
    return sorted({p for p in named if isinstance(p, str) and _safe_rel(p)})


def _foreign(data: Path) -> bool:
    """data/ holds something other than parquet shards (a user's folder, not one molspec made)."""
    if not data.is_dir() or data.is_symlink():
        return data.exists() or data.is_symlink()
    return any(not (p.is_file() and p.suffix == ".parquet") for p in data.iterdir())












__all__ = ["BuildKey", "Store", "StoreError", "write_atomic", "write_json_atomic"]  # the last three live in fs
