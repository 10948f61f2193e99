"""What molspec promises about a build directory (docs/build-directory.md), from issue 10's reproducers.

Items 1-6: molspec owns only what it wrote; the data is part of the build's identity; the journal is checked;
the spec copy is self-contained; finalize is repaired on rerun; one build at a time. Then `--out` errors and a
full disk. Every command runs through the CLI and must end in a message, never a traceback.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from molspec.api import load
from tests.runtime.buildtools import Ran, body, card, cli, journal_lines, manifest, rows, snapshot, spawn, stamped
from tests.runtime.conftest import write_spec
from tests.support.specs import BONDS

OWN = (".molspec/", "data/", "spec/", "molspec.json", "README.md", "structure.png")  # molspec's paths in a build


def copy_build(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


# ---------------------------------------------------------------- 1. only molspec's own files


def test_fresh_into_a_users_folder_is_refused_and_deletes_nothing(tiny_spec: Path, tmp_path: Path) -> None:
    user = tmp_path / "project"
    (user / "data").mkdir(parents=True)
    (user / "data" / "questions.jsonl").write_text('{"q": "mine"}\n')
    (user / "README.md").write_text("my readme\n")
    before = snapshot(user)
    ran = cli("build", tiny_spec, "--out", user, "--fresh", "-q")
    assert ran.rc == 1
    assert "molspec did not make it" in ran.err and "choose another --out" in ran.err
    assert snapshot(user) == before


def test_out_dot_beside_the_spec_folder_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proj = tmp_path / "proj"
    write_spec(proj / "spec")
    (proj / "spec" / "other_unrelated.mol").write_text("molspec 1\n")
    before = snapshot(proj)
    monkeypatch.chdir(proj)
    for extra in ([], ["--fresh"]):
        ran = cli("build", "spec/tiny.mol", "--out", ".", "-q", *extra)
        assert ran.rc == 1 and "molspec did not make it" in ran.err
    assert snapshot(proj) == before


def test_rebuilds_leave_the_users_files_in_a_build_folder(built: tuple[Path, Path], tmp_path: Path) -> None:
    spec, ref = built
    out = copy_build(ref, tmp_path / "out")
    (out / "spec" / "notes.md").write_text("why I changed the spec\n")
    (out / "eval").mkdir()
    (out / "eval" / "scores.csv").write_text("a,b\n")
    mine = snapshot(out, skip=OWN) | {"spec/notes.md": snapshot(out)["spec/notes.md"]}
    assert cli("build", spec, "--out", out, "--fresh", "-q").rc == 0
    after = snapshot(out)
    assert {k: after.get(k) for k in mine} == mine
    assert rows(out) == rows(ref)
    owned = json.loads((out / ".molspec" / "owned.json").read_text())
    assert "spec/notes.md" not in owned and "eval/" not in owned and "spec/" not in owned


def test_a_folder_without_owned_json_loses_no_spec_folder(built: tuple[Path, Path], tmp_path: Path) -> None:
    """A build made before owned.json existed (or with it damaged) owns only what its molspec.json names."""
    spec, ref = built
    out = copy_build(ref, tmp_path / "out")
    (out / ".molspec" / "owned.json").unlink()
    (out / "spec" / "other_unrelated.mol").write_text("molspec 1\n")
    assert cli("build", spec, "--out", out, "--fresh", "-q").rc == 0
    assert (out / "spec" / "other_unrelated.mol").read_text() == "molspec 1\n"
    (out / ".molspec" / "owned.json").write_text('["../outside.txt", "/etc/hostname", ".molspec/", "data/"]')
    (tmp_path / "outside.txt").write_text("keep")
    assert cli("build", spec, "--out", out, "--fresh", "-q").rc == 0
    assert (tmp_path / "outside.txt").read_text() == "keep"
    assert rows(out) == rows(ref)


def test_a_users_data_folder_is_never_swapped_out(built: tuple[Path, Path], tmp_path: Path) -> None:
    spec, ref = built
    out = copy_build(ref, tmp_path / "out")
    (out / ".molspec" / "owned.json").write_text("[]")  # data/ not recorded as molspec's
    (out / "data" / "mine.jsonl").write_text("{}\n")
    ran = cli("build", spec, "--out", out, "--fresh", "-q")
    assert ran.rc == 1 and "files molspec did not write" in ran.err
    assert (out / "data" / "mine.jsonl").read_text() == "{}\n"


# ---------------------------------------------------------------- 2. the data is part of the build


@pytest.mark.parametrize("change", ["edit", "append"])
def test_changed_questions_refuse_to_resume(tmp_path: Path, change: str) -> None:
    spec = write_spec(tmp_path / "spec")
    out = tmp_path / "out"
    assert cli("build", spec, "--out", out, "--limit", "10", "-q").rc == 0
    before, old_hash = rows(out), manifest(out)["data"]["sha256"]
    questions = spec.parent / "questions.jsonl"
    text = questions.read_text()
    if change == "edit":
        questions.write_text(text.replace("What is 3 + 3?", "What is 3 + 4?"))
    else:
        questions.write_text(text + json.dumps({"q": "What is 99 + 1?", "a": "100"}) + "\n")
    ran = cli("build", spec, "--out", out, "-q")
    assert ran.rc == 1
    assert "other seed questions" in ran.err and "a source file changed" in ran.err and "--fresh" in ran.err
    assert rows(out) == before
    assert cli("build", spec, "--out", out, "--fresh", "-q").rc == 0
    clean = tmp_path / "clean"
    assert cli("build", spec, "--out", clean, "-q").rc == 0
    assert rows(out) == rows(clean)
    assert manifest(out)["data"]["sha256"] == manifest(clean)["data"]["sha256"] != old_hash


# ---------------------------------------------------------------- 3. the journal is checked


def _replace(index: int, new: Callable[[bytes], bytes]) -> Callable[[list[bytes]], list[bytes]]:
    """Replace the journal line of sample `index` with new(line)."""
    def edit(lines: list[bytes]) -> list[bytes]:
        at = next(i for i, ln in enumerate(lines) if body(ln)["row"]["sample_index"] == index)
        return [*lines[:at], new(lines[at]), *lines[at + 1:]]
    return edit


def _field(index: int, change: Callable[[dict[str, object]], None], restamp: bool = True
           ) -> Callable[[list[bytes]], list[bytes]]:
    def new(line: bytes) -> bytes:
        b = body(line)
        change(b["row"])
        return stamped(b) if restamp else line[:17] + json.dumps(b).encode() + b"\n"
    return _replace(index, new)


def _del(key: str) -> Callable[[dict[str, object]], None]:
    def change(row: dict[str, object]) -> None:
        del row[key]
    return change


def _set(key: str, value: object) -> Callable[[dict[str, object]], None]:
    return lambda row: row.__setitem__(key, value)


def _bonds(row: dict[str, object]) -> None:
    row["bonds"] = ["deep" if b != "deep" else "normal" for b in row["bonds"]]  # type: ignore[attr-defined]


def _torn(lines: list[bytes]) -> list[bytes]:
    """A line cut in the middle and the next one run into it (a write torn, then appended to)."""
    return [*lines[:4], lines[4][:40] + lines[5], *lines[6:]]


def _foreign(lines: list[bytes]) -> list[bytes]:
    b = body(lines[2])
    b["build"] = "0123456789abcdef"
    return [*lines[:2], stamped(b), *lines[3:]]


DAMAGE: dict[str, tuple[Callable[[list[bytes]], list[bytes]], int]] = {
    # name: (edit of the journal's lines, how many samples it takes away; each edit leaves one bad line)
    "bytes ff fe": (_replace(3, lambda _: b"\xff\xfe\n"), 1),
    "a JSON list": (_replace(3, lambda _: b"[1,2,3]\n"), 1),
    "a carriage return inside": (_replace(3, lambda ln: ln[:30] + b"\r" + ln[31:]), 1),
    "a JSON list, checksummed": (_replace(3, lambda _: stamped([1, 2, 3])), 1),
    "sample_index missing": (_field(3, _del("sample_index")), 1),
    "sample_index not an integer": (_field(3, _set("sample_index", "three")), 1),
    "unknown split": (_field(3, _set("split", "nope")), 1),
    "bonds edited": (_field(3, _bonds, restamp=False), 1),
    "bonds edited, checksummed": (_field(3, _bonds), 1),
    "sample_index edited, checksummed": (_field(3, _set("sample_index", 5)), 1),
    "sample_index outside the plan": (_field(3, _set("sample_index", 10**6)), 1),
    "another build's line": (_foreign, 1),
    "a torn line run into the next": (_torn, 2),
}


@pytest.mark.parametrize("name", list(DAMAGE))
def test_damaged_journal_lines_are_set_aside_and_redone(built: tuple[Path, Path], tmp_path: Path,
                                                        name: str) -> None:
    spec, ref = built
    out = copy_build(ref, tmp_path / "out")
    edit, lost = DAMAGE[name]
    path = out / ".molspec" / "journal" / "local.jsonl"
    path.write_bytes(b"".join(edit(journal_lines(out))))
    ran = cli("build", spec, "--out", out, "-q")
    assert ran.rc == 0
    assert f"{len(rows(ref)) - lost:,} from an earlier run" in ran.err
    assert "1 damaged records set aside" in ran.err and "generated again" in ran.err
    assert rows(out) == rows(ref)
    rejected = (out / ".molspec" / "rejected.jsonl").read_text().splitlines()
    assert len(rejected) == 1
    assert all(json.loads(r)["reason"] for r in rejected)
    assert manifest(out)["summary"]["done"] == manifest(ref)["summary"]["done"]
    again = cli("build", spec, "--out", out, "-q")  # the journal is clean again: a no-op
    assert again.rc == 0 and "set aside" not in again.err and "0 steps" in again.err


def test_an_edited_sample_index_is_refused_even_where_the_walks_are_alike(tmp_path: Path) -> None:
    """One question and one possible walk: only the row's id tells sample 3 from sample 5."""
    spec = write_spec(tmp_path / "spec", samples=8, steps="2..2", questions=1)
    text = spec.read_text()
    walk = text[text.index("  start"):text.index("  steps")]
    spec.write_text(text.replace(walk, "  start -> explore 1.0\n  explore -> deep 1.0\n  deep -> normal 1.0\n"
                                       "  reflect -> normal 1.0\n  normal -> deep 1.0\n"))
    clean, out = tmp_path / "clean", tmp_path / "out"
    assert cli("build", spec, "--out", clean, "-q").rc == 0
    assert cli("build", spec, "--out", out, "-q").rc == 0
    path = out / ".molspec" / "journal" / "local.jsonl"
    path.write_bytes(b"".join(_field(3, _set("sample_index", 5))(journal_lines(out))))
    ran = cli("build", spec, "--out", out, "-q")
    assert ran.rc == 0 and "1 damaged records set aside" in ran.err
    assert [r["id"] for r in rows(out)] == [f"train-{i:06d}" for i in range(8)]
    assert rows(out) == rows(clean)


