"""Crash consistency (issue 10, "What it must show"): kill -9 at random points of build, finalize and push, rerun,
and the result equals an uninterrupted run, with nothing outside molspec's own files changed.

Each run is a separate process running `molspec.cli.main`; it imports molspec first and then waits for its
command line on stdin, so the seeded kill points fall in the work and not in Python's start-up. The build's
kill points are random points of one uninterrupted run's timeline, sorted: run k resumes what runs 1..k-1 left
and is killed when the timeline reaches point k, so the kills move from generation through the journal's
appends, the parquet swap, the spec copy and the manifest to the card.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.publish.conftest import hub_env
from tests.runtime.buildtools import card, cli, manifest, rows, snapshot
from tests.runtime.conftest import write_spec
from tests.support.fakehub import FakeHub

SEED = 20261129
BUILD_KILLS, PUSH_KILLS = 8, 2
SAMPLES = 150
REPO, CLEAN = "acme/crash", "acme/clean"
TOKEN = "hf_crashtest0123456789"
DRIVER = """
import json, os, sys
import molspec.cli, molspec.pipeline, molspec.publish.card, molspec.engines.echo, pyarrow.parquet
if os.environ.get("CRASH_PUSH"):
    import molspec.publish.cli, molspec.publish.hub, huggingface_hub, datasets
