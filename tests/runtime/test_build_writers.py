"""Item 6 of docs/build-directory.md (one build at a time) and the writes under it: atomic writers of one file at
once, a killed writer's temporary file, `--out` errors and a full disk. Every command runs through the CLI and must
end in a message, never a traceback.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.runtime.buildtools import Ran, card, cli, copy_build, manifest, rows, snapshot, spawn
from tests.runtime.conftest import write_spec

# ---------------------------------------------------------------- 6. one build at a time


def test_a_second_build_refuses_while_one_holds_the_lock(built: tuple[Path, Path], tmp_path: Path) -> None:
    spec, ref = built
    out = copy_build(ref, tmp_path / "out")
    before = snapshot(out)
    fd = os.open(out / ".molspec" / "lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for extra in ([], ["--fresh"]):
            ran = cli("build", spec, "--out", out, "-q", *extra)
            assert ran.rc == 1
            assert "another molspec build is running" in ran.err and "wait for it to finish" in ran.err
    finally:
        os.close(fd)
    assert snapshot(out) == before
    assert cli("build", spec, "--out", out, "-q").rc == 0  # the lock went with its holder


def test_a_build_running_in_another_process_blocks_a_second(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec", samples=150)
    out = tmp_path / "out"
    first = spawn("build", spec, "--out", out, "-q")
    lock = out / ".molspec" / "lock"
    deadline = time.monotonic() + 60
    while not (lock.exists() and b"pid" in lock.read_bytes()) and first.poll() is None:
        assert time.monotonic() < deadline, "the first build never took the lock"
        time.sleep(0.02)
    second: Ran = cli("build", spec, "--out", out, "-q")
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err.decode()
    if second.rc == 1:
        assert "another molspec build is running" in second.err and f"pid {first.pid}" in second.err
    else:  # the first one had already finished: the second found a finished build
        assert second.rc == 0 and "150 from an earlier run" in second.err
    assert [r["sample_index"] for r in rows(out)] == list(range(150))


def test_writers_of_one_file_at_once_do_not_trip_each_other(tmp_path: Path) -> None:
    """Two builds drawing the card at once, or a push refreshing it during a build, write the same files."""
    from concurrent.futures import ThreadPoolExecutor

    from molspec.runtime.store import write_atomic

    target = tmp_path / "README.md"

    def write(n: int) -> None:
        for _ in range(100):
            write_atomic(target, f"card {n}\n" * 1000)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(4)))  # re-raises a writer's error
    assert target.read_text() in {f"card {n}\n" * 1000 for n in range(4)}
    assert os.listdir(tmp_path) == ["README.md"]


def test_creating_writers_of_one_new_file_at_once_leave_exactly_one_whole_file(tmp_path: Path) -> None:
    """`create_atomic` (review sheets) never replaces a file, even when another writer creates it first."""
    from concurrent.futures import ThreadPoolExecutor

    from molspec.atomic import create_atomic

    target = tmp_path / "sheet.csv"

    def create(n: int) -> bool:
        try:
            create_atomic(target, f"sheet {n}\n" * 1000)
        except FileExistsError:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(create, range(8)))
    assert won.count(True) == 1
    assert target.read_text() == f"sheet {won.index(True)}\n" * 1000
    assert os.listdir(tmp_path) == ["sheet.csv"]  # the losers' temporary files are gone


def test_a_killed_writers_temporary_file_is_swept(tmp_path: Path) -> None:
    from molspec.runtime.store import write_atomic

    gone = spawn("--version")
    gone.communicate()
    (tmp_path / f".README.md.{gone.pid}-0a1b2c3d.tmp").write_text("half a card")
    (tmp_path / ".README.md.tmp").write_text("an older molspec's half card")
    live = tmp_path / f".README.md.{os.getpid()}-0a1b2c3d.tmp"
    live.write_text("a card being written right now")
    write_atomic(tmp_path / "README.md", "card\n")
    assert sorted(os.listdir(tmp_path)) == sorted(["README.md", live.name])


# ---------------------------------------------------------------- --out errors, a full disk


def _loop(tmp: Path) -> Path:
    (tmp / "loop").symlink_to(tmp / "loop")
    return tmp / "loop"


def _file(tmp: Path) -> Path:
    (tmp / "file").write_text("x")
    return tmp / "file"


def _under_file(tmp: Path) -> Path:
    (tmp / "file").write_text("x")
    return tmp / "file" / "out"


OUT_ERRORS: dict[str, tuple[Callable[[Path], Path | str], str]] = {
    "a regular file": (_file, "is a file, not a folder"),
    "under a regular file": (_under_file, "a part of the path is a file"),
    "in /proc": (lambda t: "/proc/molspec-out", "cannot create /proc/molspec-out"),
    "under /proc/self": (lambda t: "/proc/self/molspec-out", "cannot create /proc/self/molspec-out"),
    "a name over 255 bytes": (lambda t: t / ("x" * 300), "the path is too long"),
    "a NUL": (lambda t: f"{t}/a\0b", "cannot contain a NUL"),
    "a symlink loop": (_loop, "a symbolic link loop"),
    "under a symlink loop": (lambda t: _loop(t) / "out", "a symbolic link loop"),
}


@pytest.mark.parametrize("name", list(OUT_ERRORS))
def test_out_errors_are_messages(tiny_spec: Path, tmp_path: Path, name: str) -> None:
    make, said = OUT_ERRORS[name]
    ran = cli("build", tiny_spec, "--out", make(tmp_path), "-q")
    assert ran.rc == 1
    assert ran.err.startswith("error") and said in ran.err and "--out" in ran.err


def _disk_use(root: Path) -> int:
    """Bytes a folder takes on a tmpfs (whole 4 KiB pages per file)."""
    return sum(-(-p.stat().st_size // 4096) * 4096 for p in root.rglob("*") if p.is_file())


def test_a_full_disk_is_a_message_and_a_rerun_resumes(built: tuple[Path, Path], small_disk: Path) -> None:
    spec, ref = built
    out = small_disk / "out"
    need = _disk_use(ref)
    failed: list[str] = []
    # Each run finds room for a further share of a finished build's size: the failures walk from opening the
    # folder through the journal, the parquet files, the spec copy and the manifest to the card.
    for share in (0.0, 0.02, 0.12, 0.12, 0.12, 0.12, 0.4):
        filler = small_disk / "filler"
        st = os.statvfs(small_disk)
        filler.write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - int(share * need)))
        ran = cli("build", spec, "--out", out, "-q", "--batch", "2")
        filler.unlink()
        if ran.rc:
            assert "the disk is full while writing" in ran.err and "run the same command again" in ran.err
            failed.append(ran.err.split("while writing ")[1].split(". Nothing")[0])
    print("disk full while writing:", failed)
    assert len(failed) >= 4, failed
    assert cli("build", spec, "--out", out, "-q").rc == 0
    assert rows(out) == rows(ref)
    assert manifest(out) == manifest(ref)
    assert card(out) == card(ref)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]  # no temporary file left behind
