"""Item 3 of docs/build-directory.md: the journal and the state file are checked on resume. A damaged line is set
aside and redone, an edited sample index or another spec's state is refused. Every command runs through the CLI and
must end in a message, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.runtime.buildtools import body, cli, copy_build, journal_lines, manifest, rows, stamped
from tests.runtime.conftest import write_spec

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