@pytest.mark.parametrize("state", [b"", b"\xff\xfe", b"[1,2,3]", b"{}", b"null", b'{"spec_sha256": 5',
                                   b'{"version": 2, "spec_sha256": "x"}', b"dir"])
def test_a_damaged_state_json_is_set_aside(built: tuple[Path, Path], tmp_path: Path, state: bytes) -> None:
    spec, ref = built
    out = copy_build(ref, tmp_path / "out")
    path = out / ".molspec" / "state.json"
    path.unlink()
    if state == b"dir":
        path.mkdir()
    else:
        path.write_bytes(state)
    ran = cli("build", spec, "--out", out, "-q")
    assert ran.rc == 0, ran.err
    assert "0 steps" in ran.err  # every journalled sample was kept: same key digest
    assert rows(out) == rows(ref)
    assert (out / ".molspec" / "state.json.damaged").exists()


def test_a_state_of_another_spec_is_still_refused(built: tuple[Path, Path], tmp_path: Path) -> None:
    spec, ref = built
    out = copy_build(ref, tmp_path / "out")
    state = json.loads((out / ".molspec" / "state.json").read_text())
    state["spec_sha256"] = "f" * 64
    (out / ".molspec" / "state.json").write_text(json.dumps(state))
    ran = cli("build", spec, "--out", out, "-q")
    assert ran.rc == 1 and "a different spec" in ran.err