print("ready", flush=True)
argv = json.loads(sys.stdin.readline())
code = molspec.cli.main(argv)
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
"""


@dataclass
class Run:
    """One molspec process: started and imported, then given its command."""

    proc: subprocess.Popen[bytes]
    started: float = 0.0

    @classmethod
    def warm(cls, env: dict[str, str]) -> Run:
        proc = subprocess.Popen([sys.executable, "-c", DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, start_new_session=True)
        return cls(proc)

    def go(self, *argv: str | Path) -> None:
        assert self.proc.stdout is not None and self.proc.stdin is not None
        assert self.proc.stdout.readline() == b"ready\n", self.proc.communicate()[1].decode()
        self.started = time.monotonic()
        self.proc.stdin.write(json.dumps([str(a) for a in argv]).encode() + b"\n")
        self.proc.stdin.flush()

    def kill_after(self, delay: float) -> bool:
        """SIGKILL the process (and anything it started) `delay` seconds after `go`; True if it was running."""
        time.sleep(max(0.0, self.started + delay - time.monotonic()))
        alive = self.proc.poll() is None
        if alive:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.communicate()
        return alive and self.proc.returncode == -signal.SIGKILL

    def finish(self) -> tuple[float, str]:
        """Wait for a run that must succeed; returns its time from `go` and its stderr."""
        _, err = self.proc.communicate(timeout=300)
        text = err.decode()
        assert self.proc.returncode == 0, text
        assert "Traceback" not in text and "internal error" not in text, text
        return time.monotonic() - self.started, text


@dataclass
class Runner:
    """Keeps the next process imported while the current one works (start-up overlaps the work)."""

    env: dict[str, str]
    spare: Run | None = None
    log: list[str] = field(default_factory=list)

    def start(self, *argv: str | Path) -> Run:
        run = self.spare or Run.warm(self.env)
        run.go(*argv)
        self.spare = Run.warm(self.env)
        return run

    def close(self) -> None:
        if self.spare is not None:
            self.spare.proc.kill()
            self.spare.proc.communicate()


@pytest.fixture
def runner() -> Iterator[Runner]:
    r = Runner(dict(os.environ))
    yield r
    r.close()


def _user_files(root: Path, in_spec: bool = True) -> dict[str, str]:
    """Files a user keeps inside a build folder (molspec must never touch them)."""
    files = {"notes.txt": "my notes\n", "eval/scores.csv": "a,b\n1,2\n"}
    if in_spec:
        files["spec/notes.md"] = "why the spec is so\n"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return snapshot(root, skip=(".molspec/", "data/", "molspec.json", "README.md", "structure.png",
                                ".README.md.tmp", ".structure.png.tmp", "spec/tiny.mol", "spec/questions.jsonl"))


def test_kill_9_during_build_and_finalize(tmp_path: Path, runner: Runner) -> None:
    spec = write_spec(tmp_path / "project", samples=SAMPLES)
    (tmp_path / "project" / "README.md").write_text("the user's own project readme\n")
    ref, out = tmp_path / "ref", tmp_path / "out"
    wall, _ = runner.start("build", spec, "--out", ref, "-q").finish()

    rng = random.Random(SEED)
    points = sorted(rng.uniform(0.0, wall) for _ in range(BUILD_KILLS))
    before = snapshot(tmp_path, skip=("ref/", "out/"))
    mine: dict[str, str] | None = None
    killed, elapsed = 0, 0.0
    for point in points:
        run = runner.start("build", spec, "--out", out, "-q")
        killed += run.kill_after(point - elapsed)
        elapsed = point
        if mine is None and (out / ".molspec").is_dir():
            mine = _user_files(out)  # a user may add files as soon as molspec has claimed the folder
    runner.start("build", spec, "--out", out, "-q").finish()
    runner.log.append(f"build: {killed} of {len(points)} kills hit a running build; uninterrupted {wall:.1f} s")
    print(runner.log[-1])

    assert killed >= BUILD_KILLS // 2
    assert rows(out) == rows(ref)
    assert manifest(out) == manifest(ref)
    assert card(out) == card(ref)
    assert (out / "structure.png").read_bytes() == (ref / "structure.png").read_bytes()
    assert sorted(os.listdir(out / "data")) == sorted(os.listdir(ref / "data"))
    assert snapshot(tmp_path, skip=("ref/", "out/")) == before  # the spec, its data, the user's README
    if mine is not None:
        now = snapshot(out)
        assert {k: now.get(k) for k in mine} == mine
    # Nothing else is left behind (no temporary files): what an uninterrupted build has, and the user's.
    assert set(snapshot(out, skip=(".molspec/",))) == set(snapshot(ref, skip=(".molspec/",))) | set(mine or {})


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub(token=TOKEN) as h:
        yield h


def _hub_files(hub: FakeHub, repo: str, revision: str = "main") -> dict[str, bytes]:
    """A pushed revision's files, with the build time and the repo's name masked (the card names its repo)."""
    stamp = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
    return {k: stamp.sub(b"<created>", v).replace(repo.encode(), b"<repo>")
            for k, v in hub.files(repo, revision).items()}


def test_kill_9_during_push(tmp_path: Path, hub: FakeHub) -> None:
    spec = write_spec(tmp_path / "project", samples=40)
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert cli("build", spec, "--out", ref, "-q").rc == 0
    shutil.copytree(ref, out, symlinks=True)
    mine = _user_files(out, in_spec=False)  # spec/notes.md would be pushed: test_push_publishes_only_...
    (tmp_path / "home").mkdir()
    pushes = Runner(hub_env(hub.endpoint, TOKEN, tmp_path / "home") | {"CRASH_PUSH": "1"})
    rng = random.Random(SEED + 1)
    killed = 0
    try:
        wall, _ = pushes.start("push", ref, "--repo", CLEAN).finish()
        for _ in range(PUSH_KILLS):
            killed += pushes.start("push", out, "--repo", REPO).kill_after(rng.uniform(0.05, 0.6) * wall)
        pushes.start("push", out, "--repo", REPO).finish()
    finally:
        pushes.close()
    print(f"push: {killed} of {PUSH_KILLS} kills hit a running push; uninterrupted {wall:.1f} s")

    assert killed >= 1
    assert _hub_files(hub, REPO) == _hub_files(hub, CLEAN)
    tags = sorted(hub.repo(CLEAN).tags)
    assert tags and sorted(hub.repo(REPO).tags) == tags
    assert all(_hub_files(hub, REPO, t) == _hub_files(hub, CLEAN, t) for t in tags)
    now = snapshot(out)
    assert {k: now.get(k) for k in mine} == mine
    assert rows(out) == rows(ref) and manifest(out) == manifest(ref)
    assert card(out).replace(REPO.encode(), b"<repo>") == card(ref).replace(CLEAN.encode(), b"<repo>")


def test_push_publishes_only_molspecs_own_files(tmp_path: Path) -> None:
    from molspec.publish.hub import collect_files

    spec = write_spec(tmp_path / "project", samples=6)
    out = tmp_path / "out"
    assert cli("build", spec, "--out", out, "-q").rc == 0
    _user_files(out)
    (out / "holiday.png").write_bytes(b"\x89PNG private")
    owned = json.loads((out / ".molspec" / "owned.json").read_text())
    folders = tuple(o for o in owned if o.endswith("/"))
    published = set(collect_files(out, TOKEN))  # what `molspec push` would upload
    assert {p for p in published if p not in owned and not p.startswith(folders)} == set()
