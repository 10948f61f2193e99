"""What molspec promises about a build directory (docs/build-directory.md), from issue 10's reproducers.

Items 1, 2, 4 and 5: molspec owns only what it wrote; the data is part of the build's identity; the spec copy is
self-contained; finalize is repaired on rerun. The journal's checks (item 3) are in test_build_journal.py, one build
at a time (item 6), atomic writers, `--out` errors and a full disk in test_build_writers.py. Every command runs
through the CLI and must end in a message, never a traceback.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from molspec.api import load
from tests.runtime.buildtools import card, cli, copy_build, manifest, rows, snapshot
from tests.runtime.conftest import write_spec
from tests.support.specs import BONDS

OWN = (".molspec/", "data/", "spec/", "molspec.json", "README.md", "structure.png")  # molspec's paths in a build


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