# ---------------------------------------------------------------- 4. the spec copy


def _two_bonds_files(folder: Path) -> Path:
    spec = write_spec(folder / "main")
    for sub, lines in (("x", BONDS.splitlines()[:2]), ("y", BONDS.splitlines()[2:])):
        (folder / sub).mkdir()
        (folder / sub / "bonds.mol").write_text("molspec 1\n\n" + "\n".join(lines) + "\n")
    spec.write_text(spec.read_text().replace(BONDS, 'use "../x/bonds.mol"\nuse "../y/bonds.mol"\n'))
    return spec


def _walks(spec: Path) -> list[np.ndarray]:
    plan = load(spec).compile()
    chunks = list(plan.iter_walks(0, plan.samples))
    return [np.concatenate([getattr(c, f) for c in chunks]) for f in ("index", "split", "graph", "question",
                                                                     "bonds", "lengths")]


def test_the_spec_copy_is_self_contained(tmp_path: Path) -> None:
    spec = _two_bonds_files(tmp_path / "src")
    out = tmp_path / "out"
    assert cli("check", spec).rc == 0
    assert cli("build", spec, "--out", out, "-q").rc == 0
    m = manifest(out)
    assert m["spec"]["self_contained"] is True
    assert sorted(m["spec"]["files"]) == ["spec/main/questions.jsonl", "spec/main/tiny.mol", "spec/x/bonds.mol",
                                          "spec/y/bonds.mol"]
    copy = out / m["spec"]["main"]
    shutil.move(tmp_path / "src", tmp_path / "gone")  # the copy must not lean on the original files
    assert cli("check", copy).rc == 0
    for a, b in zip(_walks(copy), _walks(tmp_path / "gone" / "main" / "tiny.mol"), strict=True):
        assert np.array_equal(a, b)
    # Rebuilding the published dataset from its own copy, even with --fresh, keeps the copy and the rows.
    before = rows(out)
    ran = cli("build", copy, "--out", out, "--fresh", "-q")
    assert ran.rc == 0
    assert (out / "spec" / "main" / "questions.jsonl").is_file()
    assert rows(out) == before


