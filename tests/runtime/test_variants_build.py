"""Variant builds (issue 11): one build folder per variant under a group folder, one shared step cache and
engine, variants.json, `--variant`, resume after kill -9, and a dataset with one config per variant."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from molspec.api import load
from molspec.diagnostics import MolspecError
from molspec.pipeline import build
from molspec.records import VARIANTS_MANIFEST, read_manifest
from molspec.runtime.build import BuildOptions
from molspec.runtime.cache import CACHE_FILE
from molspec.runtime.variants import VariantsResult
from molspec.variant_records import read_variants_manifest
from tests.runtime.buildtools import card, cli, manifest, rows, snapshot, spawn
from tests.runtime.varianttools import NAMES, Counting, write_variant_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, VariantsResult, Counting]:
    """(spec, group folder, result, engine): the four variants built once with the counting echo engine."""
    folder = tmp_path_factory.mktemp("variants")
    spec = write_variant_spec(folder / "spec")
    engine = Counting()
    res = build(load(spec), BuildOptions(out=folder / "out", command="molspec build tiny.mol"), engine=engine)
    assert isinstance(res, VariantsResult)
    return spec, folder / "out", res, engine


def test_an_answer_only_variant_reuses_every_bond_step(group: tuple[Path, Path, VariantsResult, Counting]) -> None:
    _, out, res, engine = group
    base, terse = res.variants["base"], res.variants["terse"]
    assert base.cache is not None and terse.cache is not None
    # The engine saw base's requests, then terse's: only its answers, one per sample; every bond step was a hit.
    assert engine.bonds(base.cache.misses, base.cache.misses + terse.cache.misses) == ["answer"] * 24
    assert terse.cache.hits == base.cache.misses - 24 and base.cache.hits == 0
    by_id = {r["id"]: r for r in rows(out / "base")}
    for r in rows(out / "terse"):
        assert r["steps"] == by_id[r["id"]]["steps"] and r["thinking"] == by_id[r["id"]]["thinking"]
    assert len(engine.requests) == sum(v.cache.misses for v in res.variants.values() if v.cache)
    assert res.cache is not None and res.cache.entries == len(engine.requests)
    assert (out / ".molspec" / CACHE_FILE).read_bytes().count(b"\n") == len(engine.requests)


def test_sample_i_has_the_same_question_in_every_variant(group: tuple[Path, Path, VariantsResult, Counting]) -> None:
    _, out, _, _ = group
    built = {name: rows(out / name) for name in NAMES}
    assert all(len(rs) == 24 for rs in built.values())
    for i in range(24):
        assert len({(rs[i]["id"], rs[i]["question"], rs[i]["gold"]) for rs in built.values()}) == 1
    assert [r["bonds"] for r in built["terse"]] == [r["bonds"] for r in built["base"]]  # text only: same walks
    assert [r["bonds"] for r in built["swap"]] != [r["bonds"] for r in built["base"]]
    assert not any("reflect" in r["bonds"] for r in built["noreflect"])
    assert any("reflect" in r["bonds"] for r in built["base"])


def test_variants_json_and_each_manifest_name_the_variant(group: tuple[Path, Path, VariantsResult, Counting]) -> None:
    spec, out, res, _ = group
    vm = read_variants_manifest(out)
    assert vm is not None
    base = load(spec).raise_for_errors()
    assert [e.title for e in vm.variants] == ["the spec as it stands", "another answer instruction", "another graph",
                                              "no self-reflection"]
    assert [(e.name, e.path, e.same_walks, e.changes) for e in vm.variants] == [
        ("base", "base", True, []), ("terse", "terse", True, ["answer.instruct"]),
        ("swap", "swap", False, ["graph g"]), ("noreflect", "noreflect", False, ["drop reflect"])]
    assert vm.group_sha256 == base.group_sha256() and (vm.seed, vm.samples, vm.dataset) == (3, 24, "tests/tiny")
    assert vm.cache == res.cache and vm.spec == "tiny.mol" and vm.command == "molspec build tiny.mol"
    assert "same split, question and per-sample seed" in vm.pairing
    assert "`swap` and `noreflect` walk their own graphs" in vm.pairing
    for e in vm.variants:
        m = read_manifest(out / e.path)
        assert m.variant is not None and (m.variant.name, m.variant.changes) == (e.name, e.changes)
        assert m.variant.group_sha256 == vm.group_sha256 and m.spec.sha256 == e.spec_sha256
        assert m.cache == res.variants[e.name].cache
    owned = json.loads((out / ".molspec" / "owned.json").read_text())
    assert VARIANTS_MANIFEST in owned and "README.md" in owned


def test_each_variant_loads_as_a_config_of_one_dataset(group: tuple[Path, Path, VariantsResult, Counting]) -> None:
    import datasets

    _, out, _, _ = group
    assert (out / "README.md").is_file()  # the group card (one config per variant)
    for name in NAMES:
        ds = datasets.load_dataset(str(out), name, split="train")
        assert sorted(ds["id"]) == sorted(r["id"] for r in rows(out / name))


def test_fresh_keeps_the_group_cache(group: tuple[Path, Path, VariantsResult, Counting], tmp_path: Path) -> None:
    import shutil

    spec, src, res, _ = group
    out = tmp_path / "out"
    shutil.copytree(src, out)
    engine = Counting()
    again = build(load(spec), BuildOptions(out=out, fresh=True), engine=engine)
    assert engine.requests == [] and again.cache is not None and again.cache.misses == 0
    assert res.cache is not None and again.cache.hits == res.cache.hits + res.cache.misses
    for name in NAMES:
        assert rows(out / name) == rows(src / name)


def test_variant_selects_and_unknown_names_are_usage_errors(tmp_path: Path) -> None:
    spec = write_variant_spec(tmp_path / "spec", samples=6)
    out = tmp_path / "out"
    ran = cli("build", spec, "--out", out, "--variant", "terse", "--variant", "swap")
    assert ran.rc == 0 and sorted(p.name for p in out.iterdir() if p.is_dir()) == [".molspec", "swap", "terse"]
    assert "built 2 variants" in ran.err and "steps from the cache" in ran.err
    vm = read_variants_manifest(out)
    assert vm is not None and [e.name for e in vm.variants] == ["terse", "swap"]
    assert cli("build", spec, "--out", out, "--variant", "base").rc == 0
    vm = read_variants_manifest(out)
    assert vm is not None and [e.name for e in vm.variants] == ["base", "terse", "swap"]  # spec order, all built
    before = snapshot(out)
    ran = cli("build", spec, "--out", out, "--variant", "base", "--variant", "terse", "--variant", "swap")
    assert ran.rc == 0 and ran.err.count("nothing left to do") == 3
    assert snapshot(out) == before  # a rerun with nothing to do rewrites nothing, variants.json included

    ran = cli("build", spec, "--out", out, "--variant", "tersee")
    assert ran.rc == 2 and "MOL809" in ran.err and "no variant 'tersee'" in ran.err
    assert "did you mean 'terse'?" in ran.err
    plain = write_variant_spec(tmp_path / "plain", samples=6, variants=False)
    ran = cli("build", plain, "--out", tmp_path / "p", "--variant", "base")
    assert ran.rc == 2 and "declares no `variant` blocks" in ran.err and not (tmp_path / "p").exists()
    with pytest.raises(MolspecError, match="no variant 'nope'"):
        build(load(spec), BuildOptions(out=tmp_path / "api", variants=("nope",)))
    assert not (tmp_path / "api").exists()


def test_engines_are_shared_between_variants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import molspec.runtime.variants as variants

    started: list[tuple[str, str]] = []
    real = variants.create  # type: ignore[attr-defined]

    def counted(engine: str, model: str | None, options: dict[str, object], seed: int) -> object:
        started.append((engine, str(model)))
        return real(engine, model, options, seed)

    monkeypatch.setattr(variants, "create", counted)
    spec = write_variant_spec(tmp_path / "spec", samples=4)
    assert build(load(spec), BuildOptions(out=tmp_path / "out")).done == 16
    assert started == [("echo", "none")]


def test_the_group_folder_is_claimed_like_a_build_folder(tmp_path: Path) -> None:
    spec = write_variant_spec(tmp_path / "spec", samples=4)
    plain = write_variant_spec(tmp_path / "plain", samples=4, variants=False)
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine\n")
    ran = cli("build", spec, "--out", user, "--fresh")
    assert ran.rc == 1 and "did not make it" in ran.err and list(snapshot(user)) == ["notes.txt"]
    assert cli("build", plain, "--out", tmp_path / "single").rc == 0
    ran = cli("build", spec, "--out", tmp_path / "single")
    assert ran.rc == 1 and "spec without variants" in ran.err
    assert cli("build", spec, "--out", tmp_path / "g").rc == 0
    (tmp_path / "g" / "notes.txt").write_text("mine\n")
    ran = cli("build", plain, "--out", tmp_path / "g", "--fresh")
    assert ran.rc == 1 and "holds a variant build" in ran.err
    assert cli("build", spec, "--out", tmp_path / "g", "--fresh").rc == 0
    assert (tmp_path / "g" / "notes.txt").read_text() == "mine\n" and (tmp_path / "g" / CACHE_FILE).exists() is False
    assert (tmp_path / "g" / ".molspec" / CACHE_FILE).exists()


# ---------------------------------------------------------------- kill -9


def _cache_lines(out: Path) -> list[str]:
    path = out / ".molspec" / CACHE_FILE
    return [ln.split(b'"k":"')[1][:64].decode() for ln in path.read_bytes().splitlines()] if path.exists() else []


def _kill_when(cwd: Path, env: dict[str, str], ready: object) -> bool:
    """Start the build in `cwd`; SIGKILL it (and all it started) once `ready()` is true; True if it still ran."""
    proc = spawn(*BUILD, cwd=cwd, env=env)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and not ready():  # type: ignore[operator]
        time.sleep(0.002)
    alive = proc.poll() is None
    if alive:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    return alive


BUILD = ("build", "../spec/tiny.mol", "--out", "out", "-q")  # run in ref/ and in run/: the same command line


def test_kill_9_in_the_middle_of_a_variant_build_then_resume(tmp_path: Path) -> None:
    write_variant_spec(tmp_path / "spec", samples=150)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    (tmp_path / "ref").mkdir()
    (tmp_path / "run").mkdir()
    ref, out = tmp_path / "ref" / "out", tmp_path / "run" / "out"
    done = spawn(*BUILD, cwd=tmp_path / "ref", env=env)
    _, err = done.communicate(timeout=300)
    assert done.returncode == 0, err.decode()
    total = len(_cache_lines(ref))
    cache = out / ".molspec" / CACHE_FILE

    def grown(share: float) -> object:
        return lambda: cache.exists() and cache.stat().st_size >= share * (ref / ".molspec" / CACHE_FILE).stat().st_size

    points = [grown(0.15), lambda: (out / "base" / "molspec.json").exists(), grown(0.55), grown(0.8), grown(0.97)]
    killed = sum(_kill_when(tmp_path / "run", env, ready) for ready in points)
    assert killed >= 4
    final = spawn(*BUILD, cwd=tmp_path / "run", env=env)
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0 and "Traceback" not in err.decode(), err.decode()

    for name in NAMES:
        got = rows(out / name)
        assert got == rows(ref / name) and len({r["id"] for r in got}) == len(got) == 150
        assert manifest(out / name) == manifest(ref / name) and card(out / name) == card(ref / name)
    keys = _cache_lines(out)
    assert len(keys) == len(set(keys)) == total and set(keys) == set(_cache_lines(ref))  # nothing lost, none twice
    a, b = (json.loads((d / VARIANTS_MANIFEST).read_text()) for d in (out, ref))
    for volatile in ("created", "cache"):
        a.pop(volatile), b.pop(volatile)
    assert a == b
