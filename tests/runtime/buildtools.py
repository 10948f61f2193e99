"""Helpers for the build-directory and crash tests: run the CLI, read a build's rows, snapshot a folder."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from molspec.cli import main
from molspec.engines import Completion, Engine, Request

MOLSPEC = [str(Path(sys.executable).with_name("molspec"))]  # the installed console script
VOLATILE = ("created", "wall_s", "command", "cache")  # molspec.json fields that differ between two runs of one build
TIMESTAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@dataclass(frozen=True)
class Ran:
    """One `molspec` command: exit code, stdout, stderr."""

    rc: int
    out: str
    err: str

    def clean(self) -> Ran:
        """Assert the command ended as a user-facing message, never a traceback or an internal error."""
        assert "Traceback" not in self.err, self.err
        assert "internal error" not in self.err, self.err
        return self


def copy_build(src: Path, dst: Path) -> Path:
    """A copy of a finished build to damage (symlinks kept as links)."""
    shutil.copytree(src, dst, symlinks=True)
    return dst


def cli(*args: str | Path) -> Ran:
    """`molspec ARGS` in this process (exit code and captured output)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in args])
        except SystemExit as exc:  # argparse usage errors
            rc = int(exc.code or 0)
    return Ran(rc, out.getvalue(), err.getvalue()).clean()


def spawn(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`molspec ARGS` as a separate process (own session, so a test can kill it and all it started)."""
    return subprocess.Popen([*MOLSPEC, *(str(a) for a in args)], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


def rows(out: Path) -> list[dict[str, Any]]:
    """The dataset's rows, all splits, in id order."""
    got: list[dict[str, Any]] = []
    for f in sorted((out / "data").glob("*.parquet")):
        got += pq.read_table(f).to_pylist()
    return sorted(got, key=lambda r: str(r["id"]))


def manifest(out: Path) -> dict[str, Any]:
    """molspec.json without the fields that change from run to run of the same build."""
    m: dict[str, Any] = json.loads((out / "molspec.json").read_text())
    for key in VOLATILE:
        m.pop(key, None)
    return m


def card(out: Path) -> bytes:
    """README.md with its build time masked (the one thing two runs of the same build differ in)."""
    return TIMESTAMP.sub(b"<created>", (out / "README.md").read_bytes())


def snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Relative path -> sha256 (or "dir", or "link -> target") of everything under `root`, minus `skip` prefixes."""
    snap: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if any(rel == s.rstrip("/") or rel.startswith(s) for s in skip):
                continue
            if path.is_symlink():
                snap[rel] = f"link -> {os.readlink(path)}"
            elif path.is_dir():
                snap[rel] = "dir"
            else:
                snap[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return snap


def journal_lines(out: Path) -> list[bytes]:
    return (out / ".molspec" / "journal" / "local.jsonl").read_bytes().splitlines(keepends=True)


def stamped(body: dict[str, Any] | list[Any] | bytes) -> bytes:
    """A journal line with a correct checksum (what a tool that edits the journal carefully would write)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return hashlib.sha256(raw).hexdigest()[:16].encode() + b" " + raw + b"\n"


def body(line: bytes) -> dict[str, Any]:
    """The JSON of a journal line."""
    parsed: dict[str, Any] = json.loads(line.rstrip(b"\n").partition(b" ")[2])
    return parsed


class OneAtATime:
    """`inner` behind the streaming interface (submit now, completions from poll), answering one request per
    poll as a busy vLLM would: the scheduler then settles each attempt on its own."""

    name = "echo"

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.queue: list[Request] = []

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        return self.inner.generate(requests)

    def submit(self, requests: Sequence[Request]) -> None:
        self.queue += requests

    def poll(self) -> list[Completion]:
        return self.inner.generate([self.queue.pop(0)]) if self.queue else []

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def close(self) -> None:
        self.inner.close()