def test_a_spec_change_replaces_the_stale_copy(tmp_path: Path) -> None:
    spec = _two_bonds_files(tmp_path / "src")
    out = tmp_path / "out"
    assert cli("build", spec, "--out", out, "-q").rc == 0
    flat = write_spec(tmp_path / "flat")
    assert cli("build", flat, "--out", out, "--fresh", "-q").rc == 0
    assert sorted(manifest(out)["spec"]["files"]) == ["spec/questions.jsonl", "spec/tiny.mol"]
    assert sorted(p.relative_to(out).as_posix() for p in (out / "spec").rglob("*") if p.is_file()) == [
        "spec/questions.jsonl", "spec/tiny.mol"]


def test_a_source_edited_while_the_build_ran_marks_the_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import molspec.runtime.build
    from molspec.runtime.spec_copy import copy_spec

    spec = write_spec(tmp_path / "spec")
    questions = spec.parent / "questions.jsonl"

    def edited_first(*args: Any, **kwargs: Any) -> Any:
        questions.write_text(questions.read_text().replace("What is 3 + 3?", "What is 3 + 4?"))
        return copy_spec(*args, **kwargs)

    monkeypatch.setattr(molspec.runtime.build, "copy_spec", edited_first)
    assert cli("build", spec, "--out", tmp_path / "out", "-q").rc == 0
    m = manifest(tmp_path / "out")["spec"]
    assert m["self_contained"] is False and "changed while the build ran" in m["note"]


# ---------------------------------------------------------------- 5. finalize and the card


@pytest.mark.parametrize("damage", ["README.md deleted", "structure.png empty", "molspec.json deleted",
                                    "a shard deleted", "data/ deleted"])
def test_a_rerun_repairs_what_an_interrupted_finalize_left(built: tuple[Path, Path], tmp_path: Path,
                                                          damage: str) -> None:
    spec, ref = built
    out = copy_build(ref, tmp_path / "out")
    if damage == "README.md deleted":
        (out / "README.md").unlink()
    elif damage == "structure.png empty":
        (out / "structure.png").write_bytes(b"")
    elif damage == "molspec.json deleted":
        (out / "molspec.json").unlink()
    elif damage == "a shard deleted":
        next((out / "data").glob("*.parquet")).unlink()
    else:
        shutil.rmtree(out / "data")
    assert cli("build", spec, "--out", out, "-q").rc == 0
    assert rows(out) == rows(ref)
    assert manifest(out) == manifest(ref)
    assert card(out) == card(ref)
    assert (out / "structure.png").read_bytes() == (ref / "structure.png").read_bytes()


@pytest.mark.parametrize("where", ["before the manifest", "before the card"])
def test_an_interrupt_in_finalize_is_repaired(built: tuple[Path, Path], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    import molspec.pipeline
    import molspec.runtime.build

    spec, ref = built
    out = tmp_path / "out"

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        if where == "before the card":
            mp.setattr(molspec.pipeline, "write_card_of", interrupt)
        else:
            mp.setattr(molspec.runtime.build, "write_json_atomic", interrupt)
        assert cli("build", spec, "--out", out, "-q").rc == 130
    assert not (out / "README.md").exists()
    assert (out / "molspec.json").exists() == (where == "before the card")
    assert cli("build", spec, "--out", out, "-q").rc == 0
    assert rows(out) == rows(ref)
    assert manifest(out) == manifest(ref)
    assert card(out) == card(ref)


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
